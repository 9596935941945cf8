// The userKey option and the user index (issue 22): one normal form for a user id, a value that
// is no user id fails the save rather than filing users together, a stale request never unfiles
// a session, and a touch files a session saved before userKey was turned on. On every factory
// with a user index, on its real store.
import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import sessionPlugin, { MemoryFactory, type SessionFactory, type SessionPluginOptions } from '../src/index.js'
import { Client, SECRET } from './helpers/app.js'
import { fakeClock } from './helpers/clock.js'
import { indexStores, stopCluster } from './helpers/index-stores.js'
import type { TapTest } from './helpers/redis.js'

t.teardown(stopCluster)

/** A promise a route awaits, and the test resolves: a request held in its handler. */
class Hold {
  entered!: () => void
  release!: () => void
  readonly inHandler = new Promise<void>((resolve) => { this.entered = resolve })
  readonly released = new Promise<void>((resolve) => { this.release = resolve })
}

async function userApp (t: TapTest, factory: SessionFactory<any>, options: Partial<SessionPluginOptions> = {}, hold = new Hold()): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(sessionPlugin, { factory, secret: SECRET, ...options })
  app.post<{ Body: Record<string, unknown> }>('/set', async (request) => {
    for (const [key, value] of Object.entries(request.body)) request.session.set(key, value)
    return { ok: true }
  })
  app.get('/me', async (request) => ({ user: request.session.get('userId') ?? null, fresh: request.session.isNew }))
  app.get('/visit', async (request) => ({ fresh: request.session.isNew }))
  app.post<{ Params: { user: string } }>('/end-all-but-me/:user', async (request) => ({ ended: await app.sessions.endAll(request.params.user, { except: request }) }))
  app.post('/slow', async (request) => {
    // The session was loaded in onRequest; the request waits, then changes another key.
    hold.entered()
    await hold.released
    request.session.set('x', 1)
    return { ok: true }
  })
  t.teardown(() => app.close())
  await app.ready()
  return app
}

t.test('a user id in one normal form: set as 42, listed and ended as 42 or \'42\'', async (t) => {
  for (const store of indexStores) {
    t.test(store.name, { skip: store.skip }, async (t) => {
      const app = await userApp(t, await store.make(t), { userKey: 'userId' })
      const first = new Client(app)
      const second = new Client(app)
      t.equal((await first.post('/set', { userId: 42 })).statusCode, 200)
      t.equal((await second.post('/set', { userId: '42' })).statusCode, 200)
      t.equal((await app.sessions.list(42)).length, 2, 'list(42) finds both')
      t.same((await app.sessions.list('42')).map((s) => s.handle).sort(), (await app.sessions.list(42)).map((s) => s.handle).sort(), 'list(\'42\') is the same user')
      t.equal(await app.sessions.endAll(42), 2, 'endAll(42) ends both')
      t.same((await first.get('/me')).json(), { user: null, fresh: true })
      t.same((await second.get('/me')).json(), { user: null, fresh: true })
    })
  }
})

t.test('a user key holding an object, an array or a boolean fails the save naming userKey, and files no one together', async (t) => {
  const factory = new MemoryFactory()
  const app = await userApp(t, factory, { userKey: 'passport' })
  for (const value of [{ user: 'ada' }, { user: 'bob' }, ['carol'], true, '']) {
    const client = new Client(app)
    const reply = await client.post('/set', { passport: value })
    t.equal(reply.statusCode, 500, JSON.stringify(value))
    t.equal(reply.json().code, 'FST_SESSION_INVALID_USER')
    t.equal(client.cookie, undefined, 'nothing stored, no cookie')
  }
  t.equal(factory.size, 0, 'no session was stored')
  for (const user of ['[object Object]', 'carol', 'true']) t.same(await app.sessions.list(user), [], `nothing filed under ${user}`)
  const carol = new Client(app)
  const plain = await userApp(t, factory, { userKey: 'name' })
  await new Client(plain).post('/set', { name: 'carol' })
  await carol.post('/set', { passport: ['carol'] })
  t.equal((await plain.sessions.list('carol')).length, 1, 'an array never counts as the string it holds')
})

t.test('list, end and endAll refuse what is no user id, rather than answer for no one', async (t) => {
  const app = await userApp(t, new MemoryFactory(), { userKey: 'userId' })
  for (const user of [{ user: 'ada' }, ['ada'], true, Number.NaN, Infinity, '', null, undefined] as unknown as string[]) {
    await t.rejects(app.sessions.endAll(user), { code: 'FST_SESSION_INVALID_USER' }, `endAll(${String(user)})`)
    await t.rejects(app.sessions.list(user), { code: 'FST_SESSION_INVALID_USER' })
    await t.rejects(app.sessions.end(user, 'handle'), { code: 'FST_SESSION_INVALID_USER' })
  }
})

t.test('userKey as a dotted path or a function; a function answering NaN fails the save', async (t) => {
  const factory = new MemoryFactory()
  const dotted = await userApp(t, factory, { userKey: 'passport.user' })
  const ada = new Client(dotted)
  await ada.post('/set', { passport: { user: 'ada' } })
  await new Client(dotted).post('/set', { passport: { user: 'bob' } })
  for (const passport of [{}, 'ada', null, ['ada']]) await new Client(dotted).post('/set', { passport })
  t.equal((await dotted.sessions.list('ada')).length, 1)
  t.equal(await dotted.sessions.endAll('ada'), 1, 'ada\'s session, not bob\'s')
  t.equal((await dotted.sessions.list('bob')).length, 1)

  const fn = await userApp(t, new MemoryFactory(), { userKey: (data) => data.account?.id })
  await new Client(fn).post('/set', { account: { id: 7 } })
  t.equal((await fn.sessions.list('7')).length, 1)
  const bad = await userApp(t, new MemoryFactory(), { userKey: (data) => Number(data.n) })
  const reply = await new Client(bad).post('/set', { n: 'not a number' })
  t.equal(reply.json().code, 'FST_SESSION_INVALID_USER')

  await t.rejects(userApp(t, new MemoryFactory(), { userKey: 'passport..user' }), { code: 'FST_SESSION_INVALID_OPTIONS' })
  await t.rejects(userApp(t, new MemoryFactory(), { userKey: 42 as unknown as string }), { code: 'FST_SESSION_INVALID_OPTIONS' })
})

t.test('a stale request saving another key never unfiles a session signed in meanwhile without a new id', async (t) => {
  for (const store of indexStores) {
    t.test(store.name, { skip: store.skip }, async (t) => {
      const hold = new Hold()
      const app = await userApp(t, await store.make(t), { userKey: 'userId' }, hold)
      const browser = new Client(app)
      await browser.post('/set', { step: 'password' })
      // A second tab (a poll) loads the session before the 2FA step signs the user in.
      const stale = app.inject({ method: 'POST', url: '/slow', headers: { cookie: browser.cookie as string } })
      await hold.inHandler
      await browser.post('/set', { userId: 'ada' })
      hold.release()
      t.equal((await stale).statusCode, 200)
      t.equal((await app.sessions.list('ada')).length, 1, 'still filed under ada')
      t.equal(await app.sessions.endAll('ada'), 1, 'endAll ends it')
      t.same((await browser.get('/me')).json(), { user: null, fresh: true }, 'signed out')
    })
  }
})

t.test('a session saved before userKey was turned on is filed by its next touch', async (t) => {
  for (const store of indexStores) {
    t.test(store.name, { skip: store.skip }, async (t) => {
      const clock = fakeClock(t)
      const factory = await store.make(t)
      const before = await userApp(t, factory)
      const browser = new Client(before)
      await browser.post('/set', { userId: 'ada' })
      const after = await userApp(t, factory, { userKey: 'userId' })
      const client = new Client(after)
      client.cookie = browser.cookie
      t.same(await after.sessions.list('ada'), [], 'not filed: saved without userKey')
      clock.advance(3 * 3600_000)
      t.same((await client.get('/visit')).json(), { fresh: false }, 'an unchanged request, touched')
      t.equal((await after.sessions.list('ada')).length, 1, 'the touch filed it')
      t.equal(await after.sessions.endAll('ada'), 1)
      t.same((await client.get('/me')).json(), { user: null, fresh: true })
    })
  }
})

t.test('a factory with a user index but no revokeUser: endAll still ends what it lists', async (t) => {
  const memory = new MemoryFactory()
  const factory: SessionFactory<any> = {
    capabilities: { destroyReports: true, userIndex: true },
    load: (id) => memory.load(id),
    save: (session) => memory.save(session),
    destroy: (id) => memory.destroy(id),
    sessionsOf: (userId) => memory.sessionsOf(userId)
  }
  const app = await userApp(t, factory, { userKey: 'userId' })
  const browser = new Client(app)
  await browser.post('/set', { userId: 'ada' })
  t.equal(await app.sessions.endAll('ada'), 1)
  t.same((await browser.get('/me')).json(), { user: null, fresh: true })
})

t.test('endAll except a session of another user keeps none of the user\'s, and moves no one', async (t) => {
  const app = await userApp(t, new MemoryFactory(), { userKey: 'userId' })
  const ada = new Client(app)
  const bob = new Client(app)
  await ada.post('/set', { userId: 'ada' })
  await bob.post('/set', { userId: 'bob' })
  t.same((await bob.post('/end-all-but-me/ada')).json(), { ended: 1 })
  t.same((await ada.get('/me')).json(), { user: null, fresh: true })
  t.same((await bob.get('/me')).json(), { user: 'bob', fresh: false })
})
