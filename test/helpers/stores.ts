// Memory, Redis and PostgreSQL as the feature tests run them: one factory per test, on a key
// prefix or a table of its own that is gone when the test ends. Real servers, no mocks; an
// unreachable one skips its tests (under CI=true it fails the run).
import { MemoryFactory, PostgresFactory, RedisFactory, type SessionFactory } from '../../src/index.js'
import { sharedPool, sharedPostgresSkipReason, uniqueName } from './postgres.js'
import { cleaningClient, randomPrefix, sharedRedisSkipReason, type TapTest } from './redis.js'

export interface StoreUnderTest {
  name: string
  /** Why this store's tests are skipped here, or false. */
  skip: string | false
  /** A factory for this test; several calls in one test share the same store (two releases of an app, say). */
  factory (t: TapTest): Promise<SessionFactory<any>>
}

const redisSkip = await sharedRedisSkipReason()
const postgresSkip = await sharedPostgresSkipReason()

/** One store per test: the first factory() call makes it, later calls in the same test share it. */
function perTest (make: (t: TapTest) => Promise<() => SessionFactory<any>>): (t: TapTest) => Promise<SessionFactory<any>> {
  const made = new WeakMap<TapTest, Promise<() => SessionFactory<any>>>()
  return async (t) => {
    let factoryOf = made.get(t)
    if (factoryOf === undefined) {
      factoryOf = make(t)
      made.set(t, factoryOf)
    }
    return (await factoryOf)()
  }
}

export const storesUnderTest: StoreUnderTest[] = [
  {
    name: 'MemoryFactory',
    skip: false,
    factory: perTest(async () => {
      const factory = new MemoryFactory()
      return () => factory
    })
  },
  {
    name: 'RedisFactory',
    skip: redisSkip ?? false,
    factory: perTest(async (t) => {
      const prefix = randomPrefix()
      const client = await cleaningClient(t, prefix)
      return () => new RedisFactory({ client, prefix })
    })
  },
  {
    name: 'PostgresFactory',
    skip: postgresSkip ?? false,
    factory: perTest(async (t) => {
      const pool = sharedPool()
      const table = uniqueName('feature')
      t.teardown(async () => {
        await pool.query(`DROP TABLE IF EXISTS "${table}", "${table}_users"`)
        await pool.end()
      })
      return () => new PostgresFactory({ pool, table, createTable: true, sweepInterval: 0 })
    })
  }
]
