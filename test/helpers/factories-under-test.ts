import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import { MemoryFactory, RedisFactory, SealedCookieFactory, type SessionFactory } from '../../src/index.js'
import { randomPrefix, removeKeys, sharedClient, sharedRedisSkipReason } from './redis.js'

/** One built-in factory as the hardening tests run it. */
export interface FactoryUnderTest {
  name: string
  make: () => SessionFactory<any> | Promise<SessionFactory<any>>
  /** The id is the sealed session itself: nothing to revoke, no shared record (model test skips it). */
  stateless?: boolean
  /** Runs after the test with the factory it made, before `close()` (drop Redis keys, say). */
  cleanup?: (factory: SessionFactory<any>) => Promise<void> | void
  /** Why this factory's tests are skipped here (Redis unreachable outside CI), if they are. */
  skip?: string
}

// Each Redis factory has a client and a key prefix of its own, both gone after cleanup.
const redisOf = new WeakMap<SessionFactory<any>, { client: Redis, prefix: string }>()
// Under CI=true an unreachable Redis throws here, failing every file that imports this one.
const redisSkip = await sharedRedisSkipReason()

/** Every built-in factory the property, cache, socket and load tests run against. */
export const factoriesUnderTest: FactoryUnderTest[] = [
  { name: 'MemoryFactory', make: () => new MemoryFactory() },
  {
    name: 'RedisFactory',
    async make () {
      const client = await sharedClient()
      const prefix = randomPrefix()
      const factory = new RedisFactory({ client, prefix })
      redisOf.set(factory, { client, prefix })
      return factory
    },
    async cleanup (factory) {
      const redis = redisOf.get(factory) as { client: Redis, prefix: string }
      await removeKeys(redis.client, redis.prefix)
      await redis.client.quit()
    },
    ...(redisSkip === null ? {} : { skip: redisSkip })
  },
  { name: 'SealedCookieFactory', make: () => new SealedCookieFactory({ keys: randomBytes(32) }), stateless: true }
]

/** The factories that keep server-side state: the model test's replay expectations need one. */
export const statefulFactories = factoriesUnderTest.filter((f) => f.stateless !== true)

export interface WrapOptions {
  /** Sees every call before the factory does (the argument is an id or the Session). */
  onCall?: (method: 'load' | 'save' | 'destroy' | 'touch', arg: unknown) => void
  /** Leave `close()` out, so the store outlives an app (a restart, a secret rotation). */
  keepOpen?: boolean
}

/** The same factory with a spy in front; optional methods stay absent when the inner one lacks them. */
export function wrapFactory (inner: SessionFactory<any>, options: WrapOptions = {}): SessionFactory<any> {
  const onCall = options.onCall ?? (() => {})
  const wrapped: SessionFactory<any> = {
    // What the inner factory declared, but a user index: the wrapper has no sessionsOf.
    capabilities: { ...inner.capabilities, userIndex: false },
    load: (id) => { onCall('load', id); return inner.load(id) },
    save: (session) => { onCall('save', session); return inner.save(session) }
  }
  if (inner.destroy !== undefined) wrapped.destroy = (id) => { onCall('destroy', id); return inner.destroy!(id) }
  if (inner.touch !== undefined) wrapped.touch = (session) => { onCall('touch', session); return inner.touch!(session) }
  if (inner.close !== undefined && options.keepOpen !== true) wrapped.close = () => inner.close!()
  return wrapped
}

/** Makes the factory, and returns it with a `dispose()` that runs cleanup then close. */
export async function useFactory (under: FactoryUnderTest): Promise<{ factory: SessionFactory<any>, dispose: () => Promise<void> }> {
  const factory = await under.make()
  return {
    factory,
    async dispose () {
      await under.cleanup?.(factory)
      await factory.close?.()
    }
  }
}
