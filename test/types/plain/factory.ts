// Custom factories: the contract is typed, the plugin takes any factory, the kit runs on it.
import Fastify from 'fastify'
import { RedisStore } from 'connect-redis'
import connectPgSimple from 'connect-pg-simple'
import expressSession from 'express-session'
import sessionPlugin, { MemoryFactory, Session, fromExpressStore, type ExpressStore, type SessionFactory } from 'fastify-session-factory'
import { runFactorySuite, type FactorySuiteOptions } from 'fastify-session-factory/testing'
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

// @ts-expect-error save resolves to the id, a string
export const badSave: SessionFactory = { load: async () => null, save: async () => 42 }
// @ts-expect-error load resolves to a Session or null
export const badLoad: SessionFactory = { load: async () => ({ id: 'x' }), save: async () => 'x' }
// @ts-expect-error the contract is promise-based
export const syncLoad: SessionFactory = { load: () => null, save: async () => 'x' }

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
