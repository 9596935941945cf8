// One store shared by several app instances, as a fleet shares its Redis or PostgreSQL: each
// call of `instance()` is another factory (another client or pool, as another process would
// have) on the same key prefix or table. Memory has no second process: its instances share one
// MemoryFactory. Everything is removed when the test ends; an unreachable server skips (under
// CI=true it fails the run).
import type pg from 'pg'
import { MemoryFactory, PostgresFactory, RedisFactory, type SessionFactory } from '../../src/index.js'
import { sharedPool, sharedPostgresSkipReason, uniqueName } from './postgres.js'
import { randomPrefix, removeKeys, sharedClient, sharedRedisSkipReason, type TapTest } from './redis.js'

export interface SharedStore {
  name: string
  skip: string | false
  /** A store for this test; `instance()` gives the factory of one more app instance on it. */
  open (t: TapTest): Promise<{ instance: () => Promise<SessionFactory<any>> }>
}

const redisSkip = await sharedRedisSkipReason()
const postgresSkip = await sharedPostgresSkipReason()

export const sharedStores: SharedStore[] = [
  {
    name: 'memory',
    skip: false,
    async open () {
      const factory = new MemoryFactory()
      return { instance: async () => factory }
    }
  },
  {
    name: 'redis',
    skip: redisSkip ?? false,
    async open (t) {
      const prefix = randomPrefix()
      const clients: Array<Awaited<ReturnType<typeof sharedClient>>> = []
      t.teardown(async () => {
        if (clients[0] !== undefined) await removeKeys(clients[0], prefix)
        for (const client of clients) await client.quit()
      })
      return {
        async instance () {
          const client = await sharedClient()
          clients.push(client)
          return new RedisFactory({ client, prefix })
        }
      }
    }
  },
  {
    name: 'postgres',
    skip: postgresSkip ?? false,
    async open (t) {
      const table = uniqueName('cap')
      const pools: pg.Pool[] = []
      t.teardown(async () => {
        const pool = sharedPool()
        await pool.query(`DROP TABLE IF EXISTS "${table}", "${table}_users"`)
        await pool.end()
        for (const each of pools) await each.end()
      })
      return {
        async instance () {
          const pool = sharedPool()
          pools.push(pool)
          const factory = new PostgresFactory({ pool, table, createTable: true, sweepInterval: 0 })
          // The table exists before a second instance starts, as in a deployment.
          await factory.sessionsOf('nobody')
          return factory
        }
      }
    }
  }
]
