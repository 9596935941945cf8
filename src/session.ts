import { CorruptRecord, Detached, InvalidOptions, NotSerializable, ReservedKey } from './errors.js'

/**
 * What a session holds. Augment it to type your data:
 * `declare module 'fastify-session-factory' { interface SessionData { userId: string } }`
 */
export interface SessionData {
  [key: string]: any
}

/** A session as plain JSON: what `toJSON()` gives and `fromJSON()` takes. */
export interface SessionRecord<D extends object = SessionData> {
  id: string | null
  data: Partial<D>
  createdAt: number
  touchedAt: number
  /** Epoch ms; kept by `fromJSON` so a factory's TTL survives a round trip. */
  expiresAt?: number | null
}

/** What the plugin hangs on a session it manages, so that `session.save()` can reach the reply. */
export interface SessionOwner {
  saveNow (session: Session<any>): Promise<void>
}

// Keys that could reach an object prototype if a store, or a careless copy, handed them on.
const RESERVED = new Set(['__proto__', 'constructor', 'prototype'])

/** The data key that keeps a session's own cookie lifetime (`session.options({ maxAge })`). */
export const MAX_AGE_KEY = '$cookieMaxAge'
/** What browsers keep a cookie for at most: 400 days, in seconds. */
export const MAX_AGE_LIMIT = 34_560_000

/**
 * A stored timestamp as a number: a number as is, a numeric string (a BIGINT column) read as
 * one, a missing one NaN (which every timeout check treats as expired). Anything else present
 * is a corrupt record, never "now".
 */
export function readTimestamp (value: unknown, name: string): number {
  if (typeof value === 'number') {
    // NaN is how fromJSON spells a missing clock.
    if (Number.isFinite(value) || Number.isNaN(value)) return value
  } else if (value === undefined || value === null) {
    return Number.NaN
  } else if (typeof value === 'string' && /^-?\d+(?:\.\d+)?$/.test(value)) {
    return Number(value)
  }
  throw new CorruptRecord(`its ${name} is not a finite number`)
}

/**
 * True when a keep list holds every one of the session's own fields: it was built with
 * `Object.keys(session)`, as @fastify/passport's `keepSessionInfo` does to keep everything
 * (on @fastify/session the data keys are the session's own properties).
 */
function listsOwnFields (keep: readonly string[], session: object): boolean {
  return Object.keys(session).every((field) => keep.includes(field))
}

/** Callback-style completion for the peers' `regenerate(cb)` / `destroy(cb)`, on a later tick. */
function settle (callback: ((err?: Error) => void) | undefined): Promise<void> {
  if (typeof callback === 'function') queueMicrotask(() => callback())
  return Promise.resolve()
}

function copyData (source: unknown): Record<string, unknown> {
  const data: Record<string, unknown> = Object.create(null)
  if (source !== null && typeof source === 'object') {
    for (const key of Object.keys(source)) {
      if (!RESERVED.has(key)) data[key] = (source as Record<string, unknown>)[key]
    }
  }
  return data
}

/** The plugin's view of a session's lifecycle flags; not part of the public API. */
export interface SessionInternals {
  regenerated (session: Session<any>): boolean
  destroyed (session: Session<any>): boolean
  changedKeys (session: Session<any>): Iterable<string>
  setOwner (session: Session<any>, owner: SessionOwner | null): void
  /** Before a save that creates a record: the session is new again, every key counts as changed. */
  markNew (session: Session<any>): void
  /** After a successful save: the stored record now matches, so nothing is pending. */
  markSaved (session: Session<any>, id: string): void
  /** The plugin saves an outdated session even when its data did not change. */
  outdated (session: Session<any>): boolean
  /** True for a real Session (its private fields exist), not an object that only inherits from the class. */
  isSession (value: unknown): value is Session<any>
  /** The key was set or deleted since the session was loaded (or last saved). */
  keyChanged (session: Session<any>, key: string): boolean
}

// Filled in by the class's static block, which alone can reach the #private fields.
export let internals: SessionInternals

export class Session<D extends object = SessionData> {
  id: string | null
  /** Epoch ms after which the session is dead; set by the plugin before every save or touch. */
  expiresAt: number | null = null
  createdAt: number
  touchedAt: number
  /**
   * The value of the `userKey` option's key, as a string; set by the plugin before every save.
   * A factory with a user index files the session under it (null: no user).
   */
  userId: string | null = null

  #data: Record<string, unknown>
  #isNew: boolean
  #changed: Set<string> | null = null
  #deleted: Set<string> | null = null
  /** Object values handed out by get(), with their JSON then: a change made in place is saved. */
  #lent: Map<string, string> | null = null
  #regenerated = false
  #destroyed = false
  #outdated = false
  #owner: SessionOwner | null = null

  // NoInfer: the data type comes from `Session<MyData>` or SessionData, never from the first values.
  constructor (data?: Partial<NoInfer<D>>, id?: string | null) {
    this.#data = copyData(data)
    this.id = id ?? null
    this.#isNew = this.id === null
    this.createdAt = this.touchedAt = Date.now()
  }

  /** True for a session that was built without an id, that is, one no factory has stored yet. */
  get isNew (): boolean {
    return this.#isNew
  }

  /** True once a key was set, deleted or cleared (or a value from get() changed in place) since load. */
  get isModified (): boolean {
    if ((this.#changed !== null && this.#changed.size > 0) || (this.#deleted !== null && this.#deleted.size > 0)) return true
    return this.#lent !== null && this.#changedInPlace().length > 0
  }

  /** The session's data; read-only: change it with `set`, `delete` and `clear`, which are tracked. */
  get data (): Readonly<Partial<D>> {
    return this.#data as Partial<D>
  }

  get<K extends keyof D & string> (key: K): D[K] | undefined
  get<K extends keyof D & string> (key: K, fallback: D[K]): D[K]
  get<K extends keyof D & string> (key: K, fallback?: D[K]): D[K] | undefined {
    const value = this.#data[key] as D[K] | undefined
    if (value === undefined) return fallback
    // An object may be changed in place (`get('cart').push(x)`): remember how it looked.
    if (typeof value === 'object' && value !== null && this.#changed?.has(key) !== true) {
      const lent = this.#lent ??= new Map()
      if (!lent.has(key)) lent.set(key, JSON.stringify(value))
    }
    return value
  }

  /** Stores `value` under `key`; `undefined` deletes the key, as @fastify/passport expects. */
  set<K extends keyof D & string> (key: K, value: D[K]): this {
    if (RESERVED.has(key)) throw new ReservedKey(key)
    if (value === undefined) {
      this.delete(key)
      return this
    }
    this.#data[key] = value
    this.#deleted?.delete(key)
    this.#lent?.delete(key)
    ;(this.#changed ??= new Set()).add(key)
    return this
  }

  has (key: keyof D & string): boolean {
    return this.#data[key] !== undefined
  }

  delete (key: keyof D & string): boolean {
    if (this.#data[key] === undefined) return false
    delete this.#data[key]
    this.#changed?.delete(key)
    this.#lent?.delete(key)
    ;(this.#deleted ??= new Set()).add(key)
    return true
  }

  clear (): void {
    for (const key of Object.keys(this.#data)) this.delete(key as keyof D & string)
  }

  /** What was set and deleted since the session was loaded: what a merging factory applies. */
  changes (): { set: Partial<D>, deleted: Array<keyof D & string> } {
    const set: Record<string, unknown> = Object.create(null)
    if (this.#changed !== null) {
      for (const key of this.#changed) set[key] = this.#data[key]
    }
    if (this.#lent !== null) {
      for (const key of this.#changedInPlace()) set[key] = this.#data[key]
    }
    return { set: set as Partial<D>, deleted: (this.#deleted === null ? [] : [...this.#deleted]) as Array<keyof D & string> }
  }

  /**
   * Gives the session a new id at its next save and destroys the old one (call it at login).
   * With `keep`, only those keys survive (what @fastify/passport asks for at login); a keep list
   * built with `Object.keys(session)` (passport's `keepSessionInfo`) keeps them all. The promise settles
   * at once and `cb` is called on the next tick: the factory work happens when the reply is sent.
   */
  regenerate (keep?: Array<keyof D & string> | ((err?: Error) => void), cb?: (err?: Error) => void): Promise<void> {
    if (typeof keep === 'function') {
      cb = keep
      keep = undefined
    }
    this.#regenerated = true
    if (Array.isArray(keep) && !listsOwnFields(keep, this)) {
      const kept = new Set<string>(keep)
      kept.add(MAX_AGE_KEY)
      for (const key of Object.keys(this.#data)) {
        if (!kept.has(key)) this.delete(key as keyof D & string)
      }
    }
    return settle(cb)
  }

  /**
   * Removes the session from its factory and clears the cookie. Data set afterwards starts a new
   * session. The promise settles at once and `cb` is called on the next tick.
   */
  destroy (cb?: (err?: Error) => void): Promise<void> {
    this.#destroyed = true
    this.#regenerated = false
    this.#data = Object.create(null)
    this.#changed = null
    this.#deleted = null
    this.#lent = null
    return settle(cb)
  }

  /** Persists the session now, for replies that bypass `onSend` (hijacked or streamed by hand). */
  save (): Promise<void> {
    if (this.#owner === null) return Promise.reject(new Detached())
    return this.#owner.saveNow(this)
  }

  /**
   * This session's own cookie lifetime in seconds ("remember me"), kept with the session:
   * `null` makes it a browser-session cookie again. Other keys are ignored (the peers' plugins,
   * such as @fastify/csrf-protection, pass their own).
   */
  options (opts: { maxAge?: number | null, [other: string]: unknown }): void {
    if (opts === null || typeof opts !== 'object' || !('maxAge' in opts) || opts.maxAge === undefined) return
    const maxAge = opts.maxAge
    if (maxAge === null) {
      this.delete(MAX_AGE_KEY as keyof D & string)
      return
    }
    if (typeof maxAge !== 'number' || !Number.isInteger(maxAge) || maxAge < 0 || maxAge > MAX_AGE_LIMIT) {
      throw new InvalidOptions(`session.options() maxAge is ${String(maxAge)}: it is in seconds, an integer from 0 to ${MAX_AGE_LIMIT} (400 days); @fastify/session takes milliseconds, so divide by 1000`)
    }
    this.set(MAX_AGE_KEY as keyof D & string, maxAge as D[keyof D & string])
  }

  toJSON (): SessionRecord<D> {
    return {
      id: this.id,
      data: { ...this.#data } as Partial<D>,
      createdAt: this.createdAt,
      touchedAt: this.touchedAt,
      expiresAt: this.expiresAt
    }
  }

  /**
   * A loaded session from its stored record. Timestamps fail closed: a missing one makes the
   * session expired, a numeric string is read as a number, anything else throws
   * FST_SESSION_CORRUPT_RECORD (the plugin answers 503).
   */
  static fromJSON<D extends object = SessionData> (record: SessionRecord<D>): Session<D> {
    const session = new Session<D>(record.data, record.id)
    session.createdAt = readTimestamp(record.createdAt, 'createdAt')
    session.touchedAt = readTimestamp(record.touchedAt, 'touchedAt')
    if (record.expiresAt !== undefined && record.expiresAt !== null) {
      session.expiresAt = readTimestamp(record.expiresAt, 'expiresAt')
    }
    return session
  }

  /** Marks a loaded session as outdated: the plugin rewrites it on this request (after a key rotation, say). */
  markOutdated (): void {
    this.#outdated = true
  }

  #changedInPlace (): string[] {
    const keys: string[] = []
    // A key set() since it was lent is no longer lent (set() takes it out), so it is not seen twice.
    for (const [key, json] of this.#lent as Map<string, string>) {
      let now: string | undefined
      try {
        now = JSON.stringify(this.#data[key])
      } catch {
        // A cycle made in place: saving it fails with FST_SESSION_NOT_SERIALIZABLE.
        now = undefined
      }
      if (now !== json) keys.push(key)
    }
    return keys
  }

  static {
    internals = {
      regenerated: (session) => session.#regenerated,
      destroyed: (session) => session.#destroyed,
      isSession: (value): value is Session<any> => typeof value === 'object' && value !== null && #data in value,
      keyChanged: (session, key) => session.#changed?.has(key) === true || session.#deleted?.has(key) === true,
      changedKeys: (session) => session.#isNew
        ? Object.keys(session.#data)
        : [...(session.#changed ?? []), ...(session.#lent === null ? [] : session.#changedInPlace())],
      setOwner (session, owner) {
        session.#owner = owner
      },
      markNew (session) {
        session.#isNew = true
        session.#regenerated = false
        session.#destroyed = false
        session.id = null
        session.#changed = new Set(Object.keys(session.#data))
        session.#deleted = null
        session.#lent = null
        session.#outdated = false
      },
      markSaved (session, id) {
        session.id = id
        session.#isNew = false
        session.#regenerated = false
        session.#destroyed = false
        session.#changed = null
        session.#deleted = null
        session.#lent = null
        session.#outdated = false
      },
      outdated: (session) => session.#outdated
    }
  }
}

// Assigning a property (`session.user = x`, @fastify/session's style) would store nothing: the
// last link of the prototype chain turns it into a TypeError that says what to write.
Object.setPrototypeOf(Session.prototype, new Proxy(Object.create(Object.prototype) as object, {
  set (_target, key) {
    const name = String(key)
    throw new TypeError(`session.${name} = … stores nothing: write session.set('${name}', value) (and read with session.get('${name}')). With @fastify/csrf-protection, register it with sessionPlugin: '@fastify/secure-session'`)
  }
}))

/** Throws `FST_SESSION_NOT_SERIALIZABLE` for anything JSON would drop, mangle or choke on. */
export function assertJson (value: unknown, path: string, seen: unknown[] = []): void {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return
    case 'number':
      if (!Number.isFinite(value)) throw new NotSerializable(path, `${value} is not a finite number`)
      return
    case 'object':
      if (value === null) return
      if (seen.includes(value)) throw new NotSerializable(path, 'a cycle')
      seen.push(value)
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) assertJson(value[i], `${path}/${i}`, seen)
      } else if (typeof (value as { toJSON?: unknown }).toJSON !== 'function') {
        const proto: unknown = Object.getPrototypeOf(value)
        if (proto !== Object.prototype && proto !== null) {
          throw new NotSerializable(path, `a ${(value as object).constructor?.name ?? 'class instance'}, which JSON turns into a plain object`)
        }
        // Keys inside a value are data (a map keyed by email, say) and this message is logged: '*'.
        for (const key of Object.keys(value)) assertJson((value as Record<string, unknown>)[key], `${path}/*`, seen)
      }
      seen.pop()
      return
    default:
      throw new NotSerializable(path, `a ${typeof value}`)
  }
}
