import { MemoryFactory, type SessionFactory } from '../../src/index.js'

/** One built-in factory as the hardening tests run it. */
export interface FactoryUnderTest {
  name: string
  make: () => SessionFactory<any> | Promise<SessionFactory<any>>
  /** The id is the sealed session itself: nothing to revoke, no shared record (model test skips it). */
  stateless?: boolean
  /** Runs after the test with the factory it made, before `close()` (drop Redis keys, say). */
  cleanup?: (factory: SessionFactory<any>) => Promise<void> | void
}

/**
 * Every built-in factory the property, cache, socket and load tests run against.
 * MERGE POINT: the lead adds RedisFactory (random key prefix, cleanup drops it; CI=true fails
 * loudly without Redis) and SealedCookieFactory (`stateless: true`) here once their branches land.
 */
export const factoriesUnderTest: FactoryUnderTest[] = [
  { name: 'MemoryFactory', make: () => new MemoryFactory() }
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
