// connect-pg-simple 10 (on `pg`) through fromExpressStore, against the local PostgreSQL.
import t from 'tap'
import connectPgSimple from 'connect-pg-simple'
import { fromExpressStore, type SessionFactory } from '../../src/index.js'
import { runFactorySuite, runPluginSuite } from '../../src/testing.js'
import { connectPostgres, createSessionTable, expressSession, uniqueName } from '../helpers/express-stores.js'
import { EXPRESS_STORE_SKIPS, tapRunner } from '../helpers/suite-runners.js'

const pool = await connectPostgres()
if (typeof pool === 'string') {
  t.test('connect-pg-simple conformance', { skip: pool }, () => {})
} else {
  const PGStore = connectPgSimple(expressSession)
  const tableName = uniqueName('fsf_session')
  let dropTable = async (): Promise<void> => {}
  t.before(async () => {
    dropTable = await createSessionTable(pool, tableName)
  })
  t.teardown(async () => {
    await dropTable()
    await pool.end()
  })
  const make = (): SessionFactory => fromExpressStore(new PGStore({ pool, tableName, pruneSessionInterval: false }))
  runFactorySuite('fromExpressStore(connect-pg-simple)', make, { test: tapRunner(), groups: { userIndex: false }, skip: EXPRESS_STORE_SKIPS })
  runPluginSuite('fromExpressStore(connect-pg-simple)', make, { test: tapRunner() })
}
