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
  for (const id of Object.keys(planted)) t.equal(await factory.load(id), null, id)
  t.equal(await factory.load('never-saved'), null)
})

t.test('odd cookie metadata is tolerated: the session loads and keeps its data', async (t) => {
  const store = new RecordStore()
  const factory = fromExpressStore(store)
  const planted: Record<string, unknown> = {
    noCookie: { user: 'ada' },
    nullCookie: { cookie: null, user: 'ada' },
    badExpires: { cookie: { expires: 'tomorrow-ish', createdAt: 1, touchedAt: 2 }, user: 'ada' },
    infiniteExpires: { cookie: { expires: Number.POSITIVE_INFINITY, createdAt: 1, touchedAt: 2 }, user: 'ada' },
    boolExpires: { cookie: { expires: true, createdAt: 1, touchedAt: 2 }, user: 'ada' },
    prototypeKeys: JSON.parse('{"cookie":{"createdAt":1,"touchedAt":2},"__proto__":{"x":1},"constructor":1,"user":"ada"}')
  }
  for (const [id, record] of Object.entries(planted)) store.records.set(id, record)
  for (const id of Object.keys(planted)) {
    const session = await factory.load(id)
    t.same({ ...session?.data }, { user: 'ada' }, id)
  }
  t.equal((await factory.load('badExpires'))?.expiresAt, null)
  t.equal((await factory.load('badExpires'))?.createdAt, 1)
  t.equal((await factory.load('badExpires'))?.touchedAt, 2)
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
    t.equal(sessionCookie(response), cookie, 'the same cookie: nobody is logged out')
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
