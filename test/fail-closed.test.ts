// Issue 13, "Fail closed": what the plugin does when the store, the clock or the cache could
// turn a mistake into access. Each test names the rule it pins.
import { randomBytes } from 'node:crypto'
import { promisify } from 'node:util'
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import { Signer } from '@fastify/cookie'
import type { Redis } from 'ioredis'
import t from 'tap'
import sessionPlugin, { MemoryFactory, RedisFactory, SealedCookieFactory, Session, fromExpressStore, type SessionFactory } from '../src/index.js'
import { Client, OLD_SECRET, SECRET, attributesOf, buildApp, sessionCookie, sessionIdOf, setCookies, type Options } from './helpers/app.js'
import { fakeClock } from './helpers/clock.js'
import { expressSession } from './helpers/express-stores.js'
import { cookieValueIn, signId } from './helpers/log-trap.js'
import { keysUnder, randomPrefix, removeKeys, sharedClient, sharedRedisSkipReason } from './helpers/redis.js'

const redisSkip = await sharedRedisSkipReason()

/** A gate a handler waits at: `arrived` once it is there, `open()` lets it go on. */
function gate (): { arrived: Promise<void>, wait: () => Promise<void>, open: () => void } {
  let arrive: () => void = () => {}
  let open: () => void = () => {}
  const arrived = new Promise<void>((resolve) => { arrive = resolve })
  const opened = new Promise<void>((resolve) => { open = resolve })
  return { arrived, open, wait: () => { arrive(); return opened } }
}

/** The one Set-Cookie line for `sid` in a response, or undefined. */
function sidLine (response: LightMyRequestResponse): string | undefined {
  const lines = setCookies(response).filter((line) => line.startsWith('sid='))
  if (lines.length > 1) throw new Error('two Set-Cookie lines for sid')
  return lines[0]
}

// ---------------------------------------------------------------------------------------------
// 1. regenerate() after a concurrent logout is a logout

interface StoreView {
  name: string
  skip?: string | null
  make: (t: Tap) => Promise<{ factory: SessionFactory<any>, sessions: () => Promise<Array<Record<string, unknown>>> }>
}
type Tap = Parameters<Parameters<typeof t.test>[0]>[0]

/** A factory over JSON rows whose destroy() answers nothing (void): the plugin must ask load() whether the record was live. */
class VoidDestroyFactory implements SessionFactory<any> {
  readonly rows = new Map<string, string>()
  calls: string[] = []

  load (id: string): Session<any> | null {
    this.calls.push('load')
    const row = this.rows.get(id)
    return row === undefined ? null : Session.fromJSON(JSON.parse(row))
  }

  save (session: Session<any>): string {
    this.calls.push('save')
    const id = session.id as string
    // Never recreate a record destroyed meanwhile (the factory contract).
    if (!session.isNew && !this.rows.has(id)) return id
    this.rows.set(id, JSON.stringify(session))
    return id
  }

  destroy (id: string): void {
    this.calls.push('destroy')
    this.rows.delete(id)
  }
}

const stores: StoreView[] = [
  {
    name: 'MemoryFactory',
    async make () {
      const factory = new MemoryFactory()
      // The user's sessions, read through the factory itself: every id it holds, loaded.
      const ids = new Set<string>()
      const save = factory.save.bind(factory)
      factory.save = (session) => {
        const id = save(session)
        Promise.resolve(id).then((value) => ids.add(value), () => {})
        return id
      }
      return {
        factory,
        sessions: async () => (await Promise.all([...ids].map(async (id) => factory.load(id)))).filter((s) => s !== null).map((s) => ({ ...s.data }))
      }
    }
  },
  {
    name: 'RedisFactory',
    skip: redisSkip,
    async make (t) {
      const client: Redis = await sharedClient()
      const prefix = randomPrefix()
      t.teardown(async () => {
        await removeKeys(client, prefix)
        client.disconnect()
      })
      const factory = new RedisFactory({ client, prefix })
      return {
        factory,
        // Every key under the prefix, read back through the factory (a key that is not a session would show as null).
        sessions: async () => Promise.all((await keysUnder(client, prefix)).map(async (key) => ({ ...(await factory.load(key.slice(prefix.length)))?.data })))
      }
    }
  },
  {
    name: 'fromExpressStore(MemoryStore)',
    async make () {
      const store = new expressSession.MemoryStore()
      const all = promisify(store.all.bind(store)) as () => Promise<Record<string, Record<string, unknown>> | null>
      return {
        factory: fromExpressStore(store),
        sessions: async () => Object.values(await all() ?? {})
      }
    }
  },
  {
    name: 'a factory whose destroy returns void',
    async make () {
      const factory = new VoidDestroyFactory()
      return { factory, sessions: async () => [...factory.rows.values()].map((row) => JSON.parse(row).data) }
    }
  }
]

/** An app where POST /slow-login loads the session, waits at the gate, then regenerates and logs in as mallory. */
async function raceApp (factory: SessionFactory<any>, wait: () => Promise<void>): Promise<FastifyInstance> {
  const app = await buildApp({ factory })
  app.post('/slow-login', {
    preHandler: async (request) => {
      request.session.get('user')
      await wait()
    }
  }, async (request) => {
    await request.session.regenerate()
    request.session.set('user', 'mallory')
    return { ok: true }
  })
  return app
}

/**
 * Ada logs in; request A (the slow login) loads her session and waits at the gate; request B
 * logs her out; then A goes on (after `beforeA`). B's and A's responses, and ada's cookie.
 */
async function loginRacingLogout (app: FastifyInstance, race: ReturnType<typeof gate>, beforeA = (): void => {}): Promise<{
  cookie: string, logout: LightMyRequestResponse, a: LightMyRequestResponse
}> {
  const client = new Client(app)
  await client.post('/login', { user: 'ada' })
  const cookie = client.cookie as string
  const slow = app.inject({ method: 'POST', url: '/slow-login', headers: { cookie } })
  await race.arrived
  const logout = await app.inject({ method: 'POST', url: '/logout', headers: { cookie } })
  beforeA()
  race.open()
  return { cookie, logout, a: await slow }
}

for (const store of stores) {
  t.test(`${store.name}: regenerate() after a concurrent logout is a logout: nothing written, cookie cleared`, { skip: store.skip ?? false }, async (t) => {
    const { factory, sessions } = await store.make(t)

    // First without a logout in between: the regenerate saves under a new id (the assertions below can fail).
    const control = gate()
    const app = await raceApp(factory, control.wait)
    t.teardown(() => app.close())
    const ada = new Client(app)
    await ada.post('/login', { user: 'ada' })
    const before = ada.cookie as string
    control.open()
    const regenerated = await app.inject({ method: 'POST', url: '/slow-login', headers: { cookie: before } })
    t.equal(regenerated.statusCode, 200)
    const fresh = sessionCookie(regenerated)
    t.ok(fresh !== undefined && sessionIdOf(fresh) !== '' && sessionIdOf(fresh) !== sessionIdOf(before), 'without a logout: a new id in the cookie')
    t.same((await sessions()).filter((s) => s.user !== undefined).map((s) => s.user), ['mallory'], 'without a logout: one session, the new one')
    await app.inject({ method: 'POST', url: '/logout', headers: { cookie: fresh as string } })
    t.same(await sessions(), [], 'logged out: the store is empty again')

    // Now request A (the slow login) loads ada's session, B logs out, then A regenerates.
    const race = gate()
    const raced = await raceApp(factory, race.wait)
    t.teardown(() => raced.close())
    const { cookie, logout, a } = await loginRacingLogout(raced, race)
    t.equal(cookieValueIn(logout.headers['set-cookie']), '', 'B logged out')
    t.equal(a.statusCode, 200)
    t.equal(cookieValueIn(a.headers['set-cookie']), '', 'A\'s response clears the cookie')
    t.equal(setCookies(a).length, 1, 'and sets no other')
    t.same(await sessions(), [], 'the store holds no session (none with user)')
    t.same((await raced.inject({ url: '/read', headers: { cookie } })).json().data, {}, 'the old cookie opens nothing')
  })
}

t.test('a factory whose destroy returns void: the plugin asks load() before it treats regenerate as a login', async (t) => {
  const factory = new VoidDestroyFactory()
  const race = gate()
  const app = await raceApp(factory, race.wait)
  t.teardown(() => app.close())
  const { a } = await loginRacingLogout(app, race, () => { factory.calls.length = 0 })
  t.equal(cookieValueIn(a.headers['set-cookie']), '')
  t.same(factory.calls, ['load'], 'one load found the record gone; no save')
})

// ---------------------------------------------------------------------------------------------
// 2. Timeouts fail closed

/** A user's factory that hands back whatever clocks its rows hold, without checking them. */
class RawClockFactory implements SessionFactory<any> {
  readonly rows = new Map<string, { data: Record<string, unknown>, createdAt: unknown, touchedAt: unknown }>()

  async load (id: string): Promise<Session<any> | null> {
    const row = this.rows.get(id)
    if (row === undefined) return null
    const session = new Session(row.data, id)
    ;(session as { createdAt: unknown }).createdAt = row.createdAt
    ;(session as { touchedAt: unknown }).touchedAt = row.touchedAt
    return session
  }

  async save (session: Session<any>): Promise<string> {
    const id = session.id as string
    const row = this.rows.get(id)
    this.rows.set(id, { data: { ...row?.data, ...session.data }, createdAt: session.createdAt, touchedAt: session.touchedAt })
    return id
  }

  async destroy (id: string): Promise<boolean> {
    return this.rows.delete(id)
  }
}

async function clockApp (t: Tap): Promise<{ app: FastifyInstance, factory: RawClockFactory, cookie: string, id: string }> {
  const factory = new RawClockFactory()
  const app = await buildApp({ factory })
  t.teardown(() => app.close())
  const cookie = sessionCookie(await app.inject({ method: 'POST', url: '/set', payload: { user: 'ada' } })) as string
  const id = sessionIdOf(cookie)
  t.ok(factory.rows.has(id), 'stored')
  return { app, factory, cookie, id }
}

// NaN is what Session.fromJSON makes of a missing clock: every timeout check reads it as expired.
const missing: Array<[string, unknown, unknown]> = [
  ['createdAt undefined', undefined, 'now'],
  ['touchedAt undefined', 'now', undefined],
  ['both undefined', undefined, undefined],
  ['touchedAt null', 'now', null],
  ['createdAt NaN', Number.NaN, 'now'],
  ['touchedAt NaN', 'now', Number.NaN]
]

for (const [name, createdAt, touchedAt] of missing) {
  t.test(`a loaded session with ${name} is expired: fresh session, record destroyed, cookie cleared`, async (t) => {
    const { app, factory, cookie, id } = await clockApp(t)
    const row = factory.rows.get(id) as { createdAt: unknown, touchedAt: unknown }
    row.createdAt = createdAt === 'now' ? Date.now() : createdAt
    row.touchedAt = touchedAt === 'now' ? Date.now() : touchedAt
    const response = await app.inject({ url: '/read', headers: { cookie } })
    t.equal(response.statusCode, 200)
    t.same(response.json().data, {}, 'not served')
    t.equal(factory.rows.has(id), false, 'the record is destroyed')
    t.equal(cookieValueIn(response.headers['set-cookie']), '', 'the stale cookie is cleared')
  })
}

t.test('a user factory that builds its session with Session.fromJSON from a record without clocks: expired, not a 503', async (t) => {
  const rows = new Map<string, Record<string, unknown>>([['no-clocks-0123456789abcdef', { user: 'ada' }]])
  const factory: SessionFactory<any> = {
    load: (id) => rows.has(id) ? Session.fromJSON({ id, data: rows.get(id) } as never) : null,
    save: (session) => session.id as string,
    destroy: (id) => rows.delete(id)
  }
  const app = await buildApp({ factory })
  t.teardown(() => app.close())
  const response = await app.inject({ url: '/read', headers: { cookie: `sid=${signId('no-clocks-0123456789abcdef', SECRET)}` } })
  t.equal(response.statusCode, 200)
  t.same(response.json().data, {}, 'not served')
  t.equal(rows.size, 0, 'destroyed')
})

t.test('RedisFactory: a hash without clocks (RedisFactory.load gives NaN) is expired through the plugin, not a 503', { skip: redisSkip ?? false }, async (t) => {
  const client = await sharedClient()
  const prefix = randomPrefix()
  t.teardown(async () => {
    await removeKeys(client, prefix)
    client.disconnect()
  })
  await client.hset(`${prefix}no-clocks-0123456789abcdef`, { 'd:user': '"ada"' })
  const app = await buildApp({ factory: new RedisFactory({ client, prefix }) })
  t.teardown(() => app.close())
  const response = await app.inject({ url: '/read', headers: { cookie: `sid=${signId('no-clocks-0123456789abcdef', SECRET)}` } })
  t.equal(response.statusCode, 200)
  t.same(response.json().data, {}, 'not served')
  t.same(await keysUnder(client, prefix), [], 'destroyed')
})

t.test('numeric-string clocks are read as numbers: an old session expires, a recent one is served', async (t) => {
  const { app, factory, cookie, id } = await clockApp(t)
  const row = factory.rows.get(id) as { createdAt: unknown, touchedAt: unknown }
  row.createdAt = String(Date.now() - 1000)
  row.touchedAt = String(Date.now() - 1000)
  const recent = await app.inject({ url: '/read', headers: { cookie } })
  t.equal(recent.statusCode, 200)
  t.same(recent.json().data, { user: 'ada' }, 'a recent one is served')
  t.equal(setCookies(recent).length, 0)

  row.createdAt = '1700000000000' // November 2023: past the 7-day absolute timeout
  row.touchedAt = String(Date.now() - 1000)
  const old = await app.inject({ url: '/read', headers: { cookie } })
  t.same(old.json().data, {}, 'an old one is not served')
  t.equal(factory.rows.has(id), false, 'and destroyed')
})

const corrupt: Array<[string, unknown]> = [['\'soon\'', 'soon'], ['{}', {}], ['Infinity', Infinity], ['\'1e12\'', '1e12'], ['true', true]]

for (const [name, value] of corrupt) {
  for (const field of ['createdAt', 'touchedAt'] as const) {
    t.test(`${field} = ${name} is a corrupt record: 503 FST_SESSION_STORE_UNAVAILABLE, cookie and record untouched`, async (t) => {
      const { app, factory, cookie, id } = await clockApp(t)
      const row = factory.rows.get(id) as { createdAt: unknown, touchedAt: unknown }
      row[field] = value
      const response = await app.inject({ url: '/read', headers: { cookie } })
      t.equal(response.statusCode, 503)
      t.equal(response.json().code, 'FST_SESSION_STORE_UNAVAILABLE')
      t.same(setCookies(response), [], 'cookie untouched')
      t.ok(factory.rows.has(id), 'record untouched')
    })
  }
}

// ---------------------------------------------------------------------------------------------
// 4. Cookies the app did not ask for wait for a response no shared cache may store

const PUBLIC = 'public, max-age=600'

/** buildApp plus GET /cached, which sets the given Cache-Control and never reads the session. */
async function cacheApp (t: Tap, options: Options = {}): Promise<FastifyInstance> {
  const app = await buildApp(options)
  app.get<{ Querystring: { cc?: string } }>('/cached', async (request, reply) => {
    reply.header('cache-control', request.query.cc ?? PUBLIC)
    return 'the same for everyone'
  })
  t.teardown(() => app.close())
  return app
}

const cached = (cc: string): string => `/cached?cc=${encodeURIComponent(cc)}`

t.test('re-signing after a secret rotation waits for a response shared caches may not store', async (t) => {
  const factory = new MemoryFactory()
  const before = await cacheApp(t, { factory, secret: OLD_SECRET })
  const oldCookie = sessionCookie(await before.inject({ method: 'POST', url: '/set', payload: { user: 'ada' } })) as string
  const app = await cacheApp(t, { factory, secret: [SECRET, OLD_SECRET] })

  for (const cc of [PUBLIC, 's-maxage=600', 'max-age=600']) {
    const response = await app.inject({ url: cached(cc), headers: { cookie: oldCookie } })
    t.equal(response.statusCode, 200)
    t.same(setCookies(response), [], `${cc}: no Set-Cookie`)
    t.equal(response.headers['cache-control'], cc, `${cc}: the app's Cache-Control kept`)
  }
  for (const cc of ['private, max-age=600', 'no-store']) {
    const response = await app.inject({ url: cached(cc), headers: { cookie: oldCookie } })
    const value = cookieValueIn(response.headers['set-cookie']) as string
    t.ok(value !== undefined && new Signer(SECRET).unsign(value).valid, `${cc}: re-signed with the new secret`)
    t.equal(response.headers['cache-control'], cc)
  }
  const later = await app.inject({ url: '/untouched', headers: { cookie: oldCookie } })
  const value = cookieValueIn(later.headers['set-cookie']) as string
  t.ok(value !== undefined && new Signer(SECRET).unsign(value).valid, 'a later ordinary response carries it')
  t.equal(later.headers['cache-control'], 'private')
})

t.test('clearing a stale cookie waits for a response shared caches may not store', async (t) => {
  const app = await cacheApp(t)
  const stale = `sid=${signId('a-session-that-no-longer-exists-0123456789', SECRET)}`
  for (const cc of [PUBLIC, 's-maxage=60']) {
    const response = await app.inject({ url: cached(cc), headers: { cookie: stale } })
    t.same(setCookies(response), [], `${cc}: not cleared here`)
  }
  for (const cc of ['private, max-age=600', 'no-store']) {
    const response = await app.inject({ url: cached(cc), headers: { cookie: stale } })
    t.equal(cookieValueIn(response.headers['set-cookie']), '', `${cc}: cleared`)
  }
  const later = await app.inject({ url: '/untouched', headers: { cookie: stale } })
  t.equal(cookieValueIn(later.headers['set-cookie']), '', 'cleared on a later ordinary response')
})

t.test('the rolling refresh of a persistent cookie is not sent on a shared-cacheable response', async (t) => {
  const clock = fakeClock(t)
  // A touch, and with it the cookie's refresh, is due every tenth of the idle timeout: 60 s.
  const app = await cacheApp(t, { idleTimeout: 600, cookie: { maxAge: 3600 } })
  const client = new Client(app)
  await client.post('/set', { user: 'ada' })
  const cookie = client.cookie as string
  clock.advance(100_000)
  const response = await app.inject({ url: cached(PUBLIC), headers: { cookie } })
  t.same(setCookies(response), [], 'no Set-Cookie on the public response')
  clock.advance(100_000) // due again
  const later = await app.inject({ url: '/untouched', headers: { cookie } })
  const line = sidLine(later)
  t.ok(line !== undefined && attributesOf(line)['Max-Age'] === '3600', 'a later ordinary response refreshes it')
})

t.test('the rolling refresh deferred from a public response arrives on the next ordinary response', async (t) => {
  const clock = fakeClock(t)
  const app = await cacheApp(t, { idleTimeout: 600, cookie: { maxAge: 3600 } })
  const client = new Client(app)
  await client.post('/set', { user: 'ada' })
  const cookie = client.cookie as string
  clock.advance(100_000)
  t.same(setCookies(await app.inject({ url: cached(PUBLIC), headers: { cookie } })), [])
  clock.advance(1000)
  const line = sidLine(await app.inject({ url: '/untouched', headers: { cookie } }))
  t.ok(line !== undefined && attributesOf(line)['Max-Age'] === '3600', 'the refresh the public response held back')
})

t.test('a reseal with a rotated SealedCookieFactory key waits for a response shared caches may not store', async (t) => {
  const oldKey = randomBytes(32)
  const newKey = randomBytes(32)
  const before = await cacheApp(t, { factory: new SealedCookieFactory({ keys: oldKey }) })
  const cookie = sessionCookie(await before.inject({ method: 'POST', url: '/set', payload: { user: 'ada' } })) as string
  const app = await cacheApp(t, { factory: new SealedCookieFactory({ keys: [newKey, oldKey] }) })
  const opensWithNewKeyOnly = async (value: string | undefined): Promise<boolean> => {
    // A seal authenticates itself: the cookie carries it unsigned.
    return value !== undefined && (await new SealedCookieFactory({ keys: newKey }).load(value))?.get('user') === 'ada'
  }

  for (const cc of [PUBLIC, 's-maxage=600']) {
    const response = await app.inject({ url: cached(cc), headers: { cookie } })
    t.same(setCookies(response), [], `${cc}: no reseal here`)
  }
  const priv = await app.inject({ url: cached('private'), headers: { cookie } })
  t.ok(await opensWithNewKeyOnly(cookieValueIn(priv.headers['set-cookie'])), 'private: resealed with the new key')
  const later = await app.inject({ url: '/untouched', headers: { cookie } })
  t.ok(await opensWithNewKeyOnly(cookieValueIn(later.headers['set-cookie'])), 'a later ordinary response carries the reseal')
})

// ---------------------------------------------------------------------------------------------
// Smaller items

/** An app whose POST /slow-set loads the session, waits at the gate, then sets a key. */
async function slowSetApp (t: Tap, options: Options, wait: () => Promise<void>): Promise<FastifyInstance> {
  const app = await buildApp(options)
  app.post('/slow-set', {
    preHandler: async (request) => {
      request.session.get('user')
      await wait()
    }
  }, async (request) => {
    request.session.set('late', true)
    return { ok: true }
  })
  t.teardown(() => app.close())
  return app
}

const deadCookieCases: Array<[string, Options, string]> = [
  ['a browser-session cookie', {}, SECRET],
  ['a persistent cookie (maxAge, rolled with every save)', { cookie: { maxAge: 3600 } }, SECRET],
  ['a cookie signed with an older secret (due for re-signing)', { secret: [SECRET, OLD_SECRET] }, OLD_SECRET]
]

for (const [name, options, signWith] of deadCookieCases) {
  t.test(`a save that finds its record gone does not re-send the dead cookie: ${name}`, async (t) => {
    const factory = new MemoryFactory()
    const slow = gate()
    const app = await slowSetApp(t, { factory, ...options }, slow.wait)
    const client = new Client(app)
    await client.post('/login', { user: 'ada' })
    const id = sessionIdOf(client.cookie as string)
    const cookie = `sid=${signId(id, signWith)}`
    const pending = app.inject({ method: 'POST', url: '/slow-set', headers: { cookie } })
    await slow.arrived
    await app.inject({ method: 'POST', url: '/logout', headers: { cookie } })
    slow.open()
    const a = await pending
    t.equal(a.statusCode, 200)
    const value = cookieValueIn(a.headers['set-cookie'])
    t.ok(value === undefined || !value.startsWith(`${id}.`), 'no Set-Cookie for the dead id')
    t.equal(factory.size, 0, 'nothing recreated')
  })
}

t.test('a live session saved with the same id still gets its rolling or re-signed cookie (the check above can fail)', async (t) => {
  for (const [name, options, signWith] of deadCookieCases.slice(1)) {
    const factory = new MemoryFactory()
    const open = gate()
    open.open()
    const app = await slowSetApp(t, { factory, ...options }, open.wait)
    const client = new Client(app)
    await client.post('/login', { user: 'ada' })
    const id = sessionIdOf(client.cookie as string)
    const a = await app.inject({ method: 'POST', url: '/slow-set', headers: { cookie: `sid=${signId(id, signWith)}` } })
    t.ok(cookieValueIn(a.headers['set-cookie'])?.startsWith(`${id}.`), `${name}: the live id is re-sent`)
  }
})

t.test('cookie.maxAge beyond 400 days (1e300, 34,560,001) fails registration with FST_SESSION_INVALID_OPTIONS', async (t) => {
  for (const maxAge of [1e300, 34_560_001, Number.MAX_SAFE_INTEGER]) {
    const app = Fastify()
    app.register(sessionPlugin, { factory: new MemoryFactory(), secret: SECRET, cookie: { maxAge } })
    const error = await app.ready().then(() => null, (error: { code?: string }) => error)
    t.equal(error?.code, 'FST_SESSION_INVALID_OPTIONS', String(maxAge))
    await app.close()
  }
  const app = Fastify()
  await app.register(sessionPlugin, { factory: new MemoryFactory(), secret: SECRET, cookie: { maxAge: 34_560_000 } })
  await app.close()
  t.pass('400 days exactly is accepted')
})

/** An app whose GET / sets a key, over the given factory. */
async function plainApp (t: Tap, factory: SessionFactory<any>): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(sessionPlugin, { factory, secret: SECRET })
  app.get('/', async (request) => {
    request.session.set('a', 1)
    return 'x'
  })
  t.teardown(() => app.close())
  return app
}

const anyCookie = `sid=${signId('some-id-the-factory-is-asked-about', SECRET)}`
const fake = (): Session => Object.create(Session.prototype) as Session

const broken: Array<[string, SessionFactory<any>, string | undefined]> = [
  ['load resolves to Object.create(Session.prototype)', { load: async () => fake(), save: async () => 'id' }, anyCookie],
  ['load returns Object.create(Session.prototype) synchronously', { load: () => fake(), save: () => 'id' }, anyCookie],
  ['load throws synchronously', { load: () => { throw new Error('load threw') }, save: () => 'id' }, anyCookie],
  ['save returns \'\' synchronously', { load: () => null, save: () => '' }, undefined],
  ['save returns a number synchronously', { load: () => null, save: () => 42 as unknown as string }, undefined]
]

for (const [name, factory, cookie] of broken) {
  t.test(`a factory whose ${name}: 503 FST_SESSION_STORE_UNAVAILABLE, no cookie`, async (t) => {
    const app = await plainApp(t, factory)
    const response = await app.inject({ url: '/', headers: cookie === undefined ? {} : { cookie } })
    t.equal(response.statusCode, 503)
    t.equal(response.json().code, 'FST_SESSION_STORE_UNAVAILABLE')
    t.same(setCookies(response), [])
  })
}
