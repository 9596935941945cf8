// The factories with a user index, each on its real store, for the sign-out-everywhere tests:
// MemoryFactory, RedisFactory on the shared Redis and on a 3-master Redis Cluster of the file's
// own, PostgresFactory on the shared PostgreSQL. Each factory made gets a key prefix or a table
// of its own, removed when the test ends.
import { once } from 'node:events'
import { Cluster, type Redis } from 'ioredis'
import type pg from 'pg'
import { MemoryFactory, PostgresFactory, RedisFactory, type SessionFactory } from '../../src/index.js'
import { sharedPool, sharedPostgresSkipReason, uniqueName } from './postgres.js'
import { RECOMMENDED, RedisCluster, binariesSkipReason, randomPrefix, removeKeys, sharedClient, sharedRedisSkipReason, type TapTest } from './redis.js'

export interface IndexStore {
  name: string
  /** Why this store's tests are skipped here, if they are. */
  skip: string | false
  /** A factory on a fresh prefix or table, cleaned up when `t` ends. */
  make (t: TapTest): Promise<SessionFactory<any>>
}

const redisSkip = await sharedRedisSkipReason()
const postgresSkip = await sharedPostgresSkipReason()
const clusterSkip = binariesSkipReason('redis-server', 'redis-cli')

let cluster: { servers: RedisCluster, client: Cluster } | null = null

/** The cluster, started on first use; `stopCluster` (a teardown of the file) stops it. */
async function clusterClient (): Promise<Cluster> {
  if (cluster === null) {
    const servers = await RedisCluster.start()
    const client = new Cluster(servers.nodes, { enableOfflineQueue: false, redisOptions: { maxRetriesPerRequest: RECOMMENDED.maxRetriesPerRequest } })
    await once(client, 'ready')
    cluster = { servers, client }
  }
  return cluster.client
}

export async function stopCluster (): Promise<void> {
  if (cluster === null) return
  await cluster.client.quit()
  await cluster.servers.stop()
  cluster = null
}

async function redisFactory (t: TapTest, client: Redis | Cluster, quit: boolean): Promise<SessionFactory<any>> {
  const prefix = randomPrefix()
  t.teardown(async () => {
    await removeKeys(client, prefix)
    if (quit) await client.quit()
  })
  return new RedisFactory({ client, prefix })
}

export const indexStores: IndexStore[] = [
  { name: 'memory', skip: false, make: async () => new MemoryFactory() },
  { name: 'redis', skip: redisSkip ?? false, make: async (t) => redisFactory(t, await sharedClient(), true) },
  { name: 'redis-cluster', skip: clusterSkip ?? false, make: async (t) => redisFactory(t, await clusterClient(), false) },
  {
    name: 'postgres',
    skip: postgresSkip ?? false,
    async make (t) {
      const table = uniqueName('race')
      const pool: pg.Pool = sharedPool()
      t.teardown(async () => {
        await pool.query(`DROP TABLE IF EXISTS "${table}", "${table}_users"`)
        await pool.end()
      })
      return new PostgresFactory({ pool, table, createTable: true, sweepInterval: 0 })
    }
  }
]
