// The conformance suite on PostgresFactory, against the PostgreSQL at 127.0.0.1:5432: each check
// gets a table of its own (made by createTable), dropped afterwards.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import type pg from 'pg'
import { PostgresFactory, type SessionFactory } from '../../src/index.js'
import { runFactorySuite } from '../../src/testing.js'
import { sharedPool, sharedPostgresSkipReason, uniqueName } from '../helpers/postgres.js'

const skip = await sharedPostgresSkipReason()

if (skip !== null) {
  test('PostgresFactory conformance on 127.0.0.1:5432', { skip }, () => {})
} else {
  const tables = new WeakMap<SessionFactory<any>, string>()
  const made: string[] = []
  let pool: pg.Pool

  before(() => {
    pool = sharedPool()
  })
  after(async () => {
    await pool.end()
  })

  runFactorySuite('PostgresFactory', () => {
    const table = uniqueName('suite')
    const factory = new PostgresFactory({ pool, table, createTable: true })
    tables.set(factory, table)
    made.push(table)
    return factory
  }, {
    cleanup: async (factory) => {
      await pool.query(`DROP TABLE IF EXISTS "${tables.get(factory) as string}", "${tables.get(factory) as string}_users"`)
    }
  })

  test('the suite left no table behind', async () => {
    assert.ok(made.length > 0)
    const { rows } = await pool.query('SELECT count(*)::int AS n FROM pg_tables WHERE tablename = ANY($1)', [made])
    assert.equal(rows[0].n, 0)
  })
}
