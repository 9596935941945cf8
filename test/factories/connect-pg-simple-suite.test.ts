// connect-pg-simple 10 (on `pg`) through fromExpressStore, against the local PostgreSQL.
import { after, before, test } from 'node:test'
import connectPgSimple from 'connect-pg-simple'
import { fromExpressStore } from '../../src/index.js'
import { runFactorySuite } from '../../src/testing.js'
import { connectPostgres, createSessionTable, expressSession, uniqueName } from '../helpers/express-stores.js'

const pool = await connectPostgres()
if (typeof pool === 'string') {
  test('connect-pg-simple conformance', { skip: pool }, () => {})
} else {
  const PGStore = connectPgSimple(expressSession)
  const tableName = uniqueName('fsf_session')
  let dropTable = async (): Promise<void> => {}
  before(async () => {
    dropTable = await createSessionTable(pool, tableName)
  })
  after(async () => {
    await dropTable()
    await pool.end()
  })
  runFactorySuite('fromExpressStore(connect-pg-simple)', () => fromExpressStore(new PGStore({ pool, tableName, pruneSessionInterval: false })))
}
