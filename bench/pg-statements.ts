// `npx tsx bench/pg-statements.ts`: what one request of the counter route costs each PostgreSQL
// server of the bench (ours, and @fastify/session + connect-pg-simple), counted in pg itself:
// pool checkouts, statements, Parse messages (a statement parsed and planned by the server) and
// round trips (a Sync or a simple query, each waiting for ReadyForQuery). A returning request
// (with the cookie of three earlier ones) and a new one, each on a table of this run's own.
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import pg from 'pg'
import { buildServer } from './apps.js'

const PG_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

interface Counts { checkouts: number, statements: number, parses: number, roundTrips: number }
const counts: Counts = { checkouts: 0, statements: 0, parses: 0, roundTrips: 0 }

function counting<T extends object> (proto: T, method: string, key: keyof Counts): void {
  const original = (proto as Record<string, (...args: unknown[]) => unknown>)[method] as (...args: unknown[]) => unknown
  Object.defineProperty(proto, method, {
    configurable: true,
    writable: true,
    value: function (this: unknown, ...args: unknown[]) {
      counts[key]++
      return original.apply(this, args)
    }
  })
}

const Connection = createRequire(import.meta.url)('pg/lib/connection.js') as { prototype: object }
counting(Connection.prototype, 'parse', 'parses')
counting(Connection.prototype, 'sync', 'roundTrips')
counting(Connection.prototype, 'query', 'roundTrips')
counting(pg.Client.prototype, 'query', 'statements')
counting(pg.Pool.prototype, 'connect', 'checkouts')

function taken (): Counts {
  const copy = { ...counts }
  for (const key of Object.keys(counts) as Array<keyof Counts>) counts[key] = 0
  return copy
}

const rows: Array<Record<string, string | number>> = []
for (const kind of ['ours-postgres', 'peer-session-postgres'] as const) {
  const table = `bench_statements_${kind.replaceAll('-', '_')}_${process.pid}`
  const config = { secret: randomBytes(32).toString('base64url'), sealKey: randomBytes(32).toString('hex'), redisUrl: '', redisPrefix: '', pgUrl: PG_URL, pgTable: table }
  const app = await buildServer(kind, config)
  try {
    const first = await app.inject('/')
    const cookie = String(first.headers['set-cookie']).split(';')[0] as string
    for (let i = 0; i < 3; i++) await app.inject({ url: '/', headers: { cookie } })
    taken()
    await app.inject({ url: '/', headers: { cookie } })
    rows.push({ server: kind, request: 'returning', ...taken() })
    await app.inject('/')
    rows.push({ server: kind, request: 'new', ...taken() })
  } finally {
    await app.close()
    const admin = new pg.Pool({ connectionString: PG_URL })
    await admin.query(`DROP TABLE IF EXISTS "${table}", "${table}_users"`)
    await admin.end()
  }
}
console.table(rows)
// The servers' pools are not ended by app.close(): they belong to apps.ts's servers.
process.exit(0)
