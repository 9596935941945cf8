// The `schema` option: session data checked against a TypeBox schema before every save (bad data
// is a 500 FST_SESSION_INVALID_DATA and nothing is stored), and after every load, where data of an
// older shape is upgraded by `migrate` and saved back, or, without it, treated as expired. Two
// releases of an app share one store, on Memory, Redis and PostgreSQL.
import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import { Type } from 'typebox'
import sessionPlugin, { MemoryFactory, type Migrate, type SessionFactory } from '../src/index.js'
import { Client, SECRET, buildApp, sessionIdOf, setCookies } from './helpers/app.js'
import { LogTrap } from './helpers/log-trap.js'
import type { TapTest } from './helpers/redis.js'
import { renameUser, stored } from './helpers/schema-releases.js'
import { storesUnderTest } from './helpers/stores.js'

const schema = Type.Object({
  user: Type.Optional(Type.String({ minLength: 1 })),
  counter: Type.Optional(Type.Integer({ minimum: 0 })),
  cart: Type.Optional(Type.Array(Type.String()))
}, { additionalProperties: false })

async function release (t: TapTest, factory: SessionFactory<any>, options: Record<string, unknown> = {}, logger?: LogTrap): Promise<FastifyInstance> {
  const app = logger === undefined
    ? await buildApp({ factory, ...options })
    : await appWithLogger(factory, options, logger)
  t.teardown(() => app.close())
  return app
}

async function appWithLogger (factory: SessionFactory<any>, options: Record<string, unknown>, trap: LogTrap): Promise<FastifyInstance> {
  const app = Fastify({ logger: trap.logger })
  await app.register(sessionPlugin, { factory, secret: SECRET, ...options })
  app.get('/read', async (request) => ({ data: request.session.data, id: request.session.id }))
  app.get('/untouched', async () => 'ok')
  return app
}

t.test('registration: a schema must describe an object; migrate needs a schema', async (t) => {
  const code = { code: 'FST_SESSION_INVALID_OPTIONS' }
  for (const [label, bad] of [
    ['a string', Type.String()],
    ['any', Type.Any()],
    ['an array', Type.Array(Type.Object({}))],
    ['a union with a non-object', Type.Union([Type.Object({}), Type.Null()])],
    ['a number', 42],
    ['null', null],
    ['a union with a boolean schema', { anyOf: [{ type: 'object' }, true] }],
    ['a pattern that is no regular expression', { type: 'object', properties: { a: { type: 'string', pattern: '(' } } }]
  ] as const) {
    await t.rejects(buildApp({ schema: bad as any }), code, label)
  }
  await t.rejects(buildApp({ migrate: renameUser }), code, 'migrate without schema')
  await t.rejects(buildApp({ schema, migrate: 'rename' as any }), code, 'migrate that is not a function')
  for (const [label, good] of [
    ['an object', schema],
    ['a union of objects', Type.Union([Type.Object({ a: Type.String() }), Type.Object({ b: Type.Number() })])],
    ['an intersection', Type.Intersect([Type.Object({ a: Type.Optional(Type.String()) }), Type.Object({ b: Type.Optional(Type.Number()) })])],
    ['a record', Type.Record(Type.String(), Type.Number())],
    ['a plain JSON schema', { type: 'object', properties: { a: { type: 'string' } } }]
  ] as const) {
    const app = await buildApp({ schema: good as any })
    t.pass(label)
    await app.close()
  }
})

t.test('a required key that is missing is named by its own path', async (t) => {
  const app = await buildApp({ schema: Type.Object({ user: Type.String(), counter: Type.Optional(Type.Integer()) }) })
  t.teardown(() => app.close())
  const reply = await app.inject({ method: 'POST', url: '/set', payload: { counter: 1 } })
  t.equal(reply.json().code, 'FST_SESSION_INVALID_DATA')
  t.ok(reply.json().message.includes('/user'), 'names /user')
})

t.test('a rule on the data itself is named by the root path', async (t) => {
  const app = await buildApp({ schema: Type.Object({}, { maxProperties: 1 }) })
  t.teardown(() => app.close())
  const reply = await app.inject({ method: 'POST', url: '/set', payload: { a: 1, b: 2 } })
  t.equal(reply.json().code, 'FST_SESSION_INVALID_DATA')
  t.ok(reply.json().message.includes(': / '), 'names /')
})

t.test('the lifetime kept by session.options() is not data the schema sees', async (t) => {
  const app = await buildApp({ schema })
  t.teardown(() => app.close())
  app.post('/remember', async (request) => {
    request.session.options({ maxAge: 3600 })
    request.session.set('user', 'ada')
    return 'ok'
  })
  const client = new Client(app)
  t.equal((await client.post('/remember')).statusCode, 200, 'saved under additionalProperties: false')
  t.same((await client.get('/read')).json().data.user, 'ada', 'and loads back')
})

t.test('a value JSON cannot carry is FST_SESSION_NOT_SERIALIZABLE, as without a schema', async (t) => {
  const app = await buildApp({ schema })
  t.teardown(() => app.close())
  app.post('/bigint', async (request) => {
    request.session.set('counter', 1n as any)
    return 'ok'
  })
  t.equal((await app.inject({ method: 'POST', url: '/bigint' })).json().code, 'FST_SESSION_NOT_SERIALIZABLE')
})

for (const store of storesUnderTest) {
  t.test(`${store.name}: bad data fails the save with FST_SESSION_INVALID_DATA, and nothing is stored`, { skip: store.skip }, async (t) => {
    const factory = await store.factory(t)
    let saves = 0
    const counting = new Proxy(factory, {
      get (target, key) {
        const value: unknown = Reflect.get(target, key)
        if (typeof value !== 'function' || key === 'constructor') return value
        return (...args: unknown[]) => {
          if (key === 'save') saves++
          return (value as (...a: unknown[]) => unknown).apply(target, args)
        }
      }
    })
    const app = await release(t, counting, { schema })
    app.post('/bad-login', async (request) => {
      await request.session.regenerate(['user'])
      request.session.set('counter', 'x' as any)
      return 'ok'
    })
    app.post('/bad-restart', async (request) => {
      await request.session.destroy()
      request.session.set('counter', -5)
      return 'ok'
    })
    const client = new Client(app)

    // A new session: nothing stored, no cookie.
    const first = await client.post('/set', { user: 'ada', counter: 'a-secret-value' })
    t.equal(first.statusCode, 500, 'a 500')
    t.equal(first.json().code, 'FST_SESSION_INVALID_DATA', 'FST_SESSION_INVALID_DATA')
    t.ok(first.json().message.includes('/counter'), 'the message names the path')
    t.notOk(first.json().message.includes('a-secret-value'), 'never the value')
    t.same(setCookies(first), [], 'no cookie')
    t.equal(saves, 0, 'factory.save() never called')

    // A stored session: it keeps what it had.
    t.equal((await client.post('/set', { user: 'ada', counter: 1 })).statusCode, 200, 'good data is saved')
    const id = sessionIdOf(client.cookie as string)
    const bad = await client.post('/set', { counter: -1, cart: [1, 2], extra: true })
    t.equal(bad.json().code, 'FST_SESSION_INVALID_DATA')
    for (const path of ['/counter', '/cart/0', '/cart/1', '/extra']) t.ok(bad.json().message.includes(path), `names ${path}`)
    t.same(await stored(factory, id), { user: 'ada', counter: 1 }, 'the stored record is as it was')

    // A login whose kept data fails: the old record is not destroyed either.
    t.equal((await client.post('/bad-login')).json().code, 'FST_SESSION_INVALID_DATA', 'a regenerated session with bad data')
    t.same(await stored(factory, id), { user: 'ada', counter: 1 }, 'the old record survives')
    t.equal((await client.post('/bad-restart')).json().code, 'FST_SESSION_INVALID_DATA', 'a destroyed session started again with bad data')
    t.same(await stored(factory, id), { user: 'ada', counter: 1 }, 'the old record survives that too')

    // Outside a route too.
    await t.rejects(app.sessions.cookieFor({ counter: 'x' } as any), { code: 'FST_SESSION_INVALID_DATA' }, 'app.sessions.cookieFor')
    const loaded = await app.sessions.load(client.cookie)
    loaded?.set('counter', 1.5)
    await t.rejects(loaded!.save(), { code: 'FST_SESSION_INVALID_DATA' }, 'a session loaded by app.sessions')
    t.same(await stored(factory, id), { user: 'ada', counter: 1 }, 'still as it was')
    t.equal(saves, 1, 'the one good save was the only one')
  })

  t.test(`${store.name}: an old release's record, without migrate, is expired (destroyed, fresh session, cookie cleared) and logged once`, { skip: store.skip }, async (t) => {
    const factory = await store.factory(t)
    const old = await release(t, factory)
    const trap = new LogTrap()
    const next = await release(t, factory, { schema }, trap)
    const client = new Client(old)
    await client.post('/set', { name: 'a-user-name-value', counter: 3 })
    const cookie = client.cookie as string
    const id = sessionIdOf(cookie)
    trap.rememberCookie(cookie.slice(cookie.indexOf('=') + 1))
    trap.remember(id, 'a-user-name-value')

    const reply = await next.inject({ url: '/read', headers: { cookie } })
    t.equal(reply.statusCode, 200)
    t.same(reply.json(), { data: {}, id: null }, 'a fresh session')
    t.match(setCookies(reply), [/^sid=;/], 'the cookie cleared')
    t.equal(await stored(factory, id), null, 'the record destroyed')

    const warnings = trap.lines.map((line) => JSON.parse(line)).filter((line) => line.level === 40)
    t.equal(warnings.length, 1, 'one warning')
    t.ok(String(warnings[0]?.msg).includes('/name'), 'naming the path')
    t.same(trap.leaks(), [], 'no id, cookie or value in any log line')

    // app.sessions.load: the same, without a request.
    const other = new Client(old)
    await other.post('/set', { name: 'someone' })
    t.equal(await next.sessions.load(other.cookie), null, 'app.sessions.load: none')
    t.equal(await stored(factory, sessionIdOf(other.cookie as string)), null, 'and the record destroyed')
  })

  t.test(`${store.name}: migrate upgrades an old record, which is saved back on that request`, { skip: store.skip }, async (t) => {
    const factory = await store.factory(t)
    const old = await release(t, factory)
    const seen: unknown[] = []
    const migrate: Migrate = (data, errors) => {
      seen.push({ data, errors })
      return renameUser(data, errors)
    }
    const next = await release(t, factory, { schema, migrate })
    const client = new Client(old)
    await client.post('/set', { name: 'ada', counter: 3 })
    const id = sessionIdOf(client.cookie as string)

    const reply = await next.inject({ url: '/untouched', headers: { cookie: client.cookie as string } })
    t.equal(reply.statusCode, 200, 'a request that never reads the session')
    t.same(setCookies(reply), [], 'the same id: no cookie to send')
    t.same(seen, [{ data: { name: 'ada', counter: 3 }, errors: [{ instancePath: '/name', message: 'is not allowed', keyword: 'additionalProperties' }] }], 'migrate got the data and the errors')
    t.same(await stored(factory, id), { user: 'ada', counter: 3 }, 'the upgrade saved back')

    const read = await next.inject({ url: '/read', headers: { cookie: client.cookie as string } })
    t.same(read.json().data, { user: 'ada', counter: 3 }, 'the upgraded data')
    t.equal(seen.length, 1, 'migrate ran once: the stored record now fits')

    // app.sessions.load upgrades and saves back as well.
    const other = new Client(old)
    await other.post('/set', { name: 'bob' })
    const loaded = await next.sessions.load(other.cookie)
    t.same(loaded?.data, { user: 'bob' }, 'app.sessions.load: upgraded')
    t.same(await stored(factory, sessionIdOf(other.cookie as string)), { user: 'bob' }, 'and saved back')

    // migrate answers null: expired.
    const stranger = new Client(old)
    await stranger.post('/set', { counter: 'many' })
    const none = await next.inject({ url: '/read', headers: { cookie: stranger.cookie as string } })
    t.same(none.json(), { data: {}, id: null }, 'null from migrate: a fresh session')
    t.equal(await stored(factory, sessionIdOf(stranger.cookie as string)), null, 'the record destroyed')

    // migrate answers data that still fails: expired too.
    const worse = await release(t, factory, { schema, migrate: () => ({ user: 42 }) })
    const third = new Client(old)
    await third.post('/set', { name: 'eve' })
    t.same((await worse.inject({ url: '/read', headers: { cookie: third.cookie as string } })).json(), { data: {}, id: null }, 'an answer that still fails: a fresh session')
  })
}

t.test('a stateless factory: a migrated session goes out in a new cookie', async (t) => {
  const { SealedCookieFactory } = await import('../src/index.js')
  const { randomBytes } = await import('node:crypto')
  const factory = new SealedCookieFactory({ keys: randomBytes(32) })
  const old = await release(t, factory)
  const next = await release(t, factory, { schema, migrate: renameUser })
  next.get('/public', async (_request, reply) => reply.header('cache-control', 'public, max-age=60').send('ok'))
  const client = new Client(old)
  await client.post('/set', { name: 'ada' })
  const before = client.cookie
  const upgraded = new Client(next)
  upgraded.cookie = before
  const reply = await upgraded.get('/read')
  t.same(reply.json().data, { user: 'ada' }, 'upgraded')
  t.not(upgraded.cookie, before, 'resealed into a new cookie')
  t.same((await upgraded.get('/read')).json().data, { user: 'ada' }, 'which loads as is')
  t.same((await next.sessions.load(upgraded.cookie))?.data, { user: 'ada' }, 'app.sessions.load reads it')

  // On a response a shared cache may keep, the reseal waits for another one, as every cookie the handler did not cause.
  const third = new Client(old)
  await third.post('/set', { name: 'bob' })
  const cached = await next.inject({ url: '/public', headers: { cookie: third.cookie as string } })
  t.same(setCookies(cached), [], 'no Set-Cookie on a public response')
  const later = new Client(next)
  later.cookie = third.cookie
  t.same((await later.get('/read')).json().data, { user: 'bob' }, 'the next response upgrades it')
  t.not(later.cookie, third.cookie, 'in a new cookie')

  // Without migrate: a fresh session, the cookie cleared (there is no record to destroy).
  const strict = await release(t, factory, { schema })
  const refused = await strict.inject({ url: '/read', headers: { cookie: before as string } })
  t.same(refused.json(), { data: {}, id: null }, 'a fresh session')
  t.match(setCookies(refused), [/^sid=;/], 'the cookie cleared')
})

t.test('a migrate that answers a promise fails the requests that read the session, and wipes nothing', async (t) => {
  const factory = new MemoryFactory()
  const old = await release(t, factory)
  const next = await release(t, factory, { schema, migrate: (async () => ({})) as any })
  const client = new Client(old)
  await client.post('/set', { name: 'ada' })
  const reply = await next.inject({ url: '/read', headers: { cookie: client.cookie as string } })
  t.equal(reply.json().code, 'FST_SESSION_INVALID_OPTIONS', 'migrate must answer synchronously')
  t.same(await stored(factory, sessionIdOf(client.cookie as string)), { name: 'ada' }, 'the record is as it was')
  const other = await release(t, factory, { schema, migrate: (() => 'upgraded') as any })
  t.equal((await other.inject({ url: '/read', headers: { cookie: client.cookie as string } })).json().code, 'FST_SESSION_INVALID_OPTIONS', 'or a string')
})

t.test('a migrate that throws fails the requests that read the session', async (t) => {
  const factory = new MemoryFactory()
  const old = await release(t, factory)
  const next = await release(t, factory, { schema, migrate: () => { throw new Error('bug') } })
  const client = new Client(old)
  await client.post('/set', { name: 'ada' })
  t.equal((await next.inject({ url: '/read', headers: { cookie: client.cookie as string } })).statusCode, 500, 'a 500')
  t.equal((await next.inject({ url: '/untouched', headers: { cookie: client.cookie as string } })).statusCode, 200, 'a request that does not read it is served')
})

t.test('app.sessions.load of an old-shape session: saved back where the id stays, left to the next request where it cannot, and a failing save rejects', async (t) => {
  const { SealedCookieFactory } = await import('../src/index.js')
  // Sealed: the upgrade would need a new cookie, which no response carries here.
  const sealed = new SealedCookieFactory({ keys: Buffer.alloc(32, 9) })
  const before = await release(t, sealed)
  const client = new Client(before)
  await client.post('/set', { name: 'ada' })
  const after = await release(t, sealed, { schema, migrate: renameUser })
  const upgraded = await after.sessions.load(client.cookie as string)
  t.same({ ...upgraded?.data }, { user: 'ada' }, 'upgraded in hand; its cookie is resealed by the next request')

  const memory = new MemoryFactory()
  const old = await release(t, memory)
  const browser = new Client(old)
  await browser.post('/set', { name: 'grace' })
  const failing = Object.assign(memory, { save: () => { throw new Error('store down') } })
  const next = await release(t, failing, { schema, migrate: renameUser })
  await t.rejects(next.sessions.load(browser.cookie as string), { code: 'FST_SESSION_STORE_UNAVAILABLE' })
})
