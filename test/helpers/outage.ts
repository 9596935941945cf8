// A store outage under load, shared by the Redis and PostgreSQL fault tests: users keep clicking
// while the test stops the store and starts it again; each request's phase, status and cookies are
// recorded, and the checks every outage must pass are made in one place.
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { Client } from './app.js'
import type { TapTest } from './redis.js'

export type Phase = 'up' | 'killing' | 'down' | 'restarting' | 'back'

export interface OutageResult {
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

/**
 * Adds GET /mine?u=<user> (stores the caller as owner, counts visits, answers the previous owner),
 * then runs `users` clients against it through the outage: each phase lasts until every user had
 * three requests that started and ended in it (the box may be slow).
 */
export async function clickThroughOutage (
  app: FastifyInstance,
  { users, kill, restart }: { users: number, kill: () => Promise<void>, restart: () => Promise<void> }
): Promise<OutageResult[]> {
  app.get<{ Querystring: { u: string } }>('/mine', async (request) => {
    const previous = request.session.get('owner')
    const visits = request.session.get('visits', 0) + 1
    request.session.set('owner', request.query.u)
    request.session.set('visits', visits)
    return { previous, visits }
  })

  let phase: Phase = 'up'
  let killed = false
  const control = { running: true }
  const results: OutageResult[] = []
  const clients = Array.from({ length: users }, () => new Client(app))

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

  async function untilEach (p: Phase, count: number): Promise<void> {
    const done = (user: number): boolean => results.filter((r) => r.user === user && r.from === p && r.to === p).length >= count
    while (!clients.every((_, user) => done(user))) await sleep(20)
  }

  const load = Promise.all(clients.map((_, user) => clicks(user)))
  await untilEach('up', 3)
  phase = 'killing'
  await kill()
  killed = true
  phase = 'down'
  await untilEach('down', 3)
  phase = 'restarting'
  await restart()
  phase = 'back'
  await untilEach('back', 3)
  control.running = false
  await load
  return results
}

/**
 * What every outage must show: all 200 before, a fast 503 FST_SESSION_STORE_UNAVAILABLE with the
 * cookie left alone during, all 200 after, nothing but 200s and 503s, and no user ever seeing
 * another user's session.
 */
export function checkOutage (t: TapTest, results: OutageResult[], { users, store, storeTimeout, fastBecause }: {
  users: number, store: string, storeTimeout: number, fastBecause: string
}): void {
  const steady = (p: Phase): OutageResult[] => results.filter((r) => r.from === p && r.to === p)
  t.ok(steady('up').length >= users * 3, `${steady('up').length} requests before the outage`)
  t.same(steady('up').map((r) => r.status), steady('up').map(() => 200), 'all succeeded before the outage')

  const down = steady('down')
  t.ok(down.length >= users * 3, `${down.length} requests while ${store} was down`)
  t.same(down.map((r) => r.status), down.map(() => 503), `every request while ${store} was down got a 503`)
  t.same(new Set(down.map((r) => r.body.code)), new Set(['FST_SESSION_STORE_UNAVAILABLE']), 'each with FST_SESSION_STORE_UNAVAILABLE')
  t.equal(down.filter((r) => r.setCookie).length, 0, 'a 503 leaves the cookie as it was')
  const slowest = Math.max(...down.map((r) => r.ms))
  t.ok(slowest < storeTimeout, `${fastBecause} (slowest 503: ${slowest} ms)`)

  const back = steady('back')
  t.ok(back.length >= users * 3, `${back.length} requests once ${store} was back`)
  t.same(back.map((r) => r.status), back.map(() => 200), `every request succeeded once ${store} was back`)

  t.same([...new Set(results.map((r) => r.status))].filter((s) => s !== 200 && s !== 503), [], 'only 200s and 503s')
  for (const r of results.filter((r) => r.status === 200)) {
    if (r.body.previous !== undefined && r.body.previous !== String(r.user)) {
      t.fail(`user ${r.user} saw the session of user ${r.body.previous}`)
    }
  }
}
