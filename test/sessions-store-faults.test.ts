// Issue 26: the instance API (app.sessions) against a store that refuses or answers late. A gated
// factory holds the chosen calls until the test lets them through or fails them, so each test
// picks the exact moment: end(), endAll() and a detached session's save() answer only once the
// store has, a refusal is FST_SESSION_STORE_UNAVAILABLE with no session id anywhere in it, a
// call past storeTimeout fails the same way, and nothing becomes an unhandled rejection.
import { inspect } from 'node:util'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { MemoryFactory, RedisFactory, type Session, type SessionFactory } from '../src/index.js'
import { Client, buildApp, sessionIdOf } from './helpers/app.js'
import { fakeClock } from './helpers/clock.js'
import { SyncJsonFactory } from './helpers/factories.js'
import { Gates, turn, unhandledRejections, watch } from './helpers/gated.js'
import { cleaningClient, randomPrefix, sharedRedisSkipReason, type TapTest } from './helpers/redis.js'

const redisSkip = await sharedRedisSkipReason()
// The storeTimeout of the tests that hold a call past it: short, with room for the calls that go
// straight through (a login's save) on a busy machine.
const LATE_MS = 300

interface Store {
  name: string
  skip?: string | null
  /** The factory to gate; the test reads the store through it directly, past the gate. */
  make: (t: TapTest) => Promise<SessionFactory<any>>
}

const redis = (t: TapTest): Promise<RedisFactory> => {
  const prefix = randomPrefix()
  return cleaningClient(t, prefix).then((client) => new RedisFactory({ client, prefix }))
}

/** Stores with a user index: MemoryFactory (synchronous) and RedisFactory on the shared server. */
const indexed: Store[] = [
  { name: 'MemoryFactory', make: async () => new MemoryFactory() },
  { name: 'RedisFactory', skip: redisSkip, make: redis }
]

/** Stores that keep a record past its expiry until the plugin destroys it (MemoryFactory hides it itself). */
const keeping: Store[] = [
  { name: 'a synchronous JSON factory', make: async () => new SyncJsonFactory() },
  { name: 'RedisFactory', skip: redisSkip, make: redis }
]

interface Setup {
  app: FastifyInstance
  gates: Gates
  /** The stored session under this id, read past the gate (null: no record). */
  stored: (id: string) => Promise<Session | null>
  /** Signs `user` in; answers the new session's cookie and id. */
  login: (user: string) => Promise<{ cookie: string, id: string }>
}

async function setup (t: TapTest, store: Store, options: { storeTimeout?: number, idleTimeout?: number } = {}): Promise<Setup> {
  const inner = await store.make(t)
  const gates = new Gates(inner)
  const { storeTimeout, ...rest } = options
  const app = await buildApp({ factory: gates.factory, userKey: 'user', ...options })
  // Users sign in through another instance on the same store, without the gate or the short
  // storeTimeout: only the calls under test can be late.
  const front = await buildApp({ factory: inner, userKey: 'user', ...rest })
  t.teardown(async () => {
    await app.close()
    await front.close()
  })
  return {
    app,
    gates,
    stored: async (id) => await inner.load(id),
    async login (user) {
      const client = new Client(front)
      const reply = await client.post('/login', { user })
      if (reply.statusCode !== 200 || client.cookie === undefined) throw new Error(`login failed: ${reply.statusCode}`)
      return { cookie: client.cookie, id: sessionIdOf(client.cookie) }
    }
  }
}

/** A store fault that names the session, as a driver's error does (ioredis puts the key in `command.args`). */
function namingFault (id: string): Error {
  return Object.assign(new Error(`the store refused ${id}`), { command: { name: 'evalsha', args: ['0123abcd', '1', `sess:${id}`] } })
}

/** What a promise rejected with (the test fails if it resolved). */
async function rejection (t: TapTest, promise: Promise<unknown>): Promise<any> {
  try {
    const value = await promise
    t.fail(`resolved with ${inspect(value)} instead of rejecting`)
    return undefined
  } catch (error) {
    return error
  }
}

// The guard redacts the id it was called with; a sessionsOf() call is given a user id, so a
// fault that names one of the user's sessions (ioredis's ReplyError of RedisFactory's per-record
// read holds the session's key in `command.args`) reaches the caller unredacted.
// RedisFactory.sessionsOf redacts the ids it lists (issue 22); a factory of one's own whose sessionsOf
// error names ids the guard never saw is not redacted: the guard knows only the user id.
const SESSIONS_OF_LEAK = 'a sessionsOf() fault of a factory of your own that names a session id is not redacted (the guard knows only the user id)'

/** FST_SESSION_STORE_UNAVAILABLE with its cause attached, and none of these ids in it, its cause or its message. */
function assertUnavailable (t: TapTest, error: any, ids: string[], what: string, redactionTodo?: string): void {
  t.equal(error?.code, 'FST_SESSION_STORE_UNAVAILABLE', `${what}: FST_SESSION_STORE_UNAVAILABLE`)
  t.ok(error?.cause !== undefined, `${what}: the cause is attached`)
  const shown = [inspect(error, { depth: Infinity, showHidden: true }), String(error?.message), String(error?.cause?.message), String(error?.cause?.stack)].join('\n')
  for (const id of ids) {
    t.notOk(shown.includes(id), `${what}: no session id in the error, its cause or its message`, redactionTodo === undefined ? {} : { todo: redactionTodo })
  }
}

/** No unhandled rejection by the time pending callbacks ran. */
async function assertNoUnhandled (t: TapTest, seen: unknown[]): Promise<void> {
  await turn()
  await turn()
  t.same(seen.map((reason) => inspect(reason)), [], 'no unhandled rejection')
}

for (const store of indexed) {
  const skip = store.skip ?? false

  t.test(`${store.name}: end() answers true only once the destroy answered, and the record is gone at that moment`, { skip }, async (t) => {
    const unhandled = unhandledRejections(t)
    const { app, gates, stored, login } = await setup(t, store)
    const phone = await login('ada')
    const laptop = await login('ada')
    const handle = (await app.sessions.list('ada'))[0]?.handle as string

    gates.hold('destroy')
    const ending = watch(app.sessions.end('ada', handle))
    // Read the store the moment end() settles, before the test does anything else.
    const atAnswer = ending.promise.then(() => stored(phone.id), () => stored(phone.id))
    const destroy = await gates.next('destroy')
    t.equal(destroy.arg, phone.id, 'the destroy is of the phone\'s session')
    await turn()
    t.notOk(ending.settled, 'end() has not answered while the destroy is held')
    t.ok(await stored(phone.id), 'the record is still there while the destroy is held')

    await destroy.release()
    t.equal(await ending.promise, true)
    t.equal(await atAnswer, null, 'no record the moment end() answered true')
    const left = await app.sessions.list('ada')
    t.equal(left.length, 1, 'one session of ada left')
    t.not(left[0]?.handle, handle, 'and it is not the one ended')
    t.ok(await stored(laptop.id), 'the other session is untouched')
    await assertNoUnhandled(t, unhandled)
  })

  t.test(`${store.name}: end() when the destroy rejects: FST_SESSION_STORE_UNAVAILABLE, id redacted, the session still listed`, { skip }, async (t) => {
    const unhandled = unhandledRejections(t)
    const { app, gates, stored, login } = await setup(t, store)
    const phone = await login('ada')
    const handle = (await app.sessions.list('ada'))[0]?.handle as string

    gates.hold('destroy')
    const ending = app.sessions.end('ada', handle)
    ;(await gates.next('destroy')).fail(namingFault(phone.id))
    assertUnavailable(t, await rejection(t, ending), [phone.id], 'end()')
    t.ok(await stored(phone.id), 'the record is still there: end() claimed nothing')
    t.same((await app.sessions.list('ada')).map((entry) => entry.handle), [handle], 'still listed, so the caller can retry')
    await assertNoUnhandled(t, unhandled)
  })

  t.test(`${store.name}: end() when the destroy answers after storeTimeout: FST_SESSION_STORE_UNAVAILABLE, and the late answer harms nothing`, { skip }, async (t) => {
    const unhandled = unhandledRejections(t)
    const { app, gates, login } = await setup(t, store, { storeTimeout: LATE_MS })
    const phone = await login('ada')
    const handle = (await app.sessions.list('ada'))[0]?.handle as string

    gates.hold('destroy')
    const ending = app.sessions.end('ada', handle)
    const destroy = await gates.next('destroy')
    assertUnavailable(t, await rejection(t, ending), [phone.id], 'end() past storeTimeout')
    await destroy.release()
    await assertNoUnhandled(t, unhandled)
  })

  t.test(`${store.name}: end() when sessionsOf rejects or answers late: FST_SESSION_STORE_UNAVAILABLE, nothing destroyed`, { skip }, async (t) => {
    const unhandled = unhandledRejections(t)
    const { app, gates, stored, login } = await setup(t, store, { storeTimeout: LATE_MS })
    const phone = await login('ada')
    const handle = (await app.sessions.list('ada'))[0]?.handle as string
    gates.hold('sessionsOf', 'destroy')

    const refused = app.sessions.end('ada', handle)
    ;(await gates.next('sessionsOf')).fail(namingFault(phone.id))
    assertUnavailable(t, await rejection(t, refused), [phone.id], 'end() whose sessionsOf rejected', SESSIONS_OF_LEAK)

    const late = app.sessions.end('ada', handle)
    const lookup = await gates.next('sessionsOf')
    assertUnavailable(t, await rejection(t, late), [phone.id], 'end() whose sessionsOf answered past storeTimeout')
    await lookup.release()

    await turn()
    t.equal(gates.waiting, 0, 'no destroy was asked for')
    t.ok(await stored(phone.id), 'the session lives on')
    await assertNoUnhandled(t, unhandled)
  })

  t.test(`${store.name}: endAll() answers once every destroy answered, and none of the records is left then`, { skip }, async (t) => {
    const unhandled = unhandledRejections(t)
    const { app, gates, stored, login } = await setup(t, store)
    const ada = [await login('ada'), await login('ada'), await login('ada')]
    const bob = await login('bob')

    gates.hold('destroy')
    const ending = watch(app.sessions.endAll('ada'))
    const atAnswer = ending.promise.then(() => Promise.all(ada.map((s) => stored(s.id))), () => [])
    const destroys = [await gates.next('destroy'), await gates.next('destroy'), await gates.next('destroy')]
    t.same(destroys.map((call) => call.arg).sort(), ada.map((s) => s.id).sort(), 'one destroy per session of ada')
    await destroys[0]?.release()
    await destroys[1]?.release()
    await turn()
    t.notOk(ending.settled, 'endAll() has not answered while one destroy is held')

    await destroys[2]?.release()
    t.equal(await ending.promise, 3)
    t.same(await atAnswer, [null, null, null], 'no record of ada\'s the moment endAll() answered')
    t.ok(await stored(bob.id), 'bob\'s session is untouched')
    await assertNoUnhandled(t, unhandled)
  })

  t.test(`${store.name}: endAll() when one destroy rejects: FST_SESSION_STORE_UNAVAILABLE, ids redacted, that session still listed`, { skip }, async (t) => {
    const unhandled = unhandledRejections(t)
    const { app, gates, stored, login } = await setup(t, store)
    const ada = [await login('ada'), await login('ada'), await login('ada')]

    gates.hold('destroy')
    // Caught from the start: endAll() may reject while the other destroys are still held.
    const ending = rejection(t, app.sessions.endAll('ada'))
    const destroys = [await gates.next('destroy'), await gates.next('destroy'), await gates.next('destroy')]
    const refused = destroys[0]?.arg as string
    destroys[0]?.fail(namingFault(refused))
    await destroys[1]?.release()
    await destroys[2]?.release()
    assertUnavailable(t, await ending, ada.map((s) => s.id), 'endAll()')
    t.ok(await stored(refused), 'the session whose destroy failed is still stored')
    t.equal((await app.sessions.list('ada')).length, 1, 'and still listed, so the caller can retry')
    await assertNoUnhandled(t, unhandled)
  })

  t.test(`${store.name}: endAll() when the destroys answer after storeTimeout, or sessionsOf fails: FST_SESSION_STORE_UNAVAILABLE`, { skip }, async (t) => {
    const unhandled = unhandledRejections(t)
    const { app, gates, stored, login } = await setup(t, store, { storeTimeout: LATE_MS })
    const ada = [await login('ada'), await login('ada')]
    const ids = ada.map((s) => s.id)

    gates.hold('sessionsOf')
    const refused = app.sessions.endAll('ada')
    ;(await gates.next('sessionsOf')).fail(namingFault(ids[0] as string))
    assertUnavailable(t, await rejection(t, refused), ids, 'endAll() whose sessionsOf rejected', SESSIONS_OF_LEAK)
    const lateLookup = app.sessions.endAll('ada')
    const lookup = await gates.next('sessionsOf')
    assertUnavailable(t, await rejection(t, lateLookup), ids, 'endAll() whose sessionsOf answered past storeTimeout')
    await lookup.release()
    t.same(await Promise.all(ids.map(async (id) => (await stored(id)) !== null)), [true, true], 'nothing was destroyed')

    gates.pass('sessionsOf')
    gates.hold('destroy')
    const late = app.sessions.endAll('ada')
    const destroys = [await gates.next('destroy'), await gates.next('destroy')]
    assertUnavailable(t, await rejection(t, late), ids, 'endAll() whose destroys answered past storeTimeout')
    for (const destroy of destroys) await destroy.release()
    await assertNoUnhandled(t, unhandled)
  })
}

for (const store of keeping) {
  const skip = store.skip ?? false

  t.test(`${store.name}: sessions.load() when the load rejects or answers late: FST_SESSION_STORE_UNAVAILABLE, id redacted`, { skip }, async (t) => {
    const unhandled = unhandledRejections(t)
    const { app, gates, login } = await setup(t, store, { storeTimeout: LATE_MS })
    const phone = await login('ada')
    gates.hold('load')

    const refused = app.sessions.load(phone.cookie)
    ;(await gates.next('load')).fail(namingFault(phone.id))
    assertUnavailable(t, await rejection(t, refused), [phone.id], 'load() whose load rejected')

    const late = app.sessions.load({ headers: { cookie: phone.cookie } })
    const load = await gates.next('load')
    assertUnavailable(t, await rejection(t, late), [phone.id], 'load() whose load answered past storeTimeout')
    await load.release()
    await assertNoUnhandled(t, unhandled)
  })

  t.test(`${store.name}: sessions.load() of an expired session answers null only once its destroy answered; a failed destroy rejects`, { skip }, async (t) => {
    const unhandled = unhandledRejections(t)
    const clock = fakeClock(t)
    const { app, gates, stored, login } = await setup(t, store, { idleTimeout: 60 })
    const phone = await login('ada')
    const tablet = await login('ada')
    clock.advance(61_000) // past idleTimeout; the store still holds both records
    gates.hold('destroy')

    const refused = app.sessions.load(phone.cookie)
    ;(await gates.next('destroy')).fail(namingFault(phone.id))
    assertUnavailable(t, await rejection(t, refused), [phone.id], 'load() of an expired session whose destroy rejected')
    t.ok(await stored(phone.id), 'the record is still there')

    const loading = watch(app.sessions.load(tablet.cookie))
    const atAnswer = loading.promise.then(() => stored(tablet.id), () => 'rejected')
    const destroy = await gates.next('destroy')
    await turn()
    t.notOk(loading.settled, 'load() has not answered while the destroy is held')
    await destroy.release()
    t.equal(await loading.promise, null)
    t.equal(await atAnswer, null, 'no record the moment load() answered null')
    await assertNoUnhandled(t, unhandled)
  })

  t.test(`${store.name}: a loaded session's save() answers once the store saved; a refused or late save rejects, id redacted`, { skip }, async (t) => {
    const unhandled = unhandledRejections(t)
    const { app, gates, stored, login } = await setup(t, store, { storeTimeout: LATE_MS })
    const phone = await login('ada')
    const session = await app.sessions.load(phone.cookie) as Session
    gates.hold('save')

    session.set('socket', 'connected')
    const saving = watch(session.save())
    const atAnswer = saving.promise.then(async () => (await stored(phone.id))?.get('socket'), () => 'rejected')
    const save = await gates.next('save')
    await turn()
    t.notOk(saving.settled, 'save() has not answered while the store\'s save is held')
    await save.release()
    await saving.promise
    t.equal(await atAnswer, 'connected', 'the change is stored the moment save() answered')

    session.set('socket', 'refused')
    const refused = session.save()
    ;(await gates.next('save')).fail(namingFault(phone.id))
    assertUnavailable(t, await rejection(t, refused), [phone.id], 'save() whose save rejected')

    session.set('socket', 'late')
    const late = session.save()
    const lateSave = await gates.next('save')
    assertUnavailable(t, await rejection(t, late), [phone.id], 'save() whose save answered past storeTimeout')
    await lateSave.release()
    await assertNoUnhandled(t, unhandled)
  })

  t.test(`${store.name}: a loaded session's destroy() and save() answer once the record is gone; a refused or late destroy rejects`, { skip }, async (t) => {
    const unhandled = unhandledRejections(t)
    const { app, gates, stored, login } = await setup(t, store, { storeTimeout: LATE_MS })
    const phone = await login('ada')
    const tablet = await login('ada')
    const laptop = await login('ada')
    gates.hold('destroy')

    const refusedSession = await app.sessions.load(phone.cookie) as Session
    refusedSession.destroy()
    const refused = refusedSession.save()
    ;(await gates.next('destroy')).fail(namingFault(phone.id))
    assertUnavailable(t, await rejection(t, refused), [phone.id], 'save() of a destroyed session whose destroy rejected')
    t.ok(await stored(phone.id), 'the record is still there')

    const lateSession = await app.sessions.load(laptop.cookie) as Session
    lateSession.destroy()
    const late = lateSession.save()
    const lateDestroy = await gates.next('destroy')
    assertUnavailable(t, await rejection(t, late), [laptop.id], 'save() of a destroyed session whose destroy answered past storeTimeout')
    await lateDestroy.release()

    const session = await app.sessions.load(tablet.cookie) as Session
    session.destroy()
    const saving = watch(session.save())
    const atAnswer = saving.promise.then(() => stored(tablet.id), () => 'rejected')
    const destroy = await gates.next('destroy')
    await turn()
    t.notOk(saving.settled, 'save() has not answered while the destroy is held')
    await destroy.release()
    await saving.promise
    t.equal(await atAnswer, null, 'no record the moment save() answered')
    await assertNoUnhandled(t, unhandled)
  })
}

t.test('RedisFactory: list(), end() and endAll() over a record of the wrong type: FST_SESSION_STORE_UNAVAILABLE, no session id in the cause', { skip: redisSkip ?? false }, async (t) => {
  const unhandled = unhandledRejections(t)
  const prefix = randomPrefix()
  const client = await cleaningClient(t, prefix)
  const app = await buildApp({ factory: new RedisFactory({ client, prefix }), userKey: 'user' })
  t.teardown(() => app.close())
  const phone = new Client(app)
  await phone.post('/login', { user: 'ada' })
  const id = sessionIdOf(phone.cookie as string)
  const handle = (await app.sessions.list('ada'))[0]?.handle as string
  // Another writer on the prefix turned the record into a string: the index still names it.
  await client.del(`${prefix}${id}`)
  await client.set(`${prefix}${id}`, 'not a hash')

  assertUnavailable(t, await rejection(t, app.sessions.list('ada')), [id], 'list()', SESSIONS_OF_LEAK)
  assertUnavailable(t, await rejection(t, app.sessions.end('ada', handle)), [id], 'end()', SESSIONS_OF_LEAK)
  assertUnavailable(t, await rejection(t, app.sessions.endAll('ada')), [id], 'endAll()', SESSIONS_OF_LEAK)
  await assertNoUnhandled(t, unhandled)
})
