// The conformance suites on RedisFactory through an ioredis Cluster client, against a 3-master
// Redis Cluster this file starts on ports of its own and tears down at the end.
import { once } from 'node:events'
import t from 'tap'
import { Cluster } from 'ioredis'
import { RedisFactory, Session, type SessionFactory } from '../../src/index.js'
import { runFactorySuite, runPluginSuite } from '../../src/testing.js'
import { RECOMMENDED, RedisCluster, binariesSkipReason, keysUnder, randomPrefix, removeKeys } from '../helpers/redis.js'
import { tapRunner } from '../helpers/suite-runners.js'

const skip = binariesSkipReason('redis-server', 'redis-cli')

if (skip !== null) {
  t.test('RedisFactory conformance on Redis Cluster', { skip }, () => {})
} else {
  const base = randomPrefix()
  const prefixes = new WeakMap<SessionFactory<any>, string>()
  let servers: RedisCluster
  let client: Cluster
  let made = 0

  t.before(async () => {
    servers = await RedisCluster.start()
    client = new Cluster(servers.nodes, {
      enableOfflineQueue: false,
      redisOptions: { maxRetriesPerRequest: RECOMMENDED.maxRetriesPerRequest }
    })
    await once(client, 'ready')
  })
  t.teardown(async () => {
    await client?.quit()
    await servers?.stop()
  })

  const make = (): RedisFactory => {
    const prefix = `${base}${made++}:`
    const factory = new RedisFactory({ client, prefix })
    prefixes.set(factory, prefix)
    return factory
  }
  const cleanup = (factory: SessionFactory<any>): Promise<void> => removeKeys(client, prefixes.get(factory) as string)
  runFactorySuite('RedisFactory on a 3-master Redis Cluster', make, { test: tapRunner(), cleanup })
  runPluginSuite('RedisFactory on a 3-master Redis Cluster', make, { test: tapRunner(), cleanup })

  t.test('sessions were spread over all three masters, and none is left', async (t) => {
    const factory = new RedisFactory({ client, prefix: base })
    const ids: string[] = []
    for (let i = 0; i < 30; i++) {
      const session = new Session({ n: i }, null)
      session.expiresAt = Date.now() + 60_000
      ids.push(await factory.save(session))
    }
    const perMaster = await Promise.all(client.nodes('master').map((node) => node.dbsize()))
    t.equal(perMaster.length, 3)
    t.ok(perMaster.every((count) => count > 0), 'each master holds some sessions')
    for (const id of ids) await factory.destroy(id)
    t.same(await keysUnder(client, base), [])
  })
}
