// Real servers for the express-session store tests: Redis through the `redis` client (what
// connect-redis 9 expects) and PostgreSQL through `pg` (what connect-pg-simple expects).
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import type ExpressSession from 'express-session'
import pg from 'pg'
import { createClient } from 'redis'

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
export const PG_CONFIG = {
  host: process.env.PGHOST ?? '127.0.0.1',
  port: Number(process.env.PGPORT ?? 5432),
  user: process.env.PGUSER ?? 'postgres',
  database: process.env.PGDATABASE ?? 'test'
}

export type RedisClient = ReturnType<typeof createClient>

const require = createRequire(import.meta.url)

/** express-session itself: connect-pg-simple is built from its `Store`, connect-redis imports it. */
export const expressSession = require('express-session') as typeof ExpressSession

/** A prefix or table name no other test run uses. */
export function uniqueName (label: string): string {
  return `${label}_${randomBytes(6).toString('hex')}`
}

/** Why a service test cannot run here; under CI=true a missing service is a failure instead. */
function unreachable (service: string, error: unknown): string {
  const reason = `${service} unreachable (${(error as Error).message}): start it to run these tests`
  if (process.env.CI === 'true') throw new Error(reason)
  return reason
}

/** A connected client, or the reason to skip. */
export async function connectRedis (): Promise<RedisClient | string> {
  const client = createClient({ url: REDIS_URL, socket: { connectTimeout: 2_000, reconnectStrategy: false } })
  client.on('error', () => {}) // a failed connect rejects connect() below; later errors reach the store's callbacks
  try {
    await client.connect()
    return client
  } catch (error) {
    return unreachable(`Redis at ${REDIS_URL}`, error)
  }
}

/** Deletes every key under `prefix`. */
export async function deleteKeys (client: RedisClient, prefix: string): Promise<void> {
  const keys: string[] = []
  for await (const batch of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 100 })) keys.push(...batch)
  if (keys.length > 0) await client.del(keys)
}

/** A pool on the test database (user postgres, or root where that is the superuser), or the reason to skip. */
export async function connectPostgres (): Promise<pg.Pool | string> {
  let lastError: unknown
  for (const user of [PG_CONFIG.user, 'root']) {
    const pool = new pg.Pool({ ...PG_CONFIG, user, max: 4, connectionTimeoutMillis: 2_000 })
    pool.on('error', () => {}) // idle-client errors surface in the next query instead
    try {
      await pool.query('SELECT 1')
      return pool
    } catch (error) {
      lastError = error
      await pool.end()
    }
  }
  return unreachable(`PostgreSQL at ${PG_CONFIG.host}:${PG_CONFIG.port}/${PG_CONFIG.database}`, lastError)
}

/** Creates connect-pg-simple's table (its own table.sql, under another name); returns a drop function. */
export async function createSessionTable (pool: pg.Pool, table: string): Promise<() => Promise<void>> {
  const { readFile } = await import('node:fs/promises')
  const sql = await readFile(require.resolve('connect-pg-simple/table.sql'), 'utf8')
  await pool.query(sql.replaceAll('"session"', `"${table}"`).replaceAll('"session_pkey"', `"${table}_pkey"`).replaceAll('"IDX_session_expire"', `"${table}_expire"`))
  return async () => {
    await pool.query(`DROP TABLE IF EXISTS "${table}"`)
  }
}
