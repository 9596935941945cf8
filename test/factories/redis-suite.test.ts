// The conformance suites on RedisFactory, against the Redis at 127.0.0.1:6379.
import t from 'tap'
import type { Redis } from 'ioredis'
import { RedisFactory, type SessionFactory } from '../../src/index.js'
import { runFactorySuite, runPluginSuite } from '../../src/testing.js'
import { keysUnder, randomPrefix, removeKeys, sharedClient, sharedRedisSkipReason } from '../helpers/redis.js'
import { tapRunner } from '../helpers/suite-runners.js'

const skip = await sharedRedisSkipReason()

if (skip !== null) {
  t.test('RedisFactory conformance on 127.0.0.1:6379', { skip }, () => {})
} else {
  // Each check gets its own prefix under this file's, and removes its keys afterwards.
  const base = randomPrefix()
  const prefixes = new WeakMap<SessionFactory<any>, string>()
  const client: Redis = await sharedClient()
  let made = 0
  t.teardown(() => client.quit())

  const make = (): RedisFactory => {
    const prefix = `${base}${made++}:`
    const factory = new RedisFactory({ client, prefix })
    prefixes.set(factory, prefix)
    return factory
  }
  const cleanup = (factory: SessionFactory<any>): Promise<void> => removeKeys(client, prefixes.get(factory) as string)

  runFactorySuite('RedisFactory', make, { test: tapRunner(), cleanup })
  runPluginSuite('RedisFactory', make, { test: tapRunner(), cleanup })

  t.test('the suites left no key behind', async (t) => {
    t.ok(made > 0)
    t.same(await keysUnder(client, base), [])
  })
}
