import { promisify } from 'node:util'
import { CorruptRecord, InvalidOptions, StoreReservedKey } from '../errors.js'
import type { SessionFactory } from '../factory.js'
import { generateId } from '../options.js'
import { Session, readTimestamp, type SessionData } from '../session.js'

/**
 * An express-session compatible store: `connect-redis`, `connect-pg-simple`, express-session's
 * `MemoryStore`... Only the callback methods below are used; a store's `touch` is not (see
 * `fromExpressStore`).
 */
export interface ExpressStore {
  get (sid: string, callback: (error: unknown, session?: unknown) => void): unknown
  set (sid: string, session: unknown, callback: (error?: unknown) => void): unknown
  destroy (sid: string, callback: (error?: unknown) => void): unknown
}

/** What we keep in the record's `cookie` object, where express-session keeps its own metadata. */
export interface ExpressStoreCookie {
  /** express-session's persistent-cookie lifetime; always null: our cookie options stay in the plugin. */
  originalMaxAge: null
  /** `session.expiresAt`: every connect-* store derives its TTL from it. */
  expires: Date | null
  /** `session.createdAt` and `session.touchedAt`, epoch ms. */
  createdAt: number
  touchedAt: number
  /** Milliseconds left, for the stores that read `cookie.maxAge` as express-session's Cookie offers it. */
  readonly maxAge: number | null
}

/** The object handed to `store.set()`: express-session's shape, data keys beside `cookie`. */
export interface ExpressStoreRecord {
  cookie: ExpressStoreCookie
  [key: string]: unknown
}

// express-session keeps its metadata under this key.
const COOKIE = 'cookie'

class StoreCookie implements ExpressStoreCookie {
  readonly originalMaxAge = null
  readonly expires: Date | null
  readonly createdAt: number
  readonly touchedAt: number

  constructor (session: Session<any>) {
    this.expires = session.expiresAt === null ? null : new Date(session.expiresAt)
    this.createdAt = session.createdAt
    this.touchedAt = session.touchedAt
  }

  // A getter on the prototype: stores can read it, JSON does not write it (as with express-session).
  get maxAge (): number | null {
    return this.expires === null ? null : this.expires.getTime() - Date.now()
  }
}

interface StoredSession {
  data: Record<string, unknown>
  createdAt: number
  touchedAt: number
  expiresAt: number | null
  /** Written by express-session or @fastify/session, without our clocks: they start now. */
  foreign: boolean
}

/** What a record found in the store is: a live session, or one to destroy. */
type Found = StoredSession | 'expired'

// A BIGINT column, or a store that writes epoch ms as text; `Date.parse('1')` is the year 2001.
const NUMERIC = /^-?\d+(?:\.\d+)?$/

/** `cookie.expires` as epoch ms: null for none; a date that cannot be read is a corrupt record. */
function readExpires (value: unknown): number | null {
  if (value === null || value === undefined) return null
  if (value instanceof Date || (typeof value === 'string' && !NUMERIC.test(value))) {
    const ms = new Date(value).getTime()
    if (Number.isNaN(ms)) throw new CorruptRecord('its cookie.expires is not a date')
    return ms
  }
  return readTimestamp(value, 'cookie.expires')
}

/**
 * Reads a record in express-session's shape; null for none. Timestamps fail closed as in
 * `Session.fromJSON`: one that is missing makes the record expired, one present but unreadable
 * makes it corrupt. Only a record with neither of our clocks (express-session's) starts them now.
 */
function readRecord (record: unknown, now: number): Found | null {
  if (record === null || record === undefined) return null
  // Another writer, or a serializer that does not match the store's: say so, as RedisFactory does.
  if (typeof record !== 'object' || Array.isArray(record)) {
    throw new CorruptRecord(`the store returned ${Array.isArray(record) ? 'an array' : `a ${typeof record}`}, not an express-session object`)
  }
  const fields = record as Record<string, unknown>
  const stored = fields[COOKIE]
  const cookie = (typeof stored === 'object' && stored !== null ? stored : {}) as Record<string, unknown>
  const expiresAt = readExpires(cookie.expires)
  if (expiresAt !== null && expiresAt <= now) return 'expired'
  const foreign = cookie === stored && cookie.createdAt === undefined && cookie.touchedAt === undefined
  const createdAt = foreign ? now : readTimestamp(cookie.createdAt, 'cookie.createdAt')
  const touchedAt = foreign ? now : readTimestamp(cookie.touchedAt, 'cookie.touchedAt')
  if (Number.isNaN(createdAt) || Number.isNaN(touchedAt)) return 'expired'
  // No prototype, so a "__proto__" key is a plain property until the Session constructor drops it.
  const data: Record<string, unknown> = Object.create(null)
  for (const key of Object.keys(fields)) {
    if (key !== COOKIE) data[key] = fields[key]
  }
  return { data, createdAt, touchedAt, expiresAt, foreign }
}

function buildRecord (session: Session<any>, data: Record<string, unknown>): ExpressStoreRecord {
  return { cookie: new StoreCookie(session), ...data }
}

function checkKeys (keys: Iterable<string>): void {
  for (const key of keys) {
    if (key === COOKIE) throw new StoreReservedKey(key)
  }
}

/**
 * The store's methods as promises (node's promisify): a store that throws, or calls back with an
 * error, rejects; a second callback is ignored.
 */
interface PromisedStore {
  get (sid: string): Promise<unknown>
  set (sid: string, session: unknown): Promise<void>
  destroy (sid: string): Promise<void>
}

function promised (store: ExpressStore): PromisedStore {
  return {
    get: promisify(store.get).bind(store),
    set: promisify(store.set).bind(store),
    destroy: promisify(store.destroy).bind(store)
  }
}

/**
 * A `SessionFactory` over an express-session store. Merging saves re-read the record and apply
 * the session's changes; calls on one id are queued in this process so that concurrent requests
 * merge here (across processes the store's get/set leaves a window no callback API can close).
 */
class ExpressStoreFactory<D extends object> implements SessionFactory<D> {
  /** A store-backed factory whose destroy() cannot say whether a record went: nothing to declare. */
  readonly capabilities = {} as const
  readonly #store: PromisedStore
  /** The tail of the queue of writes per session id. */
  readonly #queues = new Map<string, Promise<void>>()

  constructor (store: ExpressStore) {
    this.#store = promised(store)
  }

  async load (id: string): Promise<Session<D> | null> {
    const stored = await this.#read(id, Date.now())
    if (stored === null) return null
    const session = new Session<D>(stored.data as Partial<D>, id)
    session.expiresAt = stored.expiresAt
    session.createdAt = stored.createdAt
    session.touchedAt = stored.touchedAt
    // Our clocks started now: the plugin rewrites the record with them on this request, which
    // also renews its TTL.
    if (stored.foreign) session.markOutdated()
    return session
  }

  async save (session: Session<D>): Promise<string> {
    const id = session.id ?? generateId()
    if (session.isNew) {
      const data = session.data as Record<string, unknown>
      checkKeys(Object.keys(data))
      await this.#store.set(id, buildRecord(session, data))
      return id
    }
    const { set, deleted } = session.changes()
    checkKeys(Object.keys(set))
    await this.#queue(id, async () => {
      const stored = await this.#read(id, Date.now())
      // Destroyed (or expired) while this request ran: it stays gone.
      if (stored === null) return
      Object.assign(stored.data, set)
      for (const key of deleted) delete stored.data[key]
      await this.#store.set(id, buildRecord(session, stored.data))
    })
    return id
  }

  /** Resolves to nothing: an express store's destroy does not say whether the record was live. */
  destroy (id: string): Promise<void> {
    return this.#queue(id, async () => { await this.#store.destroy(id) })
  }

  async #read (id: string, now: number): Promise<StoredSession | null> {
    let record: unknown
    try {
      record = await this.#store.get(id)
    } catch (error) {
      // Some file-backed stores report an unknown id this way, as @fastify/session accepts.
      if ((error as { code?: unknown } | null)?.code === 'ENOENT') return null
      throw error
    }
    const found = readRecord(record, now)
    if (found !== 'expired') return found
    // A store may keep an expired record until its own TTL, or for ever: remove it, as the peers do.
    await this.#store.destroy(id)
    return null
  }

  /** Runs `task` after every earlier task on `id` in this process has finished. */
  #queue (id: string, task: () => Promise<void>): Promise<void> {
    const run = (this.#queues.get(id) ?? Promise.resolve()).then(task)
    const tail = run.catch(() => {})
    this.#queues.set(id, tail)
    tail.then(() => {
      if (this.#queues.get(id) === tail) this.#queues.delete(id)
    })
    return run
  }
}

/**
 * Turns an express-session store (callback `get`/`set`/`destroy`, such as `connect-redis` or
 * `connect-pg-simple`) into a `SessionFactory`. Its errors reject, so the plugin answers 503.
 * Records keep express-session's shape: data keys beside a `cookie` object whose `expires` is
 * `session.expiresAt` (the store's TTL) and which also holds `createdAt` and `touchedAt`; an
 * expired record it finds is destroyed, and timestamps fail closed as in `Session.fromJSON`. The
 * store's `touch` is not used: it only extends a TTL and cannot record the last activity the idle
 * timeout needs, so the plugin rolls these sessions with a save.
 */
export function fromExpressStore<D extends object = SessionData> (store: ExpressStore): SessionFactory<D> {
  if (store === null || typeof store !== 'object') {
    throw new InvalidOptions('fromExpressStore(store) needs an express-session store object')
  }
  for (const method of ['get', 'set', 'destroy'] as const) {
    if (typeof store[method] !== 'function') {
      throw new InvalidOptions(`fromExpressStore(store): store.${method} must be a function (callback style, as express-session stores have)`)
    }
  }
  return new ExpressStoreFactory<D>(store)
}
