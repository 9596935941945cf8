// connect-redis 9 (on the `redis` client) through fromExpressStore, against the local Redis.
import { after, test } from 'node:test'
import { RedisStore } from 'connect-redis'
import { fromExpressStore } from '../../src/index.js'
import { runFactorySuite } from '../../src/testing.js'
import { connectRedis, deleteKeys, uniqueName } from '../helpers/express-stores.js'

const client = await connectRedis()
if (typeof client === 'string') {
  test('connect-redis conformance', { skip: client }, () => {})
} else {
  after(() => client.quit())
  const prefixes = new WeakMap<object, string>()
  runFactorySuite('fromExpressStore(connect-redis)', () => {
    const prefix = `${uniqueName('fsf-test')}:`
    const factory = fromExpressStore(new RedisStore({ client, prefix }))
    prefixes.set(factory, prefix)
    return factory
  }, { cleanup: (factory) => deleteKeys(client, prefixes.get(factory) as string) })
}
