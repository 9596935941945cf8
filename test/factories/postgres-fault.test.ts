// A PostgreSQL outage under load: a cluster of this test's own (initdb + pg_ctl in a temporary
// directory) is stopped at once (-m immediate, as a crash) while users keep clicking, then
// started again. The app and its pool are never restarted.
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { PostgresFactory } from '../../src/index.js'
import { Client, buildApp } from '../helpers/app.js'
import { PostgresCluster, clusterSkipReason } from '../helpers/postgres.js'

const skip = clusterSkipReason() ?? false

const USERS = 8
const STORE_TIMEOUT = 2_000

type Phase = 'up' | 'killing' | 'down' | 'restarting' | 'back'

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

t.test('PostgreSQL stops mid-run: 503s, no crash, and every user gets their own session back once it is up', { skip }, async (t) => {
  const unhandled: unknown[] = []
  const onUnhandled = (reason: unknown): void => { unhandled.push(reason) }
  process.on('unhandledRejection', onUnhandled)
  t.teardown(() => { process.off('unhandledRejection', onUnhandled) })

  const cluster = await PostgresCluster.start()
  t.teardown(() => cluster.stop())
  const pool = cluster.pool()
  t.teardown(() => pool.end())
  const app = await buildApp({ factory: new PostgresFactory({ pool, createTable: true }), storeTimeout: STORE_TIMEOUT })
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
  await cluster.kill()
  killed = true
  phase = 'down'
  await untilEach('down', 3)
  phase = 'restarting'
  await cluster.restart()
  phase = 'back'
  await untilEach('back', 3)
  control.running = false
  await load

  const steady = (p: Phase): Result[] => results.filter((r) => r.from === p && r.to === p)
  t.ok(steady('up').length >= USERS * 3, `${steady('up').length} requests before the stop`)
  t.same(steady('up').map((r) => r.status), steady('up').map(() => 200), 'all succeeded before the stop')

  const down = steady('down')
  t.ok(down.length >= USERS * 3, `${down.length} requests while PostgreSQL was down`)
  t.same(down.map((r) => r.status), down.map(() => 503), 'every request while PostgreSQL was down got a 503')
  t.same(new Set(down.map((r) => r.body.code)), new Set(['FST_SESSION_STORE_UNAVAILABLE']), 'each with FST_SESSION_STORE_UNAVAILABLE')
  t.equal(down.filter((r) => r.setCookie).length, 0, 'a 503 leaves the cookie as it was')
  const slowest = Math.max(...down.map((r) => r.ms))
  t.ok(slowest < STORE_TIMEOUT, `connection refused fails fast (slowest 503: ${slowest} ms)`)

  const back = steady('back')
  t.ok(back.length >= USERS * 3, `${back.length} requests once PostgreSQL was back`)
  t.same(back.map((r) => r.status), back.map(() => 200), 'every request succeeded once PostgreSQL was back, on the same pool')

  t.same([...new Set(results.map((r) => r.status))].filter((s) => s !== 200 && s !== 503), [], 'only 200s and 503s')
  for (const r of results.filter((r) => r.status === 200)) {
    if (r.body.previous !== undefined && r.body.previous !== String(r.user)) {
      t.fail(`user ${r.user} saw the session of user ${r.body.previous}`)
    }
  }

  // The rows survived the stop: each user carries on with the session (and the cookie) they had.
  for (let user = 0; user < USERS; user++) {
    const mine = results.filter((r) => r.user === user)
    const lastBefore = mine.filter((r) => !r.startedAfterKill && r.status === 200).at(-1) as Result
    const firstAfter = mine.find((r) => r.startedAfterKill && r.status === 200) as Result
    t.ok(lastBefore.body.visits >= 3, `user ${user} had a session with ${lastBefore.body.visits} visits`)
    t.equal(firstAfter.cookieBefore, lastBefore.cookieAfter, `user ${user} came back with the cookie issued before the stop`)
    t.equal(firstAfter.body.previous, String(user), `user ${user} found their own session`)
    t.ok(firstAfter.body.visits > lastBefore.body.visits, `user ${user} went on counting (${lastBefore.body.visits} then ${firstAfter.body.visits})`)
    t.equal(firstAfter.cookieAfter, firstAfter.cookieBefore, `user ${user} kept their id`)
  }

  t.same(unhandled, [], 'no unhandled rejection')
  t.equal((await app.inject('/untouched')).statusCode, 200, 'the app is still serving')
})

t.test('an app that starts while PostgreSQL is down: 503s, then the table is made once it is up', { skip }, async (t) => {
  const cluster = await PostgresCluster.start()
  t.teardown(() => cluster.stop())
  await cluster.kill()
  const pool = cluster.pool()
  t.teardown(() => pool.end())
  const app = await buildApp({ factory: new PostgresFactory({ pool, createTable: true, sweepInterval: 1 }), storeTimeout: STORE_TIMEOUT })
  t.teardown(() => app.close())

  const user = new Client(app)
  const refused = await user.get('/')
  t.equal(refused.statusCode, 503)
  t.equal(refused.json().code, 'FST_SESSION_STORE_UNAVAILABLE')
  await sleep(1200) // a sweep fails meanwhile, quietly
  await cluster.restart()
  t.same((await user.get('/')).json(), { visits: 1 })
  t.same((await user.get('/')).json(), { visits: 2 })
  const { rows } = await pool.query('SELECT count(*)::int AS n FROM fastify_sessions')
  t.equal(rows[0].n, 1)
})
