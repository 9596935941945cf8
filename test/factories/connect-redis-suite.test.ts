// connect-redis 9 (on the `redis` client) through fromExpressStore, against the local Redis.
import t from 'tap'
import { RedisStore } from 'connect-redis'
import { fromExpressStore, type SessionFactory } from '../../src/index.js'
import { runFactorySuite, runPluginSuite } from '../../src/testing.js'
import { connectRedis, deleteKeys, uniqueName } from '../helpers/express-stores.js'
import { EXPRESS_STORE_SKIPS, tapRunner } from '../helpers/suite-runners.js'

const client = await connectRedis()
if (typeof client === 'string') {
  t.test('connect-redis conformance', { skip: client }, () => {})
} else {
  t.teardown(() => client.quit())
  const prefixes = new WeakMap<object, string>()
  const make = (): SessionFactory => {
    const prefix = `${uniqueName('fsf-test')}:`
    const factory = fromExpressStore(new RedisStore({ client, prefix }))
    prefixes.set(factory, prefix)
    return factory
  }
  const cleanup = (factory: object): Promise<void> => deleteKeys(client, prefixes.get(factory) as string)
  runFactorySuite('fromExpressStore(connect-redis)', make, {
    test: tapRunner(),
    cleanup,
    groups: { userIndex: false },
    skip: EXPRESS_STORE_SKIPS
  })
  runPluginSuite('fromExpressStore(connect-redis)', make, { test: tapRunner(), cleanup })
}
