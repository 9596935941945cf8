// A PostgreSQL outage under load: a cluster of this test's own (initdb + pg_ctl in a temporary
// directory) is stopped at once (-m immediate, as a crash) while users keep clicking, then
// started again. The app and its pool are never restarted.
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { PostgresFactory } from '../../src/index.js'
import { Client, buildApp } from '../helpers/app.js'
import { checkOutage, clickThroughOutage, type OutageResult } from '../helpers/outage.js'
import { PostgresCluster, clusterSkipReason } from '../helpers/postgres.js'

const skip = clusterSkipReason() ?? false

const USERS = 8
const STORE_TIMEOUT = 2_000

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
  t.teardown(() => app.close())

  const results = await clickThroughOutage(app, { users: USERS, kill: () => cluster.kill(), restart: () => cluster.restart() })
  checkOutage(t, results, { users: USERS, store: 'PostgreSQL', storeTimeout: STORE_TIMEOUT, fastBecause: 'connection refused fails fast' })

  // The rows survived the stop: each user carries on with the session (and the cookie) they had.
  for (let user = 0; user < USERS; user++) {
    const mine = results.filter((r) => r.user === user)
    const lastBefore = mine.filter((r) => !r.startedAfterKill && r.status === 200).at(-1) as OutageResult
    const firstAfter = mine.find((r) => r.startedAfterKill && r.status === 200) as OutageResult
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
