// A Redis outage under load: a redis-server of this test's own (no persistence) is SIGKILLed
// while users keep clicking, then restarted on the same port. The app is never restarted.
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { Redis } from 'ioredis'
import { RedisFactory } from '../../src/index.js'
import { Client, buildApp } from '../helpers/app.js'
import { RECOMMENDED, RedisServer, binariesSkipReason, freePort, type TapTest } from '../helpers/redis.js'

const skip = binariesSkipReason('redis-server') ?? false

const USERS = 8
const STORE_TIMEOUT = 2_000

type Phase = 'up' | 'killing' | 'down' | 'restarting' | 'back'

/** A redis-server of this test's own, a client with the README's options, and an app on it. */
async function appOnOwnRedis (t: TapTest, prefix: string): Promise<{ server: RedisServer, redis: Redis, app: FastifyInstance }> {
  const server = await RedisServer.start(await freePort())
  t.teardown(() => server.stop())
  // The README's options, and a quick reconnect so the test need not wait ioredis's backoff.
  const redis = new Redis({ port: server.port, ...RECOMMENDED, retryStrategy: () => 50, lazyConnect: true })
  // The client's error events (if the outage produced any before it reconnected) must not crash anything.
  redis.on('error', () => {})
  await redis.connect()
  t.teardown(() => redis.disconnect())
  const app = await buildApp({ factory: new RedisFactory({ client: redis, prefix }), storeTimeout: STORE_TIMEOUT })
  return { server, redis, app }
}

interface Result {
  user: number
  /** The phase when the request started, and when it ended. */
  from: Phase
  to: Phase
  startedAfterKill: boolean
  status: number
  body: any
  ms: number
  cookieBefore: string | undefined
  cookieAfter: string | undefined
  setCookie: boolean
}

t.test('Redis dies mid-run: 503s, no crash, and the same cookies work once it is back', { skip }, async (t) => {
  const unhandled: unknown[] = []
  const onUnhandled = (reason: unknown): void => { unhandled.push(reason) }
  process.on('unhandledRejection', onUnhandled)
  t.teardown(() => { process.off('unhandledRejection', onUnhandled) })

  const { server, redis, app } = await appOnOwnRedis(t, 'fault:')
  app.get<{ Querystring: { u: string } }>('/mine', async (request) => {
    const previous = request.session.get('owner')
    const visits = request.session.get('visits', 0) + 1
    request.session.set('owner', request.query.u)
    request.session.set('visits', visits)
    return { previous, visits }
  })
  t.teardown(() => app.close())

  let phase: Phase = 'up'
  let killed = false
  const control = { running: true }
  const results: Result[] = []
  const clients = Array.from({ length: USERS }, () => new Client(app))

  async function clicks (user: number): Promise<void> {
    const client = clients[user] as Client
    while (control.running) {
      const from = phase
      const startedAfterKill = killed
      const cookieBefore = client.cookie
      const started = Date.now()
      const reply = await client.get(`/mine?u=${user}`)
      results.push({
        user,
        from,
        to: phase,
        startedAfterKill,
        status: reply.statusCode,
        body: reply.json(),
        ms: Date.now() - started,
        cookieBefore,
        cookieAfter: client.cookie,
        setCookie: reply.headers['set-cookie'] !== undefined
      })
      await sleep(10)
    }
  }

  /** Waits until every user has had `count` requests that started and ended in `p` (the box may be slow). */
  async function untilEach (p: Phase, count: number): Promise<void> {
    const done = (user: number): boolean => results.filter((r) => r.user === user && r.from === p && r.to === p).length >= count
    while (!clients.every((_, user) => done(user))) await sleep(20)
  }

  const load = Promise.all(clients.map((_, user) => clicks(user)))
  await untilEach('up', 3)
  phase = 'killing'
  await server.kill()
  killed = true
  phase = 'down'
  await untilEach('down', 3)
  phase = 'restarting'
  await server.restart()
  while (redis.status !== 'ready') await sleep(10)
  phase = 'back'
  await untilEach('back', 3)
  control.running = false
  await load

  const steady = (p: Phase): Result[] => results.filter((r) => r.from === p && r.to === p)
  t.ok(steady('up').length >= USERS * 3, `${steady('up').length} requests before the kill`)
  t.same(steady('up').map((r) => r.status), steady('up').map(() => 200), 'all succeeded before the kill')

  const down = steady('down')
  t.ok(down.length >= USERS * 3, `${down.length} requests while Redis was down`)
  t.same(down.map((r) => r.status), down.map(() => 503), 'every request while Redis was down got a 503')
  t.same(new Set(down.map((r) => r.body.code)), new Set(['FST_SESSION_STORE_UNAVAILABLE']), 'each with FST_SESSION_STORE_UNAVAILABLE')
  t.equal(down.filter((r) => r.setCookie).length, 0, 'a 503 leaves the cookie as it was')
  const slowest = Math.max(...down.map((r) => r.ms))
  t.ok(slowest < STORE_TIMEOUT, `no request waited on an offline queue (slowest 503: ${slowest} ms)`)

  const back = steady('back')
  t.ok(back.length >= USERS * 3, `${back.length} requests once Redis was back`)
  t.same(back.map((r) => r.status), back.map(() => 200), 'every request succeeded once Redis was back')

  t.same([...new Set(results.map((r) => r.status))].filter((s) => s !== 200 && s !== 503), [], 'only 200s and 503s')
  for (const r of results.filter((r) => r.status === 200)) {
    if (r.body.previous !== undefined && r.body.previous !== String(r.user)) {
      t.fail(`user ${r.user} saw the session of user ${r.body.previous}`)
    }
  }

  // No persistence: the data is gone, so a cookie issued before the kill opens a fresh session.
  for (let user = 0; user < USERS; user++) {
    const mine = results.filter((r) => r.user === user)
    const lastBefore = mine.filter((r) => !r.startedAfterKill && r.status === 200).at(-1) as Result
    const firstAfter = mine.find((r) => r.startedAfterKill && r.status === 200) as Result
    t.ok(lastBefore.body.visits >= 2, `user ${user} had a session with ${lastBefore.body.visits} visits`)
    t.equal(firstAfter.cookieBefore, lastBefore.cookieAfter, `user ${user} came back with the cookie issued before the kill`)
    t.same(firstAfter.body, { visits: 1 }, `user ${user} got a fresh session, nothing of anyone's old data`)
    t.not(firstAfter.cookieAfter, firstAfter.cookieBefore, `user ${user} got a new id`)
    t.ok(mine.at(-1)!.body.visits > 1, `user ${user} carried on with the new session`)
  }

  t.same(unhandled, [], 'no unhandled rejection')
  t.equal((await app.inject('/untouched')).statusCode, 200, 'the app is still serving')
})

t.test('with the recommended options, a write that got a 503 is not replayed once Redis is back', { skip }, async (t) => {
  const { server, redis, app } = await appOnOwnRedis(t, 'ghost:')
  t.teardown(() => app.close())

  await server.kill()
  const reply = await new Client(app).post('/set', { user: 'ghost' }) // a new visitor: no load, only a save
  t.equal(reply.statusCode, 503)
  t.equal(reply.json().code, 'FST_SESSION_STORE_UNAVAILABLE')
  await server.restart()
  while (redis.status !== 'ready') await sleep(10)
  await sleep(200)
  t.same(await redis.keys('ghost:*'), [], 'no session appeared that nobody holds a cookie for')
})
