import t from 'tap'
import Fastify from 'fastify'
import sessionPlugin, { Session, fromExpressStore, type ExpressStore } from '../src/index.js'
import { expressSession } from './helpers/express-stores.js'
import { Client, SECRET, buildApp, sessionCookie } from './helpers/app.js'

type Callback = (error?: unknown, value?: unknown) => void

/** An express-style callback store over a Map of records (cloned, not JSON: a test can plant anything). */
class RecordStore implements ExpressStore {
  readonly records = new Map<string, unknown>()
  /** The objects handed to set(), before any serialization. */
  readonly written: unknown[] = []
  fail: Partial<Record<'get' | 'set' | 'destroy', 'callback' | 'throw' | 'enoent'>> = {}

  #fault (method: 'get' | 'set' | 'destroy', callback: Callback): boolean {
    const fault = this.fail[method]
    if (fault === undefined) return false
    if (fault === 'throw') throw new Error(`${method} threw`)
    callback(Object.assign(new Error(`${method} failed`), fault === 'enoent' ? { code: 'ENOENT' } : {}))
    return true
  }

  get (sid: string, callback: Callback): void {
    if (this.#fault('get', callback)) return
    const record = this.records.get(sid)
    callback(null, record === undefined ? null : structuredClone(record))
  }

  set (sid: string, session: unknown, callback: Callback): void {
    if (this.#fault('set', callback)) return
    this.written.push(session)
    this.records.set(sid, structuredClone(session))
    callback()
  }

  destroy (sid: string, callback: Callback): void {
    if (this.#fault('destroy', callback)) return
    this.records.delete(sid)
    callback()
  }
}

function idOf (cookie: string): string {
  return decodeURIComponent(cookie.slice(cookie.indexOf('=') + 1)).replace(/\.[^.]*$/, '')
}

t.test('fromExpressStore refuses what is not a callback store', async (t) => {
  for (const store of [null, 'redis://', {}, { get () {}, set () {} }, { get () {}, set: 1, destroy () {} }]) {
    t.throws(() => fromExpressStore(store as unknown as ExpressStore), { code: 'FST_SESSION_INVALID_OPTIONS' })
  }
})

t.test('through the plugin on express-session\'s MemoryStore: sessions live in the store, in its format', async (t) => {
  const store = new expressSession.MemoryStore()
  const app = await buildApp({ factory: fromExpressStore(store) })
  t.teardown(() => app.close())
  const client = new Client(app)
  t.same((await client.get('/')).json(), { visits: 1 })
  t.same((await client.get('/')).json(), { visits: 2 })

  const sessions = (store as unknown as { sessions: Record<string, string> }).sessions
  const id = idOf(client.cookie as string)
  t.same(Object.keys(sessions), [id], 'one record, under the id the cookie carries')
  const record = JSON.parse(sessions[id] as string)
  t.same(Object.keys(record).sort(), ['cookie', 'counter'])
  t.equal(record.counter, 2)
  t.same(Object.keys(record.cookie).sort(), ['createdAt', 'expires', 'originalMaxAge', 'touchedAt'])
  t.equal(record.cookie.originalMaxAge, null)
  t.equal(typeof record.cookie.createdAt, 'number')
  t.equal(Date.parse(record.cookie.expires), record.cookie.touchedAt + 86_400_000, 'expires is the idle expiry: the store\'s TTL')

  const loaded = await fromExpressStore(store).load(id)
  t.equal(loaded?.createdAt, record.cookie.createdAt)
  t.equal(loaded?.touchedAt, record.cookie.touchedAt)
  t.equal(loaded?.expiresAt, Date.parse(record.cookie.expires))

  t.equal((await client.post('/logout')).statusCode, 200)
  t.same(Object.keys(sessions), [], 'logout destroys the record')
})

t.test('the cookie object offers maxAge as express-session\'s does, without storing it', async (t) => {
  const store = new RecordStore()
  const factory = fromExpressStore(store)
  const session = new Session({ a: 1 }, null)
  session.id = 'one'
  session.expiresAt = Date.now() + 60_000
  await factory.save(session)
  const record = store.written[0] as { cookie: { maxAge: number, expires: Date } }
  t.ok(record.cookie.expires instanceof Date)
  t.ok(record.cookie.maxAge > 50_000 && record.cookie.maxAge <= 60_000)
  t.notMatch(JSON.stringify(record), /maxAge"/)

  const bare = new Session({ a: 1 })
  const id = await factory.save(bare)
  t.match(id, /^[\w-]{43}$/, 'a session saved without an id gets a random one')
  const unbounded = store.written[1] as { cookie: { maxAge: number | null, expires: Date | null } }
  t.equal(unbounded.cookie.expires, null, 'no expiresAt: the store applies its own default TTL')
  t.equal(unbounded.cookie.maxAge, null)
  t.ok(await factory.load(id))
})

t.test('records past their expiry load as null; records that are not sessions are corrupt', async (t) => {
  const store = new RecordStore()
  const factory = fromExpressStore(store)
  store.records.set('text', 'not an object')
  store.records.set('list', [1, 2])
  await t.rejects(async () => await factory.load('text'), { code: 'FST_SESSION_CORRUPT_RECORD' })
  await t.rejects(async () => await factory.load('list'), { code: 'FST_SESSION_CORRUPT_RECORD' })
  const past = new Date(Date.now() - 1_000)
  const planted: Record<string, unknown> = {
    expiredDate: { cookie: { expires: past.toISOString() }, user: 'ada' },
    expiredNumber: { cookie: { expires: past.getTime() }, user: 'ada' }
  }
  for (const [id, record] of Object.entries(planted)) store.records.set(id, record)
  for (const id of Object.keys(planted)) {
    t.equal(await factory.load(id), null, id)
    t.notOk(store.records.has(id), `${id}: an expired record found is destroyed in the store`)
  }
  t.equal(await factory.load('never-saved'), null)

  store.fail = { destroy: 'callback' }
  store.records.set('expired', { cookie: { expires: past.toISOString() } })
  await t.rejects(async () => await factory.load('expired'), { message: 'destroy failed' }, 'a store that cannot destroy it says so')
})

t.test('a record that expired while a request ran is destroyed by its save, not rewritten', async (t) => {
  const store = new RecordStore()
  const factory = fromExpressStore(store)
  const session = new Session({ user: 'ada' })
  session.id = 'x'
  session.expiresAt = Date.now() + 60_000
  await factory.save(session)
  const loaded = await factory.load('x') as Session
  loaded.set('user', 'bob')
  const record = store.records.get('x') as { cookie: { expires: Date } }
  record.cookie.expires = new Date(Date.now() - 1)
  t.equal(await factory.save(loaded), 'x')
  t.notOk(store.records.has('x'), 'gone from the store')
  t.equal(await factory.destroy?.('x'), undefined, 'destroy cannot tell whether it removed a live record: the plugin checks with load')
})

t.test('a record without one of our clocks is expired (and destroyed), not restarted', async (t) => {
  const store = new RecordStore()
  const factory = fromExpressStore(store)
  const expires = new Date(Date.now() + 3_600_000).toISOString()
  const planted: Record<string, unknown> = {
    noCookie: { user: 'ada' },
    nullCookie: { cookie: null, user: 'ada' },
    noTouchedAt: { cookie: { expires, createdAt: Date.now() }, user: 'ada' },
    noCreatedAt: { cookie: { expires, touchedAt: Date.now() }, user: 'ada' },
    nullClocks: { cookie: { expires, createdAt: null, touchedAt: null }, user: 'ada' }
  }
  for (const [id, record] of Object.entries(planted)) store.records.set(id, record)
  for (const id of Object.keys(planted)) {
    t.equal(await factory.load(id), null, id)
    t.notOk(store.records.has(id), `${id}: removed from the store`)
  }
})

t.test('timestamps fail closed: numeric strings are read as numbers, anything else is a corrupt record', async (t) => {
  const store = new RecordStore()
  const factory = fromExpressStore(store)
  const expires = new Date(Date.now() + 3_600_000).toISOString()
  store.records.set('bigint', { cookie: { expires, createdAt: '1700000000000', touchedAt: '1700000001000' }, user: 'ada' })
  const loaded = await factory.load('bigint') as Session
  t.equal(loaded.createdAt, 1_700_000_000_000, 'the clocks are the stored ones, not now')
  t.equal(loaded.touchedAt, 1_700_000_001_000)
  t.equal(loaded.expiresAt, Date.parse(expires))
  const later = Date.now() + 60_000
  store.records.set('numericExpires', { cookie: { expires: String(later), createdAt: 1, touchedAt: 2 } })
  t.equal((await factory.load('numericExpires'))?.expiresAt, later, 'a numeric string expiry is epoch ms')

  const corrupt: Record<string, unknown> = {
    wordCreatedAt: { cookie: { expires, createdAt: 'yesterday', touchedAt: 2 }, user: 'ada' },
    dateTouchedAt: { cookie: { expires, createdAt: 1, touchedAt: '2024-01-01T00:00:00Z' }, user: 'ada' },
    boolCreatedAt: { cookie: { expires, createdAt: true, touchedAt: 2 }, user: 'ada' },
    badExpires: { cookie: { expires: 'tomorrow-ish', createdAt: 1, touchedAt: 2 }, user: 'ada' },
    infiniteExpires: { cookie: { expires: Number.POSITIVE_INFINITY, createdAt: 1, touchedAt: 2 }, user: 'ada' },
    boolExpires: { cookie: { expires: true, createdAt: 1, touchedAt: 2 }, user: 'ada' },
    invalidDate: { cookie: { expires: new Date(Number.NaN), createdAt: 1, touchedAt: 2 }, user: 'ada' }
  }
  for (const [id, record] of Object.entries(corrupt)) store.records.set(id, record)
  for (const id of Object.keys(corrupt)) {
    await t.rejects(async () => await factory.load(id), { code: 'FST_SESSION_CORRUPT_RECORD' }, id)
    t.ok(store.records.has(id), `${id}: kept for someone to look at`)
  }

  store.records.set('prototypeKeys', JSON.parse('{"cookie":{"createdAt":1,"touchedAt":2},"__proto__":{"x":1},"constructor":1,"user":"ada"}'))
  t.same({ ...(await factory.load('prototypeKeys'))?.data }, { user: 'ada' }, 'keys that could reach a prototype are dropped')
})

t.test('through the plugin, an old session stored with string clocks stays expired', async (t) => {
  const store = new RecordStore()
  const app = await buildApp({ factory: fromExpressStore(store), absoluteTimeout: 3_600 })
  t.teardown(() => app.close())
  let cause: unknown
  app.addHook('onError', async (_request, _reply, error) => {
    cause = (error as { cause?: unknown }).cause
  })
  const { Signer } = await import('@fastify/cookie')
  const cookie = (id: string): string => `sid=${new Signer(SECRET, 'sha256').sign(id)}`
  const expires = new Date(Date.now() + 3_600_000).toISOString()
  const old = String(Date.now() - 30 * 86_400_000)
  store.records.set('old', { cookie: { expires, createdAt: old, touchedAt: String(Date.now() - 1_000) }, user: 'ada' })
  const read = await app.inject({ url: '/read', headers: { cookie: cookie('old') } })
  t.equal(read.statusCode, 200)
  t.same(read.json().data, {}, 'past its absolute timeout: a fresh session, not ada\'s')
  t.notOk(store.records.has('old'), 'and the old record is destroyed')

  store.records.set('halfClock', { cookie: { expires, touchedAt: Date.now() }, user: 'ada' })
  t.same((await app.inject({ url: '/read', headers: { cookie: cookie('halfClock') } })).json().data, {}, 'a missing createdAt is expired')

  store.records.set('corrupt', { cookie: { expires, createdAt: 'now', touchedAt: 'now' }, user: 'ada' })
  const response = await app.inject({ url: '/read', headers: { cookie: cookie('corrupt') } })
  t.equal(response.statusCode, 503)
  t.equal(response.json().code, 'FST_SESSION_STORE_UNAVAILABLE')
  t.equal((cause as { code?: string }).code, 'FST_SESSION_CORRUPT_RECORD')
})

t.test('a record written by express-session (no timestamps of ours) is upgraded at its first use', async (t) => {
  const store = new RecordStore()
  const expires = new Date(Date.now() + 3_600_000).toISOString()
  store.records.set('legacy', { cookie: { originalMaxAge: 3_600_000, expires, httpOnly: true, path: '/' }, user: 'ada' })
  store.records.set('empty', { cookie: { originalMaxAge: null, expires: null } })
  const factory = fromExpressStore(store)

  const before = Date.now()
  const legacy = await factory.load('legacy') as Session
  t.equal(legacy.get('user'), 'ada')
  t.ok(legacy.createdAt >= before && legacy.touchedAt === legacy.createdAt, 'our clocks start at the first load')
  t.equal(legacy.isModified, false, 'its data is as stored')

  const app = Fastify()
  await app.register(sessionPlugin, { factory, secret: SECRET })
  app.get('/', async () => 'ok')
  t.teardown(() => app.close())
  const { Signer } = await import('@fastify/cookie')
  for (const id of ['legacy', 'empty']) {
    const cookie = `sid=${new Signer(SECRET, 'sha256').sign(id)}`
    const response = await app.inject({ url: '/', headers: { cookie } })
    t.equal(response.statusCode, 200)
    t.equal(sessionCookie(response), undefined, 'no new cookie: the browser keeps the one it has, nobody is logged out')
    const upgraded = store.records.get(id) as { cookie: Record<string, unknown> }
    t.equal(typeof upgraded.cookie.createdAt, 'number', `${id}: rewritten on a request that never read it`)
    t.equal(typeof upgraded.cookie.touchedAt, 'number')
  }
  const upgraded = store.records.get('legacy') as { cookie: Record<string, unknown>, user: string }
  t.equal(upgraded.user, 'ada')
  t.not(new Date(upgraded.cookie.expires as Date).toISOString(), expires, 'a fresh expiry (and TTL) from the plugin')
  const again = await factory.load('legacy') as Session
  t.equal(again.createdAt, upgraded.cookie.createdAt, 'from now on, its own timestamps')
})

t.test('the key "cookie" is reserved by the record format', async (t) => {
  const store = new RecordStore()
  const factory = fromExpressStore(store)
  const fresh = new Session({ cookie: 'mine' })
  fresh.id = 'fresh'
  await t.rejects(async () => await factory.save(fresh), { code: 'FST_SESSION_STORE_RESERVED_KEY' })
  t.equal(store.records.size, 0)

  const saved = new Session({ user: 'ada' })
  saved.id = 'saved'
  await factory.save(saved)
  const loaded = await factory.load('saved') as Session
  loaded.set('cookie', 'mine')
  await t.rejects(async () => await factory.save(loaded), { code: 'FST_SESSION_STORE_RESERVED_KEY' })
  t.same((store.records.get('saved') as { user: string }).user, 'ada', 'the stored record is untouched')

  const app = await buildApp({ factory })
  t.teardown(() => app.close())
  let cause: unknown
  app.addHook('onError', async (_request, _reply, error) => {
    cause = (error as { cause?: unknown }).cause
  })
  const response = await app.inject({ method: 'POST', url: '/set', payload: { cookie: 1 } })
  t.equal(response.statusCode, 503)
  t.equal(response.json().code, 'FST_SESSION_STORE_UNAVAILABLE')
  t.equal((cause as { code?: string }).code, 'FST_SESSION_STORE_RESERVED_KEY')
})

t.test('store errors reject, and the plugin answers 503 without touching the cookie', async (t) => {
  const store = new RecordStore()
  const app = await buildApp({ factory: fromExpressStore(store) })
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.get('/')
  const cookie = client.cookie

  for (const [method, fault] of [['get', 'callback'], ['get', 'throw'], ['set', 'callback'], ['set', 'throw']] as const) {
    store.fail = { [method]: fault }
    const response = await client.get('/')
    t.equal(response.statusCode, 503, `${method} ${fault}`)
    t.equal(response.json().code, 'FST_SESSION_STORE_UNAVAILABLE')
    t.equal(response.headers['set-cookie'], undefined)
  }
  store.fail = { destroy: 'callback' }
  t.equal((await client.post('/logout')).statusCode, 503)
  t.equal(client.cookie, cookie)

  store.fail = {}
  t.same((await client.get('/')).json(), { visits: 2 }, 'the store recovered, the session is intact')
})

t.test('a store that reports an unknown id with ENOENT gives a fresh session', async (t) => {
  const store = new RecordStore()
  const app = await buildApp({ factory: fromExpressStore(store) })
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.get('/')
  store.fail = { get: 'enoent' }
  const response = await client.get('/read')
  t.equal(response.statusCode, 200)
  t.same(response.json().data, {})
})

t.test('a store that calls back twice is heard once', async (t) => {
  const store: ExpressStore = {
    get (_sid, callback) {
      callback(null, { cookie: { createdAt: 1, touchedAt: 2 }, user: 'ada' })
      callback(new Error('late'))
    },
    set (_sid, _session, callback) {
      callback()
      callback(new Error('late'))
    },
    destroy (_sid, callback) {
      callback()
    }
  }
  const factory = fromExpressStore(store)
  t.equal((await factory.load('x'))?.get('user'), 'ada')
  const session = new Session({ user: 'bob' })
  session.id = 'x'
  t.equal(await factory.save(session), 'x')
})

t.test('concurrent requests on one session queue their writes in this process, so all changes merge', async (t) => {
  const store = new expressSession.MemoryStore()
  const app = await buildApp({ factory: fromExpressStore(store) })
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.post('/set', { base: true })
  const headers = { cookie: client.cookie as string }
  const keys = Array.from({ length: 8 }, (_, i) => `k${i}`)
  await Promise.all(keys.map((key) => app.inject({ method: 'POST', url: '/set', headers, payload: { [key]: key } })))
  const data = (await client.get('/read')).json().data
  t.same(data, { base: true, ...Object.fromEntries(keys.map((k) => [k, k])) })
})
