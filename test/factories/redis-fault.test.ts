// A Redis outage under load: a redis-server of this test's own (no persistence) is SIGKILLed
// while users keep clicking, then restarted on the same port. The app is never restarted.
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import type { Redis } from 'ioredis'
import { RedisFactory } from '../../src/index.js'
import { Client, buildApp } from '../helpers/app.js'
import { checkOutage, clickThroughOutage, type OutageResult } from '../helpers/outage.js'
import { ownRedis, type RedisServer, binariesSkipReason, type TapTest } from '../helpers/redis.js'

const skip = binariesSkipReason('redis-server') ?? false

const USERS = 8
const STORE_TIMEOUT = 2_000

/** A redis-server of this test's own, a client with the README's options, and an app on it. */
async function appOnOwnRedis (t: TapTest, prefix: string): Promise<{ server: RedisServer, redis: Redis, app: FastifyInstance }> {
  const { server, redis } = await ownRedis(t)
  const app = await buildApp({ factory: new RedisFactory({ client: redis, prefix }), storeTimeout: STORE_TIMEOUT })
  return { server, redis, app }
}

t.test('Redis dies mid-run: 503s, no crash, and the same cookies work once it is back', { skip }, async (t) => {
  const unhandled: unknown[] = []
  const onUnhandled = (reason: unknown): void => { unhandled.push(reason) }
  process.on('unhandledRejection', onUnhandled)
  t.teardown(() => { process.off('unhandledRejection', onUnhandled) })

  const { server, redis, app } = await appOnOwnRedis(t, 'fault:')
  t.teardown(() => app.close())

  const restart = async (): Promise<void> => {
    await server.restart()
    while (redis.status !== 'ready') await sleep(10)
  }
  const results = await clickThroughOutage(app, { users: USERS, kill: () => server.kill(), restart })
  checkOutage(t, results, { users: USERS, store: 'Redis', storeTimeout: STORE_TIMEOUT, fastBecause: 'no request waited on an offline queue' })

  // No persistence: the data is gone, so a cookie issued before the kill opens a fresh session.
  for (let user = 0; user < USERS; user++) {
    const mine = results.filter((r) => r.user === user)
    const lastBefore = mine.filter((r) => !r.startedAfterKill && r.status === 200).at(-1) as OutageResult
    const firstAfter = mine.find((r) => r.startedAfterKill && r.status === 200) as OutageResult
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
