// Defects the hardening tests found in the core, each pinned by a test named after it.
import Fastify from 'fastify'
import t from 'tap'
import sessionPlugin, { MemoryFactory, RedisFactory, Session, type SessionFactory } from '../src/index.js'
import { idHash, redactId } from '../src/redact.js'
import { SECRET, buildApp, sessionCookie } from './helpers/app.js'
import { LogTrap, cookieValueIn } from './helpers/log-trap.js'
import { cleaningClient, randomPrefix, sharedRedisSkipReason } from './helpers/redis.js'
import { factoriesUnderTest, useFactory } from './helpers/factories-under-test.js'

const redisSkip = await sharedRedisSkipReason()

t.test('readCookie is linear: a 600 kB Cookie header of "="-less segments costs milliseconds, not seconds', async (t) => {
  const app = await buildApp()
  t.teardown(() => app.close())
  const login = await app.inject({ method: 'POST', url: '/login', payload: { user: 'ada' } })
  const cookie = sessionCookie(login) as string
  for (const filler of [';', 'a;', ' sid;']) {
    const header = filler.repeat(Math.ceil(600_000 / filler.length)) + cookie
    const started = performance.now()
    const response = await app.inject({ method: 'GET', url: '/read', headers: { cookie: header } })
    const elapsed = performance.now() - started
    t.equal(response.json().data.user, 'ada', `the cookie after ${JSON.stringify(filler)} filler is found`)
    // Quadratic scanning took ~5 s here; linear takes ~10 ms. The bound leaves room for a loaded box.
    t.ok(elapsed < 1_500, `${JSON.stringify(filler)} filler: ${elapsed.toFixed(0)} ms`)
  }
})

t.test('a factory error that names the session id is logged with a short hash, never the id', async (t) => {
  const trap = new LogTrap()
  const inner = new MemoryFactory()
  const thrown: Error[] = []
  let mode: 'reject' | 'throw' | 'frozen' | 'string' | 'object' = 'reject'
  const careless: SessionFactory<any> = {
    load: (id) => {
      const error = new Error(`cannot read session ${id}`, { cause: new Error(`connection lost during GET ${id}`) })
      thrown.push(error)
      if (mode === 'throw') throw error
      if (mode === 'frozen') return Promise.reject(Object.freeze(error))
      // eslint-disable-next-line prefer-promise-reject-errors
      if (mode === 'string') return Promise.reject(`cannot read session ${id}`)
      // eslint-disable-next-line prefer-promise-reject-errors
      if (mode === 'object') return Promise.reject({ reason: 'gone', key: `sessions:${id}`, tried: [id] })
      return Promise.reject(error)
    },
    save: (session) => inner.save(session)
  }
  const app = Fastify({ logger: trap.logger })
  await app.register(sessionPlugin, { factory: careless, secret: SECRET })
  app.post('/set', async (request) => {
    request.session.set('user', 'ada')
    return 'ok'
  })
  app.get('/read', async (request) => request.session.get('user') ?? null)
  const causes: unknown[] = []
  app.addHook('onError', async (_request, _reply, error) => { causes.push(error.cause) })
  t.teardown(() => app.close())

  const value = cookieValueIn((await app.inject({ method: 'POST', url: '/set' })).headers['set-cookie']) as string
  const id = value.slice(0, value.lastIndexOf('.'))
  trap.rememberCookie(value)
  for (const each of ['reject', 'throw', 'string', 'object'] as const) {
    mode = each
    const response = await app.inject({ method: 'GET', url: '/read', headers: { cookie: `sid=${encodeURIComponent(value)}` } })
    t.equal(response.statusCode, 503, `${each}: 503`)
  }
  t.equal(causes[0], thrown[0], 'the cause is the factory\'s own error object, not a copy')
  t.equal(causes[1], thrown[1])
  t.match((causes[0] as Error).message, `[session #${idHash(id)}]`, 'the id is replaced by its short hash')
  t.notMatch(((causes[0] as Error).cause as Error).message, id, 'in nested causes too')
  t.same(trap.leaks(), [], 'the id is in no log line')
  t.equal(trap.errors().length, 4, 'each fault still logged once')
  t.match(causes[3], { reason: 'gone', key: `sessions:[session #${idHash(id)}]` }, 'an object cause keeps its other properties')

  mode = 'frozen'
  const frozen = await app.inject({ method: 'GET', url: '/read', headers: { cookie: `sid=${encodeURIComponent(value)}` } })
  t.equal(frozen.statusCode, 503, 'a frozen error cannot be redacted, but it is still a 503, never a crash')
})

t.test('redactId leaves alone what it cannot or need not change', async (t) => {
  const error = new Error('no id here')
  t.equal(redactId(error, 'some-session-id').message, 'no id here')
  t.equal(redactId(error, '').message, 'no id here', 'an empty id replaces nothing')
  t.equal(redactId(error, null), error)
  t.equal(redactId('a string cause', 'zz'), 'a string cause', 'a string without the id is kept as it is')
  t.equal(redactId(null, 'a'), null)
  t.equal(redactId(42, 'a'), 42)
  const cycle: Record<string, unknown> = { note: 'id-123 here' }
  cycle.self = cycle
  t.equal(redactId(cycle, 'id-123').note, `[session #${idHash('id-123')}] here`, 'a cycle is walked to a bounded depth')
})

t.test('a value JSON cannot hold is reported by its top-level key, never by the keys (data) inside it', async (t) => {
  const trap = new LogTrap()
  const app = Fastify({ logger: trap.logger })
  await app.register(sessionPlugin, { factory: new MemoryFactory(), secret: SECRET })
  app.post('/contacts', async (request) => {
    request.session.set('contacts', { 'grace.hopper@example.com': { phones: ['555-0100', () => 'not json'] } })
    return 'ok'
  })
  t.teardown(() => app.close())
  trap.remember('grace.hopper@example.com')

  const response = await app.inject({ method: 'POST', url: '/contacts' })
  t.equal(response.statusCode, 500)
  t.equal(response.json().code, 'FST_SESSION_NOT_SERIALIZABLE')
  t.match(response.json().message, '"/contacts/*/*/1"', 'the path keeps the top-level key and array indices')
  t.same(trap.leaks(), [], 'the email used as a key is in no log line')
})

t.test('RedisFactory keeps a session key that holds a lone surrogate, instead of mangling it to U+FFFD', { skip: redisSkip ?? false }, async (t) => {
  const prefix = randomPrefix()
  const client = await cleaningClient(t, prefix)
  const factory = new RedisFactory({ client, prefix })
  const data = { '\ud800': 'a lone high surrogate', 'x\udfff': ['a lone low one'], 'ok 🍪': 1, 'e:': 'looks like the escape prefix' }
  const fresh = new Session<any>(data)
  fresh.id = 'lone-surrogates'
  fresh.expiresAt = Date.now() + 60_000
  const id = await factory.save(fresh)
  const loaded = await factory.load(id) as Session<any>
  t.same({ ...loaded.data }, data, 'every key comes back as it was written')

  loaded.set('\ud800', 'changed')
  loaded.delete('x\udfff')
  loaded.expiresAt = Date.now() + 60_000
  await factory.save(loaded)
  t.same({ ...(await factory.load(id) as Session<any>).data }, { '\ud800': 'changed', 'ok 🍪': 1, 'e:': 'looks like the escape prefix' }, 'changes and deletes reach the same field')

  await client.hset(`${prefix}corrupt`, { 'm:createdAt': '1', 'm:touchedAt': '1', 'e:not json': '1' })
  await t.rejects(factory.load('corrupt'), { code: 'FST_SESSION_CORRUPT_RECORD' }, 'an escaped key that is not JSON is a corrupt record')
})

t.test('reserved keys written into session.data directly (not through set) never come back from a store', async (t) => {
  for (const under of factoriesUnderTest) {
    if (under.skip !== undefined) continue
    const { factory, dispose } = await useFactory(under)
    t.teardown(dispose)
    const app = await buildApp({ factory })
    t.teardown(() => app.close())
    app.post('/merge-raw', async (request) => {
      // What a careless app does with a client's JSON: its own "__proto__" key lands as data.
      Object.assign(request.session.data, JSON.parse('{"__proto__":{"isAdmin":true},"constructor":1,"prototype":2}'))
      request.session.set('user', 'ada')
      return 'ok'
    })
    const written = await app.inject({ method: 'POST', url: '/merge-raw' })
    const cookie = sessionCookie(written) as string
    const read = await app.inject({ url: '/read', headers: { cookie } })
    const data = read.json().data
    t.same(Object.keys(data), ['user'], `${under.name}: only the key set() wrote comes back`)
    t.equal(Object.assign({}, data).isAdmin, undefined, `${under.name}: a copy of the data is not polluted`)
  }
})
