// connect-pg-simple behind the plugin, on the local PostgreSQL, in a table of its own.
import t from 'tap'
import connectPgSimple from 'connect-pg-simple'
import type pg from 'pg'
import { fromExpressStore } from '../src/index.js'
import { buildApp, Client } from './helpers/app.js'
import { connectPostgres, createSessionTable, expressSession, uniqueName } from './helpers/express-stores.js'

const connected = await connectPostgres()
if (typeof connected === 'string') {
  t.test('connect-pg-simple behind the plugin', { skip: connected }, async () => {})
} else {
  const pool: pg.Pool = connected
  const tableName = uniqueName('fsf_session')
  const dropTable = await createSessionTable(pool, tableName)
  t.teardown(async () => {
    await dropTable()
    await pool.end()
  })
  const PGStore = connectPgSimple(expressSession)

  const idOf = (cookie: string): string =>
    decodeURIComponent(cookie.slice(cookie.indexOf('=') + 1)).replace(/\.[^.]*$/, '')

  t.test('a session round-trips through connect-pg-simple; its expire column is the session\'s expiry', async (t) => {
    const app = await buildApp({ factory: fromExpressStore(new PGStore({ pool, tableName, pruneSessionInterval: false })) })
    t.teardown(() => app.close())
    const user = new Client(app)
    await user.post('/login', { user: 'ada' })
    t.same((await user.get('/')).json(), { visits: 1 })

    const id = idOf(user.cookie as string)
    const { rows } = await pool.query(`SELECT sess, extract(epoch from expire::timestamptz) * 1000 AS expire FROM "${tableName}" WHERE sid = $1`, [id])
    t.equal(rows.length, 1)
    t.same({ user: rows[0].sess.user, counter: rows[0].sess.counter }, { user: 'ada', counter: 1 })
    const expires = Date.parse(rows[0].sess.cookie.expires)
    t.ok(Math.abs(Number(rows[0].expire) - expires) <= 1_000, 'expire (whole seconds) follows cookie.expires')

    await user.post('/logout')
    const after = await pool.query(`SELECT count(*)::int AS n FROM "${tableName}"`)
    t.equal(after.rows[0].n, 0, 'logout deletes the row; login deleted the pre-login one')
  })

  t.test('docs/express-store.md\'s snippet: without a table, createTableIfMissing serves the first request; without it, 503s', async (t) => {
    const fresh = uniqueName('fsf_fresh')
    t.teardown(async () => { await pool.query(`DROP TABLE IF EXISTS "${fresh}"`) })
    const bare = await buildApp({ factory: fromExpressStore(new PGStore({ pool, tableName: uniqueName('fsf_none'), pruneSessionInterval: false })) })
    t.teardown(() => bare.close())
    t.equal((await new Client(bare).get('/')).statusCode, 503, 'no table, no createTableIfMissing: every request fails')
    const app = await buildApp({ factory: fromExpressStore(new PGStore({ pool, tableName: fresh, createTableIfMissing: true, pruneSessionInterval: false })) })
    t.teardown(() => app.close())
    const user = new Client(app)
    t.same((await user.get('/')).json(), { visits: 1 })
    t.same((await user.get('/')).json(), { visits: 2 }, 'the table was made and holds the session')
  })

  t.test('concurrent requests on one session all keep their change', async (t) => {
    const app = await buildApp({ factory: fromExpressStore(new PGStore({ pool, tableName, pruneSessionInterval: false })) })
    t.teardown(() => app.close())
    const user = new Client(app)
    await user.post('/set', { base: 1 })
    const headers = { cookie: user.cookie as string }
    await Promise.all(['a', 'b', 'c', 'd'].map((key) => app.inject({ method: 'POST', url: '/set', headers, payload: { [key]: key } })))
    t.same((await user.get('/read')).json().data, { base: 1, a: 'a', b: 'b', c: 'c', d: 'd' })
  })

  t.test('a database that went away: 503 FST_SESSION_STORE_UNAVAILABLE, the process lives on', async (t) => {
    const lost = await connectPostgres() as pg.Pool
    const app = await buildApp({ factory: fromExpressStore(new PGStore({ pool: lost, tableName, pruneSessionInterval: false })) })
    t.teardown(() => app.close())
    const user = new Client(app)
    await user.get('/')
    await lost.end()
    const response = await user.get('/')
    t.equal(response.statusCode, 503)
    t.equal(response.json().code, 'FST_SESSION_STORE_UNAVAILABLE')
  })
}
