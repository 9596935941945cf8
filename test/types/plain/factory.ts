// Custom factories: the contract is typed, the plugin takes any factory, the kit runs on it.
import Fastify from 'fastify'
import { RedisStore } from 'connect-redis'
import connectPgSimple from 'connect-pg-simple'
import expressSession from 'express-session'
import sessionPlugin, { MemoryFactory, SealedCookieFactory, Session, fromExpressStore, type ExpressStore, type SessionFactory } from 'fastify-session-factory'
import { describe, it } from 'node:test'
import { runFactorySuite, runPluginSuite, type FactorySuiteOptions } from 'fastify-session-factory/testing'
import { expectType } from '../expect.js'

interface Cart {
  items: string[]
}

class MapFactory implements SessionFactory<Cart> {
  readonly rows = new Map<string, string>()

  async load (id: string): Promise<Session<Cart> | null> {
    const row = this.rows.get(id)
    return row === undefined ? null : Session.fromJSON<Cart>(JSON.parse(row))
  }

  async save (session: Session<Cart>): Promise<string> {
    const id = session.id as string
    this.rows.set(id, JSON.stringify(session))
    return id
  }
}

const app = Fastify()
const secret = 'a-secret-of-at-least-thirty-two-characters'
app.register(sessionPlugin, { factory: new MapFactory(), secret })
app.register(sessionPlugin, { factory: new MemoryFactory<Cart>({ maxSessions: 100 }), secret })
runFactorySuite('MapFactory', () => new MapFactory())
runFactorySuite('async make', async () => new MapFactory(), { cleanup: (factory) => { expectType<SessionFactory<any>>()(factory) } } satisfies FactorySuiteOptions)
runFactorySuite('MapFactory', () => new MapFactory(), {
  test: { describe, it },
  groups: { recommended: true, userIndex: false },
  skip: { 'touch-extends': 'no touch()' },
  todo: { 'keeps-expires-at': 'soon' },
  timeout: 5000
})
runPluginSuite('MapFactory', () => new MapFactory(), { test: { describe, it }, stateless: false, skip: { 'secret-rotation': 'one secret' } })
// @ts-expect-error the required group cannot be switched off
runFactorySuite('MapFactory', () => new MapFactory(), { groups: { required: false } })
// @ts-expect-error a name that is no check
runFactorySuite('MapFactory', () => new MapFactory(), { skip: { 'touch-extend': 'typo' } })
// @ts-expect-error the plugin suite's checks have names of their own
runPluginSuite('MapFactory', () => new MapFactory(), { todo: { 'touch-extends': 'wrong suite' } })
// A runner of another shape fits with a small adapter (mocha's it takes no options).
const mochaLike = { describe: (_name: string, fn: () => void) => { fn() }, it: (_name: string, fn: () => Promise<void>) => { fn().catch(() => {}) } }
runFactorySuite('MapFactory', () => new MapFactory(), { test: { describe: mochaLike.describe, it: (name, options, fn) => { if (options.skip === false) mochaLike.it(name, fn) } } })

// @ts-expect-error save resolves to the id, a string
export const badSave: SessionFactory = { load: async () => null, save: async () => 42 }
// @ts-expect-error load resolves to a Session or null
export const badLoad: SessionFactory = { load: async () => ({ id: 'x' }), save: async () => 'x' }
// Every method may answer at once: a synchronous store needs no promise.
export const syncFactory: SessionFactory = { capabilities: { destroyReports: true, userIndex: true }, load: () => null, save: (session) => session.id ?? 'x', destroy: () => true, sessionsOf: () => [] }
// @ts-expect-error destroy answers whether it removed a record, or nothing
export const badDestroy: SessionFactory = { load: () => null, save: () => 'x', destroy: () => 'yes' }

// Any express-session store fits fromExpressStore, whatever its own typings.
const redisStore = fromExpressStore(new RedisStore({ client: null }))
const pgStore = fromExpressStore<Cart>(new (connectPgSimple(expressSession))({ tableName: 'session' }))
const memoryStore = fromExpressStore(new expressSession.MemoryStore())
expectType<SessionFactory>()(redisStore)
expectType<SessionFactory<Cart>>()(pgStore)
app.register(sessionPlugin, { factory: memoryStore, secret })
const handMade: ExpressStore = {
  get (_sid, callback) { callback(null, null) },
  set (_sid, _session, callback) { callback() },
  destroy (_sid, callback) { callback() }
}
fromExpressStore(handMade)
// @ts-expect-error a store needs destroy
fromExpressStore({ get (_sid: string, callback: () => void) { callback() }, set (_sid: string, _s: unknown, callback: () => void) { callback() } })

// The sealed factory takes sodium-native as @types/sodium-native types it, and nothing else in its place.
{
  const sodium = await import('sodium-native')
  expectType<SealedCookieFactory>()(new SealedCookieFactory({ keys: 'a'.repeat(43), sodium }))
  // @ts-expect-error: an object without the two XChaCha20-Poly1305 functions
  expectType<SealedCookieFactory>()(new SealedCookieFactory({ keys: 'a'.repeat(43), sodium: { crypto_secretbox_easy: () => {} } }))
}
