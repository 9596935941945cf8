// examples/redis.ts: two app instances on two ports, each with its own Redis client, one Redis
// behind them. Requests go over real HTTP, as they would from behind a balancer.
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { startInstances } from '../../examples/redis.js'
import { cleaningClient, REDIS_HOST, REDIS_PORT, freePort, keysUnder, randomPrefix, sharedRedisSkipReason, type TapTest } from '../helpers/redis.js'

const skip = await sharedRedisSkipReason() ?? false

async function startExample (t: TapTest, prefix: string): Promise<string[]> {
  const instances = await startInstances({
    redisUrl: `redis://${REDIS_HOST}:${REDIS_PORT}`,
    secret: randomBytes(32).toString('base64url'),
    prefix,
    ports: [0, 0]
  })
  t.teardown(() => instances.close())
  return instances.urls
}

interface Reply {
  status: number
  body: any
  cookie: string | undefined
}

async function call (url: string, cookie: string | undefined, init: RequestInit = {}): Promise<Reply> {
  const headers = new Headers(init.headers)
  if (cookie !== undefined) headers.set('cookie', cookie)
  const response = await fetch(url, { ...init, headers })
  const line = response.headers.getSetCookie().find((c) => c.startsWith('sid='))
  return { status: response.status, body: await response.json(), cookie: line?.split(';')[0] }
}

t.test('two instances behind a balancer share one session', { skip }, async (t) => {
  const prefix = randomPrefix()
  const redis = await cleaningClient(t, prefix)
  const [one, two] = await startExample(t, prefix) as [string, string]

  const first = await call(`${one}/`, undefined)
  t.equal(first.status, 200)
  t.same(first.body, { instance: 'instance-1', visits: 1 })
  const cookie = first.cookie
  t.ok(cookie, 'instance 1 issued a cookie')

  const second = await call(`${two}/`, cookie)
  t.same(second.body, { instance: 'instance-2', visits: 2 }, 'instance 2 read the session instance 1 made')
  t.equal(second.cookie, undefined, 'the same id: the cookie the browser holds stays right, none is sent')

  // 50 requests at once, alternating instances, each setting its own key of the one session.
  const names = Array.from({ length: 50 }, (_, i) => `k${i}`)
  const replies = await Promise.all(names.map((name, i) => call(`${i % 2 === 0 ? one : two}/prefs/${name}`, cookie, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ value: i })
  })))
  t.same(replies.map((r) => r.status), names.map(() => 200))
  t.same(new Set(replies.map((r) => r.body.instance)), new Set(['instance-1', 'instance-2']), 'both instances served')

  const after = await call(`${one}/session`, cookie)
  const expected: Record<string, number> = { visits: 2 }
  names.forEach((name, i) => { expected[`pref:${name}`] = i })
  t.same(after.body.data, expected, 'all 50 keys survived, and nothing else changed')
  t.equal((await keysUnder(redis, prefix)).length, 1, 'one hash holds the session')

  const logout = await call(`${two}/logout`, cookie, { method: 'POST' })
  t.equal(logout.status, 200)
  t.same(await keysUnder(redis, prefix), [], 'logout on instance 2 removed the session')
  const fresh = await call(`${one}/session`, cookie)
  t.same(fresh.body.data, {}, 'instance 1 no longer knows it')
})

t.test('an instance does not start while Redis is unreachable', async (t) => {
  const port = await freePort()
  await t.rejects(startInstances({
    redisUrl: `redis://${REDIS_HOST}:${port}`,
    secret: randomBytes(32).toString('base64url'),
    ports: [0]
  }), { code: 'ECONNREFUSED' })
})
