// The `maxSessionsPerUser` option (issue 25): a login (a save that files a session under a user)
// ends the user's least recently seen sessions beyond the cap, in the shared store, before its
// response goes out; the session just saved survives. Through app.inject on Memory, Redis and
// PostgreSQL; the two-instance races are in max-sessions-race.test.ts.
import { tracingChannel } from 'node:diagnostics_channel'
import type { FastifyInstance } from 'fastify'
import Fastify from 'fastify'
import t from 'tap'
import sessionPlugin, { MemoryFactory, SealedCookieFactory, type FactoryCallContext, type SessionFactory } from '../src/index.js'
import { Client, SECRET, buildApp, sessionCookie, type Options } from './helpers/app.js'
import { fakeClock } from './helpers/clock.js'
import { Gates } from './helpers/gated.js'
import { registrationError as registrationErrorOf } from './helpers/registration.js'
import type { TapTest } from './helpers/redis.js'
import { sharedStores } from './helpers/shared-stores.js'

const INVALID_OPTIONS = { code: 'FST_SESSION_INVALID_OPTIONS' }

function registrationError (options: Record<string, unknown>): Promise<Error & { code?: string }> {
  return registrationErrorOf({ secret: SECRET, ...options })
}

t.test('registration: the cap needs userKey and a factory with a user index, and is a whole number of at least 1', async (t) => {
  const noUser = await registrationError({ factory: new MemoryFactory(), maxSessionsPerUser: 3 })
  t.match(noUser, INVALID_OPTIONS, 'without userKey')
  t.match(noUser.message, '/maxSessionsPerUser', 'the message names the option')
  t.match(noUser.message, '/userKey', 'and the one to add')

  for (const [label, factory] of [
    ['a stateless factory', new SealedCookieFactory({ keys: Buffer.alloc(32, 7) })],
    ['a factory with no user index', { load: () => null, save: () => 'id', destroy: () => {} }],
    ['a user index that cannot end a session', { load: () => null, save: () => 'id', sessionsOf: () => [] }]
  ] as const) {
    const error = await registrationError({ factory, userKey: 'user', maxSessionsPerUser: 3 })
    t.match(error, INVALID_OPTIONS, label)
    t.match(error.message, '/maxSessionsPerUser', `${label}: the message names the option`)
  }

  for (const bad of [0, -1, 1.5, '3', null]) {
    const error = await registrationError({ factory: new MemoryFactory(), userKey: 'user', maxSessionsPerUser: bad })
    t.match(error, INVALID_OPTIONS, `${JSON.stringify(bad)} is refused`)
    t.match(error.message, '/maxSessionsPerUser', `${JSON.stringify(bad)}: the message names the option`)
  }

  const app = Fastify()
  await app.register(sessionPlugin, { factory: new MemoryFactory(), secret: SECRET, userKey: 'user', maxSessionsPerUser: 1 })
  await app.ready()
  await app.close()
  t.pass('1 with userKey on a factory with a user index registers')
})

/** How many sessionsOf calls the plugin makes while the test runs (a tracing subscriber). */
function listings (t: TapTest): { readonly count: number } {
  const channel = tracingChannel<unknown, FactoryCallContext>('fastify-session-factory:sessionsOf')
  let count = 0
  const handlers = { start: () => { count++ }, end () {}, asyncStart () {}, asyncEnd () {}, error () {} }
  channel.subscribe(handlers)
  t.teardown(() => { channel.unsubscribe(handlers) })
  return { get count () { return count } }
}

async function capApp (t: TapTest, factory: SessionFactory<any>, options: Options = {}, routes?: (app: FastifyInstance) => void): Promise<FastifyInstance> {
  const app = await buildApp({ factory, userKey: 'user', maxSessionsPerUser: 2, ...options })
  routes?.(app)
  app.post('/reload-and-set', async (request) => {
    await request.session.reload()
    request.session.set('seen', true)
    return { ok: true }
  })
  t.teardown(() => app.close())
  await app.ready()
  return app
}

/** The user the cookie's session holds, or null when it opens nothing. */
async function userOf (app: FastifyInstance, client: Client): Promise<unknown> {
  const reply = await app.inject({ method: 'GET', url: '/read', headers: client.cookie === undefined ? {} : { cookie: client.cookie } })
  return (reply.json() as { data: { user?: unknown } }).data.user ?? null
}

async function login (app: FastifyInstance, user: string): Promise<Client> {
  const client = new Client(app)
  const reply = await client.post('/login', { user })
  if (reply.statusCode !== 200) throw new Error(`login answered ${reply.statusCode}`)
  return client
}

for (const store of sharedStores) {
  t.test(`${store.name}: a login past the cap ends the least recently seen sessions`, { skip: store.skip }, async (t) => {
    const clock = fakeClock(t)
    const { instance } = await store.open(t)
    const app = await capApp(t, await instance())
    const first = await login(app, 'ada')
    clock.advance(1000)
    const second = await login(app, 'ada')
    clock.advance(1000)
    // The first is seen again (a save), so the second is now the least recently seen.
    t.equal((await first.post('/set', { cart: ['tea'] })).statusCode, 200)
    clock.advance(1000)
    const listed = listings(t)
    const third = await login(app, 'ada')
    t.equal(listed.count, 1, 'the login listed the user\'s sessions once')

    t.equal(await userOf(app, second), null, 'the least recently seen session is ended: its cookie opens nothing')
    t.equal(await userOf(app, first), 'ada', 'the one seen since survives')
    t.equal(await userOf(app, third), 'ada', 'the new one survives')
    t.equal((await app.sessions.list('ada')).length, 2, 'the user has the cap\'s number of sessions')

    // Cap 1: the next login ends both others, the least recently seen first.
    clock.advance(1000)
    const one = await capApp(t, await instance(), { maxSessionsPerUser: 1 })
    const fourth = await login(one, 'ada')
    t.equal(await userOf(app, first), null)
    t.equal(await userOf(app, third), null)
    t.equal(await userOf(app, fourth), 'ada')
    t.same((await app.sessions.list('ada')).map((entry) => entry.lastSeenAt), [clock.now()], 'only the newest is left')
  })

  t.test(`${store.name}: under the cap nothing ends; other users and sessions without a user are untouched`, { skip: store.skip }, async (t) => {
    const clock = fakeClock(t)
    const { instance } = await store.open(t)
    const app = await capApp(t, await instance())
    const visitor = new Client(app)
    await visitor.get('/')
    const bob = await login(app, 'bob')
    clock.advance(1000)
    const ada1 = await login(app, 'ada')
    clock.advance(1000)
    const ada2 = await login(app, 'ada')
    t.equal(await userOf(app, ada1), 'ada', 'at the cap, nothing ends')
    t.equal(await userOf(app, ada2), 'ada')
    clock.advance(1000)
    await login(app, 'ada')
    await login(app, 'ada')
    t.equal(await userOf(app, bob), 'bob', 'another user\'s session survives')
    const reply = await visitor.get('/')
    t.same(reply.json(), { visits: 2 }, 'a session without a user survives, its data whole')
    t.equal((await app.sessions.list('ada')).length, 2)
  })

  t.test(`${store.name}: only a login checks the cap: a user set on a session, a changed user, app.sessions saves`, { skip: store.skip }, async (t) => {
    const clock = fakeClock(t)
    const { instance } = await store.open(t)
    const app = await capApp(t, await instance(), { maxSessionsPerUser: 1 })
    const listed = listings(t)
    const first = await login(app, 'ada')
    t.equal(listed.count, 1, 'a login lists once')
    clock.advance(1000)
    await first.post('/set', { cart: ['tea'] })
    await first.get('/read')
    await first.post('/reload-and-set')
    t.equal(listed.count, 1, 'saves and reads of a signed-in session, user unchanged, list nothing')

    // A user set on an existing session, without regenerate(), is a login too.
    clock.advance(1000)
    const second = new Client(app)
    await second.get('/')
    await second.post('/set', { user: 'ada' })
    t.equal(listed.count, 2)
    t.equal(await userOf(app, first), null, 'the session seen least recently is ended')
    t.equal(await userOf(app, second), 'ada')

    // So is a change of user: ada's session becomes bob's, and bob's older one goes.
    clock.advance(1000)
    const bob = await login(app, 'bob')
    clock.advance(1000)
    await second.post('/set', { user: 'bob' })
    t.equal(await userOf(app, bob), null)
    t.equal(await userOf(app, second), 'bob')

    // app.sessions: cookieFor() is a login; so is a detached save that sets the user.
    clock.advance(1000)
    const made = await app.sessions.cookieFor({ user: 'bob' })
    t.equal(await userOf(app, second), null, 'cookieFor() ended the older session')
    const detached = await app.sessions.load(made)
    t.ok(detached)
    detached?.set('cart', ['milk'])
    await detached?.save()
    t.equal((await app.sessions.list('bob')).length, 1)
    clock.advance(1000)
    const carol = await login(app, 'carol')
    const carolSession = await app.sessions.load(made)
    carolSession?.set('user', 'carol')
    await carolSession?.save()
    t.equal(await userOf(app, carol), null, 'a detached save that changes the user checks the cap')
    t.equal((await app.sessions.list('carol')).length, 1)
    t.same(await app.sessions.list('bob'), [])
  })
}

t.test('a path userKey: a change in place of its object is a login; a function userKey: any change of a signed-in session is', async (t) => {
  const clock = fakeClock(t)
  const path = await capApp(t, new MemoryFactory(), { userKey: 'passport.user', maxSessionsPerUser: 1 }, (app) => {
    app.post<{ Body: { user: string } }>('/passport', async (request) => {
      const passport = request.session.get('passport') as { user?: string } | undefined
      if (passport === undefined) request.session.set('passport', { user: request.body.user })
      else passport.user = request.body.user
      return { ok: true }
    })
  })
  const listed = listings(t)
  const a = new Client(path)
  await a.post('/passport', { user: 'ada' })
  clock.advance(1000)
  const b = new Client(path)
  await b.post('/passport', { user: 'bob' })
  clock.advance(1000)
  await b.post('/set', { cart: [] })
  t.equal(listed.count, 2, 'two logins; a save of another key lists nothing')
  await b.post('/passport', { user: 'ada' })
  t.equal(listed.count, 3, 'the user changed in place: a login')
  t.same(await path.sessions.list('bob'), [])
  t.equal((await path.sessions.list('ada')).length, 1, 'ada\'s older session was ended')

  const fn = await capApp(t, new MemoryFactory(), { userKey: (data) => data.user, maxSessionsPerUser: 1 })
  const counted = listed.count
  const c = await login(fn, 'ada')
  await c.post('/set', { cart: ['tea'] })
  t.equal(listed.count, counted + 2, 'a function may read any key: each change of a signed-in session checks the cap')
  await c.get('/read')
  t.equal(listed.count, counted + 2, 'a request that changes nothing checks nothing')
})

t.test('ties in last-seen time end the session created first, then by id', async (t) => {
  const clock = fakeClock(t)
  const factory = new MemoryFactory()
  const app = await capApp(t, factory, { maxSessionsPerUser: 3 })
  // Four sessions seen at the same instant: two created then, two created earlier.
  const early = [await app.sessions.cookieFor({ cart: [] }), await app.sessions.cookieFor({ cart: [] })]
  clock.advance(1000)
  for (const cookie of early) {
    const session = await app.sessions.load(cookie)
    session?.set('user', 'ada')
    await session?.save()
  }
  const late = [await app.sessions.cookieFor({ user: 'ada' }), await app.sessions.cookieFor({ user: 'ada' })]
  const left = await Promise.all([...early, ...late].map(async (cookie) => (await app.sessions.load(cookie)) !== null))
  t.same(left.slice(0, 2).sort(), [false, true], 'of the two created earlier, one went (the order between them is their ids)')
  t.same(left.slice(2), [true, true], 'the ones created at that instant survive')
  t.equal((await app.sessions.list('ada')).length, 3)
})

t.test('a failed listing or destroy is a 503; the login\'s save stays, and its cookie goes out', async (t) => {
  for (const method of ['sessionsOf', 'destroy'] as const) {
    t.test(method, async (t) => {
      const clock = fakeClock(t)
      const gates = new Gates(new MemoryFactory())
      const app = await capApp(t, gates.factory, { maxSessionsPerUser: 1 })
      const old = await login(app, 'ada')
      clock.advance(1000)
      gates.hold(method)
      const replying = app.inject({ method: 'POST', url: '/login', payload: { user: 'ada' } })
      ;(await gates.next(method)).fail(new Error('store down'))
      const reply = await replying
      gates.pass(method)
      t.equal(reply.statusCode, 503)
      t.equal(reply.json().code, 'FST_SESSION_STORE_UNAVAILABLE')
      const cookie = sessionCookie(reply)
      t.ok(cookie, 'the saved login\'s cookie is on the 503')
      const fresh = new Client(app)
      fresh.cookie = cookie
      t.equal(await userOf(app, fresh), 'ada', 'and opens the login\'s session: nothing was lost')
      t.equal(await userOf(app, old), 'ada', 'the older session, not ended, is still there')
      t.equal((await app.sessions.list('ada')).length, 2, 'over the cap until the next login')
      clock.advance(1000)
      const next = await login(app, 'ada')
      t.same((await app.sessions.list('ada')).length, 1, 'which ends the others')
      t.equal(await userOf(app, next), 'ada')
    })
  }

  t.test('a destroy that throws at once', async (t) => {
    const clock = fakeClock(t)
    const inner = new MemoryFactory()
    let broken = false
    const factory: SessionFactory<any> = {
      capabilities: { userIndex: true },
      load: (id) => inner.load(id),
      save: (session) => inner.save(session),
      destroy (id) {
        if (broken) throw new Error('store down')
        return inner.destroy(id)
      },
      sessionsOf: (userId) => inner.sessionsOf(userId),
      revokeUser: (userId, keep) => inner.revokeUser(userId, keep)
    }
    const app = await capApp(t, factory)
    await login(app, 'ada')
    clock.advance(1000)
    await login(app, 'ada')
    clock.advance(1000)
    broken = true
    const reply = await app.inject({ method: 'POST', url: '/login', payload: { user: 'ada' } })
    t.equal(reply.statusCode, 503)
    t.equal(reply.json().code, 'FST_SESSION_STORE_UNAVAILABLE')
    t.equal((await app.sessions.list('ada')).length, 3, 'the login is stored; nothing was ended')
  })

  t.test('app.sessions.cookieFor(): it rejects, the session is stored', async (t) => {
    const gates = new Gates(new MemoryFactory())
    const app = await capApp(t, gates.factory, { maxSessionsPerUser: 1 })
    gates.hold('sessionsOf')
    const making = app.sessions.cookieFor({ user: 'ada' })
    ;(await gates.next('sessionsOf')).fail(new Error('store down'))
    await t.rejects(making, { code: 'FST_SESSION_STORE_UNAVAILABLE' })
    gates.pass('sessionsOf')
    t.equal((await app.sessions.list('ada')).length, 1)
  })
})

for (const store of sharedStores) {
  t.test(`${store.name}: a refused rotation (signed out everywhere meanwhile) is a logout: nothing is listed`, { skip: store.skip }, async (t) => {
    const { instance } = await store.open(t)
    const factory = await instance()
    const app = await capApp(t, factory, { maxSessionsPerUser: 1 }, (app) => {
      app.post('/rotate', async (request) => {
        // The first step of a sign out everywhere on another instance: the rotation's save is refused.
        await factory.revokeUser?.('ada', null)
        await request.session.regenerate(['user'])
        return { ok: true }
      })
    })
    const client = await login(app, 'ada')
    const listed = listings(t)
    const reply = await client.post('/rotate')
    t.equal(reply.statusCode, 200)
    t.equal(listed.count, 0, 'the refused save listed nothing')
    t.equal(client.cookie, undefined, 'the cookie is cleared')
  })
}

t.test('a factory without touch rolls a signed-in session by a save: no login, whatever userKey is', async (t) => {
  const clock = fakeClock(t)
  const inner = new MemoryFactory()
  const factory: SessionFactory<any> = {
    capabilities: { userIndex: true },
    load: (id) => inner.load(id),
    save: (session) => inner.save(session),
    destroy: (id) => inner.destroy(id),
    sessionsOf: (userId) => inner.sessionsOf(userId),
    revokeUser: (userId, keep) => inner.revokeUser(userId, keep)
  }
  const app = await capApp(t, factory, { userKey: (data) => data.user, idleTimeout: 100 })
  const client = await login(app, 'ada')
  const listed = listings(t)
  clock.advance(20_000)
  await client.get('/read')
  t.same((await app.sessions.list('ada')).map((entry) => entry.lastSeenAt), [clock.now()], 'rolled by a save')
  t.equal(listed.count, 1, 'which is no login: the one listing is list() above')
})
