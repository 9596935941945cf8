// The conformance suite on RedisFactory, against the Redis at 127.0.0.1:6379.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import type { Redis } from 'ioredis'
import { RedisFactory, type SessionFactory } from '../../src/index.js'
import { runFactorySuite } from '../../src/testing.js'
import { keysUnder, randomPrefix, removeKeys, sharedClient, sharedRedisSkipReason } from '../helpers/redis.js'

const skip = await sharedRedisSkipReason()

if (skip !== null) {
  test('RedisFactory conformance on 127.0.0.1:6379', { skip }, () => {})
} else {
  // Each check gets its own prefix under this file's, and removes its keys afterwards.
  const base = randomPrefix()
  const prefixes = new WeakMap<SessionFactory<any>, string>()
  let client: Redis
  let made = 0

  before(async () => {
    client = await sharedClient()
  })
  after(async () => {
    await client.quit()
  })

  runFactorySuite('RedisFactory', () => {
    const prefix = `${base}${made++}:`
    const factory = new RedisFactory({ client, prefix })
    prefixes.set(factory, prefix)
    return factory
  }, {
    cleanup: (factory) => removeKeys(client, prefixes.get(factory) as string)
  })

  test('the suite left no key behind', async () => {
    assert.ok(made > 0)
    assert.deepEqual(await keysUnder(client, base), [])
  })
}
