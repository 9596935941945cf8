// PostgresFactory beyond the conformance suite (postgres-suite.test.ts): its options, its table,
// one statement per save, merging across app instances (and what connect-pg-simple loses there),
// rows it must not bring back, the user index, the sweep, and input a store must survive.
// Against the PostgreSQL at 127.0.0.1:5432; every table (or schema) is this run's own and dropped.
import { setTimeout as sleep } from 'node:timers/promises'
import connectPgSimple from 'connect-pg-simple'
import type { FastifyInstance } from 'fastify'
import pg from 'pg'
import t from 'tap'
import { PostgresFactory, Session, fromExpressStore, type PostgresFactoryOptions, type PostgresPoolLike, type PostgresStatement, type SessionFactory } from '../../src/index.js'
import { Client, buildApp, sessionIdOf } from '../helpers/app.js'
import { expressSession } from '../helpers/express-stores.js'
import { countRows, sharedPool, sharedPostgresSkipReason, uniqueName } from '../helpers/postgres.js'
import type { TapTest } from '../helpers/redis.js'

const skip = await sharedPostgresSkipReason()
if (skip !== null) t.plan(0, skip)
else registerTests()

function registerTests (): void {
  const pool = sharedPool()
  t.teardown(() => pool.end())

  /** A table of the test's own, created by its first factory (createTable), dropped when the test ends. */
  function tableFor (t: TapTest, label = 'pg'): string {
    const table = uniqueName(label)
    t.teardown(() => pool.query(`DROP TABLE IF EXISTS "${table}", "${table}_users"`))
    return table
  }

  /** A factory on a table of the test's own; the sweep is off unless asked for. */
  function factoryFor (t: TapTest, options: Partial<PostgresFactoryOptions> = {}): { factory: PostgresFactory, table: string } {
    const table = options.table ?? tableFor(t)
    const factory = new PostgresFactory({ pool, table, createTable: true, sweepInterval: 0, ...options })
    t.teardown(() => factory.close())
    return { factory, table }
  }

  /** A new session as the plugin hands it to save(): an id, an expiry, a user. */
  function fresh (data: Record<string, unknown>, options: { id?: string, ttlMs?: number, userId?: string | null } = {}): Session {
    const session = new Session(data)
    session.id = options.id ?? `id-${Math.random().toString(36).slice(2)}`
    session.expiresAt = Date.now() + (options.ttlMs ?? 60_000)
    session.filedUnder = options.userId ?? null
    return session
  }

  async function rowOf (table: string, id: string): Promise<Record<string, any> | undefined> {
    const { rows } = await pool.query(`SELECT id, data, created_at::float8 AS created_at, touched_at::float8 AS touched_at, expires_at::float8 AS expires_at, user_id FROM "${table}" WHERE id = $1`, [id])
    return rows[0]
  }

  /** The pool, with every statement the factory sends written down (its first word), and its name. */
  function recording (): { pool: PostgresPoolLike, statements: string[], names: Array<string | undefined> } {
    const statements: string[] = []
    const names: Array<string | undefined> = []
    return {
      statements,
      names,
      pool: {
        query: (statement: string | PostgresStatement, values: unknown[]) => {
          const named = typeof statement === 'string' ? { name: undefined, text: statement } : statement
          statements.push(named.text.split(/\s/, 1)[0] as string)
          names.push(named.name)
          return pool.query(statement, values)
        }
      }
    }
  }

  t.test('options are checked when the factory is made', async (t) => {
    const codes = { code: 'FST_SESSION_INVALID_OPTIONS' }
    t.throws(() => new PostgresFactory(undefined as any), codes, 'no options')
    t.throws(() => new PostgresFactory({} as any), codes, 'no pool')
    t.throws(() => new PostgresFactory({ pool: { connect () {} } as any }), codes, 'not a pool')
    for (const table of ['', 'a.b.c', '.sessions', 'sessions.', '1sessions', 'my-sessions', 'sessions;drop table x', 'se"ssions', 'séssions', 'x'.repeat(64), `public.${'x'.repeat(64)}`, 42]) {
      t.throws(() => new PostgresFactory({ pool, table: table as string }), codes, `table ${JSON.stringify(table)}`)
    }
    t.throws(() => new PostgresFactory({ pool, createTable: 'yes' as any }), codes, 'createTable that is not a boolean')
    t.throws(() => new PostgresFactory({ pool, prepare: 'yes' as any }), codes, 'prepare that is not a boolean')
    for (const sweepInterval of [-1, 1.5, '300', Number.NaN]) {
      t.throws(() => new PostgresFactory({ pool, sweepInterval: sweepInterval as number }), codes, `sweepInterval ${String(sweepInterval)}`)
    }
    t.throws(() => new PostgresFactory({ pool, ttl: 0 }), codes, 'a ttl of 0')
    t.ok(new PostgresFactory({ pool, table: `_${'x'.repeat(62)}`, sweepInterval: 0, ttl: 1 }), 'a 63-character name, no sweep')
    t.ok(new PostgresFactory({ pool, table: 'Some_Schema.Sessions_2' }), 'schema.name')
    t.ok(new PostgresFactory({ pool }), 'a pool alone is enough')
  })

  t.test('createTable makes the table and its indexes; a new session is one row', async (t) => {
    const { factory, table } = factoryFor(t)
    const session = fresh({ user: 'ada', cart: [1, 2] }, { ttlMs: 30_000, userId: 'ada' })
    const id = await factory.save(session)
    t.equal(id, session.id, 'a store-backed factory keeps the id it was given')
    t.same(await rowOf(table, id), {
      id,
      data: { user: 'ada', cart: [1, 2] },
      created_at: session.createdAt,
      touched_at: session.touchedAt,
      expires_at: session.expiresAt,
      user_id: 'ada'
    })
    const { rows: columns } = await pool.query('SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position', [table])
    t.same(columns.map((c) => `${c.column_name} ${c.data_type}${c.is_nullable === 'YES' ? ' null' : ''}`),
      ['id text', 'data jsonb', 'created_at bigint', 'touched_at bigint', 'expires_at bigint', 'user_id text null', 'user_generation bigint null'])
    const { rows: indexes } = await pool.query('SELECT indexname, indexdef FROM pg_indexes WHERE tablename = $1 ORDER BY indexname', [table])
    t.same(indexes.map((i) => i.indexname), [`${table}_expires_at_idx`, `${table}_pkey`, `${table}_user_id_idx`])
    t.match(indexes[2].indexdef, /\(user_id\) WHERE \(user_id IS NOT NULL\)/, 'the user index leaves anonymous sessions out')
  })

  t.test('a session saved outside the plugin, without id or expiry: a generated id and the ttl option', async (t) => {
    const { factory, table } = factoryFor(t, { ttl: 120 })
    const before = Date.now()
    const id = await factory.save(new Session({ a: 1 }))
    t.match(id, /^[A-Za-z0-9_-]{43}$/)
    const row = await rowOf(table, id) as Record<string, any>
    t.ok(row.expires_at >= before + 120_000 && row.expires_at <= Date.now() + 120_000, 'expires ttl seconds from now')
    t.equal(row.user_id, null)
    const loaded = await factory.load(id) as Session
    loaded.expiresAt = null
    await factory.touch(loaded)
    t.ok((await rowOf(table, id) as Record<string, any>).expires_at >= row.expires_at, 'touch without expiresAt uses the ttl too')
    loaded.set('b', 2)
    await factory.save(loaded)
    t.same((await rowOf(table, id) as Record<string, any>).data, { a: 1, b: 2 }, 'and so does a merge')
    await factory.touch(new Session({ never: 'saved' }))
    t.equal(await countRows(pool, `"${table}"`), 1, 'touch of a session without id writes nothing')
  })

  t.test('the default table, a schema-qualified one, and a 63-character name', async (t) => {
    const schema = uniqueName('schema')
    await pool.query(`CREATE SCHEMA "${schema}"`)
    t.teardown(() => pool.query(`DROP SCHEMA "${schema}" CASCADE`))
    const scoped = sharedPool({ max: 2, options: `-c search_path=${schema}` })
    t.teardown(() => scoped.end())

    const plain = new PostgresFactory({ pool: scoped, createTable: true, sweepInterval: 0 })
    const first = await plain.save(fresh({ where: 'default' }))
    t.equal(await countRows(pool, `"${schema}".fastify_sessions`), 1, 'the default table is fastify_sessions, found through search_path')

    const long = `T${'x'.repeat(62)}`
    const qualified = new PostgresFactory({ pool, table: `${schema}.${long}`, createTable: true, sweepInterval: 0 })
    const second = await qualified.save(fresh({ where: 'qualified' }))
    t.equal((await qualified.load(second) as Session).get('where'), 'qualified')
    t.equal(await qualified.load(first), null, 'another table: the sessions are apart')
    t.equal(await countRows(pool, `"${schema}"."${long}"`), 1, 'the name is quoted: its case is kept')
    const { rows } = await pool.query('SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND tablename = $2 ORDER BY indexname', [schema, long])
    t.equal(rows.length, 3, 'both named indexes exist next to the primary key, though the table name leaves no room for a suffix')
    t.ok(rows.every((r) => r.indexname.length <= 63))
  })

  t.test('createTable from several factories at once on a fresh table: all succeed', async (t) => {
    for (let round = 0; round < 5; round++) {
      const table = tableFor(t, 'race')
      // Pools of their own: each factory's DDL runs on its own connection, as on two instances.
      const pools = Array.from({ length: 4 }, () => sharedPool({ max: 1 }))
      t.teardown(() => Promise.all(pools.map((p) => p.end())))
      const factories = pools.map((p) => new PostgresFactory({ pool: p, table, createTable: true, sweepInterval: 0 }))
      const results = await Promise.allSettled(factories.map((f, i) => f.save(fresh({ n: i }))))
      t.same(results.map((r) => r.status), ['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled'], `round ${round}: every factory created or found the table`)
      t.equal(await countRows(pool, `"${table}"`), 4)
    }
  })

  t.test('createTable retries after a failure: a first call that fails does not stick', async (t) => {
    const schema = uniqueName('late')
    const factory = new PostgresFactory({ pool, table: `${schema}.sessions`, createTable: true, sweepInterval: 0 })
    await t.rejects(factory.load('any'), { code: '3F000' }, 'the schema is missing: the call fails with PostgreSQL\'s error')
    await pool.query(`CREATE SCHEMA "${schema}"`)
    t.teardown(() => pool.query(`DROP SCHEMA "${schema}" CASCADE`))
    const id = await factory.save(fresh({ ok: true }))
    t.same((await factory.load(id) as Session).data, { ok: true }, 'the next call made the table')
  })

  t.test('without createTable a missing table is the store failing: 503, and nothing is made', async (t) => {
    const table = uniqueName('missing')
    const app = await buildApp({ factory: new PostgresFactory({ pool, table, sweepInterval: 0 }) })
    t.teardown(() => app.close())
    const response = await app.inject({ method: 'POST', url: '/set', payload: { a: 1 } })
    t.equal(response.statusCode, 503)
    t.equal(response.json().code, 'FST_SESSION_STORE_UNAVAILABLE')
    t.equal((await pool.query('SELECT to_regclass($1) AS t', [table])).rows[0].t, null)
  })

  t.test('a statement that failed to prepare (no table yet) is prepared again on the same connection once the table is there', async (t) => {
    const table = tableFor(t)
    const single = sharedPool({ max: 1 })
    t.teardown(() => single.end())
    const factory = new PostgresFactory({ pool: single, table, sweepInterval: 0 })
    await t.rejects(factory.load('some-id'), { code: '42P01' }, 'undefined_table: the load fails to prepare')
    await new PostgresFactory({ pool, table, createTable: true, sweepInterval: 0 }).sweep()
    t.equal(await factory.load('some-id'), null, 'the same statement on the same connection now runs')
  })

  t.test('a prepared statement the server connection lost (a pooler in transaction mode does this) is a 503 whose cause names prepare: false', async (t) => {
    const table = tableFor(t)
    const single = sharedPool({ max: 1 })
    t.teardown(() => single.end())
    const errors: unknown[] = []
    const app = await buildApp({ factory: new PostgresFactory({ pool: single, table, createTable: true, sweepInterval: 0 }) })
    app.addHook('onError', async (_request, _reply, error) => { errors.push(error) })
    t.teardown(() => app.close())
    const client = new Client(app)
    t.equal((await client.get('/')).statusCode, 200)
    t.equal((await client.get('/')).statusCode, 200, 'a load and a merge prepared on the one connection')
    // What PgBouncer's transaction mode amounts to: the server connection forgets what pg prepared on it.
    await single.query('DEALLOCATE ALL')
    const lost = await client.get('/')
    t.equal(lost.statusCode, 503)
    t.equal(lost.json().code, 'FST_SESSION_STORE_UNAVAILABLE')
    const cause = (errors[0] as Error).cause as Error & { cause: { code: string } }
    t.match(cause.message, /prepare: false/, 'the fix is named')
    t.equal(cause.cause.code, '26000', 'PostgreSQL\'s own error is kept as its cause')
  })

  t.test('a statement timeout and an exhausted pool are the store failing: 503, then service as usual', async (t) => {
    const table = tableFor(t)
    const small = sharedPool({ max: 1, connectionTimeoutMillis: 200, statement_timeout: 200 })
    t.teardown(() => small.end())
    const app = await buildApp({ factory: new PostgresFactory({ pool: small, table, createTable: true, sweepInterval: 0 }) })
    t.teardown(() => app.close())
    const user = new Client(app)
    t.same((await user.get('/')).json(), { visits: 1 })

    const blocker = await pool.connect()
    await blocker.query('BEGIN')
    await blocker.query(`LOCK TABLE "${table}" IN ACCESS EXCLUSIVE MODE`)
    const timedOut = await user.get('/')
    await blocker.query('COMMIT')
    blocker.release()
    t.equal(timedOut.statusCode, 503, 'the statement waited past statement_timeout')
    t.equal(timedOut.json().code, 'FST_SESSION_STORE_UNAVAILABLE')

    const held = await small.connect()
    const exhausted = await user.get('/')
    held.release()
    t.equal(exhausted.statusCode, 503, 'no connection came free within connectionTimeoutMillis')
    t.equal(exhausted.json().code, 'FST_SESSION_STORE_UNAVAILABLE')

    t.same((await user.get('/')).json(), { visits: 2 }, 'the same session carries on')
  })

  t.test('one statement per call: the DDL once, then a save of a loaded session is one UPDATE', async (t) => {
    const { pool: watched, statements } = recording()
    const { factory } = factoryFor(t, { pool: watched })
    const id = await factory.save(fresh({ keep: 1, change: 'old', drop: true }))
    t.same(statements.splice(0), ['DO', 'INSERT'], 'the table is made before the first statement')
    const loaded = await factory.load(id) as Session
    loaded.set('change', 'new').set('add', [1]).delete('drop')
    await factory.save(loaded)
    await factory.touch(loaded)
    await factory.destroy(id)
    t.same(statements, ['SELECT', 'UPDATE', 'UPDATE', 'DELETE'], 'load, save, touch, destroy: one statement each, no second DDL')
  })

  t.test('statements are named (prepared once per connection), the DDL excepted; prepare: false names none', async (t) => {
    const { pool: watched, names } = recording()
    const { factory, table } = factoryFor(t, { pool: watched })
    const id = await factory.save(fresh({ n: 1 }))
    const loaded = await factory.load(id) as Session
    await factory.save(loaded.set('n', 2))
    t.equal(names[0], undefined, 'the DDL is not named')
    t.ok(names.slice(1).every((name) => name !== undefined && /^fsf_[0-9a-f]{24}$/.test(name)), 'insert, load, save: named')
    t.equal(new Set(names).size, 4, 'one name per statement')

    const { pool: again, names: sameNames } = recording()
    const twin = new PostgresFactory({ pool: again, table, sweepInterval: 0 })
    t.same((await twin.load(id))?.get('n'), 2, 'a second factory on the table reads it')
    t.equal(sameNames[0], names[2], 'and shares its statement names: equal texts, one name')

    const { pool: plain, names: noNames } = recording()
    const unprepared = new PostgresFactory({ pool: plain, table, sweepInterval: 0, prepare: false })
    const other = await unprepared.load(id) as Session
    await unprepared.save(other.set('n', 3))
    t.same(noNames, [undefined, undefined], 'prepare: false sends the text alone')
    t.same((await rowOf(table, id) as Record<string, any>).data, { n: 3 })
  })

  t.test('a save applies only the changes: keys written meanwhile by another request survive', async (t) => {
    const { factory, table } = factoryFor(t)
    const id = await factory.save(fresh({ keep: 1, change: 'old', drop: true }))
    const loaded = await factory.load(id) as Session
    await pool.query(`UPDATE "${table}" SET data = data || '{"other": "written meanwhile"}'`)
    loaded.set('change', 'new').delete('drop')
    await factory.save(loaded)
    t.same((await rowOf(table, id) as Record<string, any>).data, { keep: 1, change: 'new', other: 'written meanwhile' })
  })

  /** 50 requests on one session, spread over two apps, each setting a key of its own; the keys kept. */
  async function fiftyOnTwoApps (t: TapTest, make: () => SessionFactory<any>): Promise<string[]> {
    const apps: FastifyInstance[] = [await buildApp({ factory: make() }), await buildApp({ factory: make() })]
    t.teardown(() => Promise.all(apps.map((app) => app.close())))
    const user = new Client(apps[0] as FastifyInstance)
    t.equal((await user.post('/set', { base: 'yes' })).statusCode, 200)
    const headers = { cookie: user.cookie as string }
    const responses = await Promise.all(Array.from({ length: 50 }, (_, i) =>
      (apps[i % 2] as FastifyInstance).inject({ method: 'POST', url: '/set', headers, payload: { [`k${i}`]: i } })))
    t.same([...new Set(responses.map((r) => r.statusCode))], [200], 'every request succeeded')
    const data = (await user.get('/read')).json().data as Record<string, unknown>
    t.equal(data.base, 'yes')
    return Object.keys(data).filter((key) => key.startsWith('k'))
  }

  t.test('50 concurrent requests on one session through two app instances: all 50 keys kept', async (t) => {
    const table = tableFor(t)
    const kept = await fiftyOnTwoApps(t, () => new PostgresFactory({ pool, table, createTable: true, sweepInterval: 0 }))
    t.equal(kept.length, 50, 'every request\'s key is in the session')
  })

  t.test('the same 50 requests on connect-pg-simple, which writes whole sessions', async (t) => {
    const tableName = tableFor(t, 'cps')
    const PGStore = connectPgSimple(expressSession)
    // Made by the first store alone: its own createTableIfMissing is not safe to run twice at once.
    const first = new PGStore({ pool, tableName, createTableIfMissing: true, pruneSessionInterval: false })
    await new Promise<void>((resolve, reject) => first.get('warm-up', (error) => error == null ? resolve() : reject(error)))
    const stores = [first, new PGStore({ pool, tableName, createTableIfMissing: true, pruneSessionInterval: false })]
    let made = 0
    const kept = await fiftyOnTwoApps(t, () => fromExpressStore(stores[made++] as InstanceType<typeof PGStore>))
    t.comment(`connect-pg-simple kept ${kept.length} of 50 keys, losing ${50 - kept.length} (PostgresFactory keeps all 50)`)
    t.ok(kept.length <= 50)
  })

  t.test('a destroyed or expired row is never brought back by a save or a touch', async (t) => {
    const { factory, table } = factoryFor(t)
    const destroyed = await factory.save(fresh({ user: 'ada' }))
    const late = await factory.load(destroyed) as Session
    t.equal(await factory.destroy(destroyed), true, 'destroy of a live row: true')
    late.set('late', true)
    late.expiresAt = Date.now() + 60_000
    t.equal(await factory.save(late), destroyed, 'the save still answers the id')
    await factory.touch(late)
    t.equal(await rowOf(table, destroyed), undefined, 'no row came back')

    const expiring = await factory.save(fresh({ user: 'bob' }, { ttlMs: 300 }))
    const old = await factory.load(expiring) as Session
    await sleep(400)
    old.set('late', true)
    old.expiresAt = Date.now() + 60_000
    await factory.save(old)
    await factory.touch(old)
    const row = await rowOf(table, expiring) as Record<string, any>
    t.same(row.data, { user: 'bob' }, 'the expired row was neither changed nor revived')
    t.ok(row.expires_at < Date.now(), 'it is still expired')
    t.equal(await factory.load(expiring), null)
  })

  t.test('load deletes an expired row it finds; destroy says whether a live row went', async (t) => {
    const { factory, table } = factoryFor(t)
    const expired = await factory.save(fresh({ a: 1 }, { ttlMs: 1 }))
    await sleep(10)
    t.ok(await rowOf(table, expired), 'the expired row is still there')
    t.equal(await factory.load(expired), null)
    t.equal(await rowOf(table, expired), undefined, 'load deleted it')

    const again = await factory.save(fresh({ a: 1 }, { ttlMs: 1 }))
    await sleep(10)
    t.equal(await factory.destroy(again), false, 'an expired row: removed, but it was not live')
    t.equal(await rowOf(table, again), undefined)
    t.equal(await factory.destroy('never-saved'), false, 'an unknown id: false')
  })

  t.test('touch moves touched_at and expires_at and leaves data (and pending changes) alone', async (t) => {
    const { factory, table } = factoryFor(t)
    const id = await factory.save(fresh({ user: 'ada' }, { ttlMs: 10_000, userId: 'ada' }))
    const loaded = await factory.load(id) as Session
    loaded.set('unsaved', true)
    loaded.touchedAt = Date.now() + 5
    loaded.expiresAt = Date.now() + 90_000
    loaded.filedUnder = null
    await factory.touch(loaded)
    const row = await rowOf(table, id) as Record<string, any>
    t.same({ data: row.data, touched_at: row.touched_at, expires_at: row.expires_at, user_id: row.user_id },
      { data: { user: 'ada' }, touched_at: loaded.touchedAt, expires_at: loaded.expiresAt, user_id: 'ada' })
  })

  t.test('through the plugin: rolling touches, regenerate deletes the old row, logout deletes the row', async (t) => {
    const { factory, table } = factoryFor(t)
    const app = await buildApp({ factory, idleTimeout: 10 })
    t.teardown(() => app.close())
    const user = new Client(app)
    t.same((await user.get('/')).json(), { visits: 1 })
    const id = sessionIdOf(user.cookie as string)
    const before = await rowOf(table, id) as Record<string, any>
    await sleep(1100) // a tenth of idleTimeout: the next read rolls the expiry with a touch
    t.equal((await user.get('/read')).statusCode, 200)
    const after = await rowOf(table, id) as Record<string, any>
    t.ok(after.expires_at > before.expires_at, 'the read moved expires_at')
    t.same(after.data, before.data)

    await user.post('/login', { user: 'ada' })
    const newId = sessionIdOf(user.cookie as string)
    t.not(newId, id)
    t.equal(await rowOf(table, id), undefined, 'the pre-login row is gone')
    t.same((await rowOf(table, newId) as Record<string, any>).data, { counter: 1, user: 'ada' })
    await user.post('/logout')
    t.equal(await countRows(pool, `"${table}"`), 0)
  })

  t.test('the user index: live sessions of one user, from the user_id each save writes', async (t) => {
    const { factory } = factoryFor(t)
    const first = fresh({ n: 1 }, { userId: 'ada' })
    const second = fresh({ n: 2 }, { userId: 'ada' })
    second.createdAt = first.createdAt + 1
    await factory.save(first)
    await factory.save(second)
    await factory.save(fresh({ n: 3 }, { userId: 'bob' }))
    await factory.save(fresh({ n: 4 }, { userId: 'ada', ttlMs: 1 }))
    await factory.save(fresh({ n: 5 }))
    await sleep(10)
    t.same(await factory.sessionsOf('ada'), [
      { id: first.id, createdAt: first.createdAt, touchedAt: first.touchedAt, expiresAt: first.expiresAt },
      { id: second.id, createdAt: second.createdAt, touchedAt: second.touchedAt, expiresAt: second.expiresAt }
    ], 'oldest first; bob\'s, the expired and the anonymous one are left out')

    await factory.destroy(first.id as string)
    const loaded = await factory.load(second.id as string) as Session
    loaded.filedUnder = 'eve' // the plugin sets userId before every save: the row follows it
    await factory.save(loaded)
    t.same(await factory.sessionsOf('ada'), [], 'destroyed, and re-filed under another user')
    t.same((await factory.sessionsOf('eve')).map((s) => s.id), [second.id])
    t.same(await factory.sessionsOf('nobody'), [])
  })

  t.test('sweep() deletes expired rows in batches of 1,000, at most 10,000 a time, and leaves live ones', async (t) => {
    const { factory, table } = factoryFor(t)
    const live = await factory.save(fresh({ live: true }))
    await pool.query(`INSERT INTO "${table}" (id, data, created_at, touched_at, expires_at) SELECT 'old-' || g, '{}', 0, 0, $1 FROM generate_series(1, 10500) g`, [Date.now() - 1])
    t.equal(await factory.sweep(), 10_000, 'one sweep stops after ten batches')
    t.equal(await factory.sweep(), 500, 'the next takes the rest')
    t.equal(await factory.sweep(), 0)
    t.equal(await countRows(pool, `"${table}"`), 1)
    t.ok(await factory.load(live))
  })

  t.test('the periodic sweep runs every sweepInterval once the factory is used, and close() stops it', async (t) => {
    const { factory, table } = factoryFor(t, { sweepInterval: 1 })
    const expired = await factory.save(fresh({ a: 1 }, { ttlMs: 1 }))
    const live = await factory.save(fresh({ b: 2 }))
    await sleep(1300)
    t.equal(await rowOf(table, expired), undefined, 'the expired row was swept')
    t.ok(await rowOf(table, live), 'the live one stays')
    await factory.close()
    const after = await factory.save(fresh({ c: 3 }, { ttlMs: 1 }))
    await sleep(1300)
    t.ok(await rowOf(table, after), 'no sweep after close(), and the factory did not start a new one')
  })

  t.test('a sweep slower than sweepInterval is not run twice at once, and close() waits for it', async (t) => {
    const { factory, table } = factoryFor(t, { sweepInterval: 1 })
    await factory.save(fresh({ a: 1 }, { ttlMs: 1 }))
    // Another connection holds the table: the sweep's DELETE waits for it, past several intervals.
    const blocker = await pool.connect()
    await blocker.query('BEGIN')
    await blocker.query(`LOCK TABLE "${table}" IN ACCESS EXCLUSIVE MODE`)
    await sleep(3300)
    const { rows } = await pool.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1", [`DELETE FROM "${table}"%`])
    t.equal(rows[0].n, 1, 'three intervals went by: one sweep waits, none was started on top of it')
    let closed = false
    const closing = factory.close().then(() => { closed = true })
    await sleep(100)
    t.equal(closed, false, 'close() waits for the sweep under way')
    await blocker.query('COMMIT')
    blocker.release()
    await closing
    t.equal(await countRows(pool, `"${table}"`), 0, 'the sweep finished its work')
  })

  t.test('a sweep that fails (a pool already ended) is caught: no unhandled rejection, no crash', async (t) => {
    const unhandled: unknown[] = []
    const onUnhandled = (reason: unknown): void => { unhandled.push(reason) }
    process.on('unhandledRejection', onUnhandled)
    t.teardown(() => { process.off('unhandledRejection', onUnhandled) })
    const ended = sharedPool({ max: 1 })
    await ended.end()
    const factory = new PostgresFactory({ pool: ended, table: uniqueName('ended'), sweepInterval: 1 })
    t.teardown(() => factory.close())
    await t.rejects(factory.load('any'), 'the call itself fails, as it must')
    await sleep(2300)
    t.same(unhandled, [], 'two failed sweeps later, nothing escaped')
    await t.rejects(factory.sweep(), 'sweep() called by hand reports its failure')
  })

  t.test('odd keys and values round-trip, though jsonb refuses U+0000 and lone surrogates', async (t) => {
    const { factory, table } = factoryFor(t)
    const odd = {
      '\u0000': 'a NUL key',
      'x\ud800': 'a lone high surrogate in a key',
      '\u001bescaped': 'a key that starts like an escaped one',
      'ok 🍪': 'a pair is fine',
      nul: 'a\u0000b',
      lone: ['\udfff', { '\ud800': 1 }],
      esc: { '\u001b': 'looks like a stored wrapper' },
      literal: '\\u0000 is only text here',
      control: '\u0001\u001f',
      plain: { nested: [1, 'two'] }
    }
    const id = await factory.save(fresh(odd))
    const loaded = await factory.load(id) as Session
    t.same({ ...loaded.data }, odd, 'a new session, stored whole')
    t.same((await rowOf(table, id) as Record<string, any>).data.plain, { nested: [1, 'two'] }, 'a plain value stays plain jsonb, for SQL to read')

    loaded.set('nul', 'c\u0000d').set('\ud801', '\u0000').set('added', 1)
    loaded.delete('\u0000')
    loaded.delete('x\ud800')
    loaded.delete('esc')
    await factory.save(loaded)
    const merged = await factory.load(id) as Session
    const { '\u0000': _a, 'x\ud800': _b, esc: _c, ...rest } = odd
    t.same({ ...merged.data }, { ...rest, nul: 'c\u0000d', '\ud801': '\u0000', added: 1 }, 'the same keys, set and deleted by a merge')
    t.same(Object.keys((await rowOf(table, id) as Record<string, any>).data).length, Object.keys(merged.data).length, 'no stored form was left behind')
  })

  t.test('__proto__, constructor and prototype in stored jsonb never reach a prototype', async (t) => {
    const { factory, table } = factoryFor(t)
    t.equal(await factory.load('polluted'), null, 'the factory made its table')
    await pool.query(`INSERT INTO "${table}" (id, data, created_at, touched_at, expires_at) VALUES ($1, $2::jsonb, $3, $3, $4)`, [
      'polluted',
      '{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}, "prototype": {"polluted": true}, "ok": {"__proto__": {"inner": true}}}',
      Date.now(), Date.now() + 60_000
    ])
    const loaded = await factory.load('polluted') as Session
    t.same(Object.keys(loaded.data), ['ok'], 'the reserved keys were dropped')
    t.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype is clean')
    t.equal(loaded.get('__proto__' as any), undefined)
    const ok = loaded.get('ok') as Record<string, unknown>
    t.equal(Object.getPrototypeOf(ok), Object.prototype, 'a nested "__proto__" did not become a prototype')
    t.equal((ok as { inner?: unknown }).inner, undefined)

    await pool.query(`UPDATE "${table}" SET data = '{"\\u001b\\"__proto__\\"": {"\\u001b": "{\\"polluted\\": true}"}, "ok": 1}' WHERE id = 'polluted'`)
    const escaped = await factory.load('polluted') as Session
    t.same({ ...escaped.data }, { ok: 1 }, 'nor through the escaped-key form')
    t.equal(({} as Record<string, unknown>).polluted, undefined)
  })

  t.test('bad ids: quotes, NUL, lone surrogates, very long ones', async (t) => {
    const { factory, table } = factoryFor(t)
    const quoted = `it's a "quote"; DROP TABLE "${table}"; --`
    await factory.save(fresh({ q: 1 }, { id: quoted }))
    t.same((await factory.load(quoted) as Session).data, { q: 1 }, 'quotes are data: values are parameters')

    t.equal(await factory.load('a\u0000b'), null, 'load of an id with NUL: null, not an error')
    t.equal(await factory.destroy('a\u0000b'), false)
    await t.rejects(factory.save(fresh({}, { id: 'a\u0000b' })), { code: '22021' }, 'a save under such an id is refused by PostgreSQL, cleanly')
    await factory.save(fresh({ replacement: true }, { id: 'x\ufffd' }))
    t.equal(await factory.load('x\ud800'), null, 'a lone surrogate (sent as U+FFFD) does not open another id\'s row')

    const long = 'L'.repeat(2000)
    await factory.save(fresh({ long: true }, { id: long }))
    t.same((await factory.load(long) as Session).data, { long: true }, 'a 2,000-character id works')
    t.equal(await factory.load('L'.repeat(100_000)), null, 'a 100,000-character one is just unknown')
    t.equal(await countRows(pool, `"${table}"`), 3, 'the table is intact')
  })

  t.test('whatever type parsers the app set on its pool (int8 as BigInt, jsonb as text)', async (t) => {
    const parsers = new Map<number, (value: string) => unknown>([[20, BigInt], [3802, (value) => value], [16, (value) => value]])
    const typed = sharedPool({
      max: 2,
      types: { getTypeParser: ((oid: number, format?: any) => parsers.get(oid) ?? pg.types.getTypeParser(oid, format)) as any }
    })
    t.teardown(() => typed.end())
    const table = tableFor(t)
    const factory = new PostgresFactory({ pool: typed, table, createTable: true, sweepInterval: 0 })
    const session = fresh({ a: 1 }, { userId: 'ada' })
    const id = await factory.save(session)
    const loaded = await factory.load(id) as Session
    t.same({ data: { ...loaded.data }, createdAt: loaded.createdAt, expiresAt: loaded.expiresAt }, { data: { a: 1 }, createdAt: session.createdAt, expiresAt: session.expiresAt })
    t.same((await factory.sessionsOf('ada')).map((s) => s.createdAt), [session.createdAt])
  })
}
