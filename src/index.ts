import fp from 'fastify-plugin'
import { plugin } from './plugin.js'

/** Server-side sessions: a signed cookie carries the id, a factory loads and saves the session. */
export const sessionPlugin = fp(plugin, {
  fastify: '5.x',
  name: 'fastify-session-factory'
})

export default sessionPlugin
export { Session } from './session.js'
export type { SessionData, SessionRecord, SessionTypes } from './session.js'
export type { DataError, Migrate } from './data-schema.js'
export type { FactoryCallContext, FactoryMethod } from './guard.js'
export type { SessionFactory, FactoryCapabilities, MaybePromise, IndexedSession } from './factory.js'
export { generateId } from './id.js'
export { optionsSchema } from './options.js'
export type { SessionPluginOptions } from './options.js'
export { errors } from './errors.js'
export { Sessions } from './sessions.js'
export { LoadedUsers } from './user.js'
export type { UserFiling, UserKey } from './user.js'
export type { UserSession, WithCookieHeader } from './sessions.js'
export { MemoryFactory } from './factories/memory.js'
export type { MemoryFactoryOptions } from './factories/memory.js'
export { RedisFactory } from './factories/redis.js'
export type { RedisFactoryOptions, RedisClientLike, RedisPipelineLike } from './factories/redis.js'
export { PostgresFactory } from './factories/postgres.js'
export type { PostgresFactoryOptions, PostgresPoolLike, PostgresStatement } from './factories/postgres.js'
export { SealedCookieFactory } from './factories/sealed-cookie.js'
export type { SealedCookieFactoryOptions, SealedCookieKey, SealedCookieSodium } from './factories/sealed-cookie.js'
export { fromExpressStore } from './factories/express-store.js'
export type { ExpressStore, ExpressStoreCookie, ExpressStoreRecord } from './factories/express-store.js'
