import { Detached, InvalidOptions, NotLoaded, ReservedKey } from './errors.js'
import type { Session } from './session.js'
import { MAX_AGE_KEY, MAX_AGE_LIMIT, RESERVED, copyData, isLifetime, newData, readTimestamp, type SessionData, type SessionRecord } from './session-data.js'
import type { SessionInternals, SessionOwner } from './session-internals.js'
import { kView, viewTraps } from './session-view.js'

/** Callback-style completion for the peers' `regenerate(cb)` / `destroy(cb)`, on a later tick. */
function settle (callback: ((err?: Error) => void) | undefined): Promise<void> {
  if (typeof callback === 'function') queueMicrotask(() => callback())
  return Promise.resolve()
}

// Filled in by the class's static block: #private fields reach no further than the class body,
// so the plugin's way to them has to be made there (see SessionInternals).
export let internals: SessionInternals

/** The Session class; `Session` (session.ts) is its public name and type. */
export class SessionBase<D extends object = SessionData> {
  id: string | null
  /** Epoch ms after which the session is dead; set by the plugin before every save or touch. */
  expiresAt: number | null = null
  createdAt: number
  touchedAt: number
  /**
   * The session's user as the `userKey` option reads it, in its normal form (null: no user); set
   * by the plugin before every save and touch. A factory with a user index files the session
   * under it. Not named `userId`: that is the most common data key of all.
   */
  filedUnder: string | null = null

  #data: Record<string, unknown>
  #isNew: boolean
  #changed: Set<string> | null = null
  #deleted: Set<string> | null = null
  /** Object values handed out by get(), with their JSON then: a change made in place is saved. */
  #lent: Map<string, string> | null = null
  #regenerated = false
  /** The last regenerate() kept no data: the session starts anew (its absolute timeout too). */
  #emptied = false
  #destroyed = false
  #outdated = false
  #touch = false
  #owner: SessionOwner | null = null
  /** Set when a change must throw: the response went out, or this request has no session. */
  #locked: (() => Error) | null = null
  /** The property view handed to the app. */
  readonly #view: Session<D>
  /** The traps of every session's view: data keys as properties, read and written through the tracked methods. */
  static readonly #traps = viewTraps(this.prototype, (session) => session.#assertOpen())

  // NoInfer: the data type comes from `Session<MyData>` or SessionData, never from the first values.
  constructor (data?: Partial<NoInfer<D>>, id?: string | null) {
    this.#data = copyData(data)
    this.id = id ?? null
    this.#isNew = this.id === null
    this.createdAt = this.touchedAt = Date.now()
    this.#view = new Proxy(this, SessionBase.#traps) as unknown as Session<D>
    // The app gets the view: data keys as properties (`session.user = x`), as on the peers.
    return this.#view
  }

  /** The session itself, from its view or from itself. */
  get [kView] (): this {
    return this
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

  /** The session's data as stored; read-only: change it with `set`, `delete`, `clear` or properties, which are tracked. */
  get data (): Readonly<Partial<D>> {
    return this.#data as Partial<D>
  }

  get<K extends keyof D & string> (key: K): D[K] | undefined
  get<K extends keyof D & string> (key: K, fallback: D[K]): D[K]
  get<K extends keyof D & string> (key: K, fallback?: D[K]): D[K] | undefined {
    if (key === MAX_AGE_KEY) return fallback
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
    this.#assertOpen()
    if (RESERVED.has(key) || key === MAX_AGE_KEY) throw new ReservedKey(key)
    if (value === undefined) this.#remove(key)
    else this.#put(key, value)
    return this.#view as unknown as this
  }

  has (key: keyof D & string): boolean {
    return key !== MAX_AGE_KEY && this.#data[key] !== undefined
  }

  delete (key: keyof D & string): boolean {
    this.#assertOpen()
    if (key === MAX_AGE_KEY) throw new ReservedKey(key)
    return this.#remove(key)
  }

  /** Deletes every data key (a lifetime given with `options()` stays). */
  clear (): void {
    this.#assertOpen()
    for (const key of Object.keys(this.#data)) {
      if (key !== MAX_AGE_KEY) this.#remove(key)
    }
  }

  /** What was set and deleted since the session was loaded: what a merging factory applies. */
  changes (): { set: Partial<D>, deleted: Array<keyof D & string> } {
    const set = newData()
    if (this.#changed !== null) {
      for (const key of this.#changed) set[key] = this.#data[key]
    }
    if (this.#lent !== null) {
      for (const key of this.#changedInPlace()) set[key] = this.#data[key]
    }
    return { set: set as Partial<D>, deleted: (this.#deleted === null ? [] : [...this.#deleted]) as Array<keyof D & string> }
  }

  /**
   * Gives the session a new id at its next save and destroys the old one (call it at login and
   * logout). The data is emptied, as on @fastify/session and express-session; with `keep`, those
   * keys survive (and so does the lifetime `options()` gave). The promise settles at once and
   * `cb` is called on the next tick: the factory work happens when the reply is sent.
   */
  regenerate (keep?: Array<keyof D & string> | ((err?: Error) => void), cb?: (err?: Error) => void): Promise<void> {
    if (typeof keep === 'function') {
      cb = keep
      keep = undefined
    }
    this.#assertOpen()
    this.#regenerated = true
    const kept = new Set<string>(Array.isArray(keep) ? keep : [])
    if (Array.isArray(keep)) kept.add(MAX_AGE_KEY)
    for (const key of Object.keys(this.#data)) {
      if (!kept.has(key)) this.#remove(key)
    }
    this.#emptied = Object.keys(this.#data).every((key) => key === MAX_AGE_KEY)
    return settle(cb)
  }

  /**
   * Removes the session from its factory and clears the cookie. Data set afterwards starts a new
   * session. The promise settles at once and `cb` is called on the next tick.
   */
  destroy (cb?: (err?: Error) => void): Promise<void> {
    this.#assertOpen()
    this.#destroyed = true
    this.#regenerated = false
    this.#data = newData()
    this.#changed = null
    this.#deleted = null
    this.#lent = null
    return settle(cb)
  }

  /** Persists the session now, for replies that bypass `onSend` (hijacked or streamed by hand). */
  save (): Promise<void> {
    if (this.#locked !== null) return Promise.reject(this.#locked())
    if (this.#owner === null) return Promise.reject(new Detached())
    return this.#owner.saveNow(this.#view)
  }

  /**
   * Reads the stored session again, dropping unsaved changes: a long-lived socket sees other
   * requests' writes. A session that was ended meanwhile comes back empty and new (`isNew`).
   */
  reload (cb?: (err?: Error) => void): Promise<void> {
    let reloading: Promise<void>
    if (this.#locked !== null) reloading = Promise.reject(this.#locked())
    else if (this.#owner === null) reloading = Promise.reject(new Detached())
    else reloading = this.#owner.reloadNow(this.#view)
    if (typeof cb !== 'function') return reloading
    reloading.then(() => cb(), cb)
    return reloading.catch(() => {})
  }

  /** Extends the idle timeout (and a persistent cookie) on this response, even with `rolling: false`. */
  touch (): void {
    this.#assertOpen()
    this.#touch = true
  }

  /**
   * This session's own cookie lifetime in seconds ("remember me"), kept with the session:
   * `null` makes it a browser-session cookie again. Other keys are ignored (the peers' plugins,
   * such as @fastify/csrf-protection, pass their own).
   */
  options (opts: { maxAge?: number | null, [other: string]: unknown }): void {
    if (opts === null || typeof opts !== 'object' || !('maxAge' in opts) || opts.maxAge === undefined) return
    this.#assertOpen()
    const maxAge = opts.maxAge
    if (maxAge === null) {
      this.#remove(MAX_AGE_KEY)
      return
    }
    if (!isLifetime(maxAge)) {
      throw new InvalidOptions(`session.options() maxAge is ${String(maxAge)}: it is in seconds, an integer from 0 to ${MAX_AGE_LIMIT} (400 days); @fastify/session takes milliseconds, so divide by 1000`)
    }
    this.#put(MAX_AGE_KEY, maxAge)
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
    const view = new SessionBase<D>(record.data, record.id)
    // The fields are written on the session itself, past the view's traps.
    const session = view[kView]
    session.createdAt = readTimestamp(record.createdAt, 'createdAt')
    session.touchedAt = readTimestamp(record.touchedAt, 'touchedAt')
    if (record.expiresAt !== undefined && record.expiresAt !== null) {
      session.expiresAt = readTimestamp(record.expiresAt, 'expiresAt')
    }
    return view as Session<D>
  }

  /** Marks a loaded session as outdated: the plugin rewrites it on this request (after a key rotation, say). */
  markOutdated (): void {
    this.#outdated = true
  }

  #assertOpen (): void {
    if (this.#locked !== null) throw this.#locked()
  }

  #put (key: string, value: unknown): void {
    this.#data[key] = value
    this.#deleted?.delete(key)
    this.#lent?.delete(key)
    ;(this.#changed ??= new Set()).add(key)
  }

  #remove (key: string): boolean {
    if (this.#data[key] === undefined) return false
    delete this.#data[key]
    this.#changed?.delete(key)
    this.#lent?.delete(key)
    ;(this.#deleted ??= new Set()).add(key)
    return true
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
    const unwrap = <S extends SessionBase<any>>(session: S): S => (session as unknown as { [kView]: S })[kView]
    const reset = (session: SessionBase<any>): void => {
      session.#regenerated = false
      session.#emptied = false
      session.#destroyed = false
      session.#deleted = null
      session.#lent = null
      session.#outdated = false
      session.#touch = false
    }
    internals = {
      regenerated: (session) => unwrap(session).#regenerated,
      emptied: (session) => unwrap(session).#emptied,
      destroyed: (session) => unwrap(session).#destroyed,
      isSession: (value): value is Session<any> => {
        if (typeof value !== 'object' || value === null) return false
        const target: unknown = (value as { [kView]?: unknown })[kView]
        return typeof target === 'object' && target !== null && #data in target
      },
      unwrap: (session) => unwrap(session as unknown as SessionBase<any>) as unknown as typeof session,
      view: (session) => unwrap(session as unknown as SessionBase<any>).#view as typeof session,
      keyChanged: (session, key) => {
        const target = unwrap(session)
        return target.#changed?.has(key) === true || target.#deleted?.has(key) === true
      },
      changedKeys: (session) => {
        const target = unwrap(session)
        return target.#isNew
          ? Object.keys(target.#data)
          : [...(target.#changed ?? []), ...(target.#lent === null ? [] : target.#changedInPlace())]
      },
      lifetime: (session) => unwrap(session).#data[MAX_AGE_KEY] as number | undefined,
      touchAsked: (session) => unwrap(session).#touch,
      setOwner (session, owner) {
        unwrap(session).#owner = owner
      },
      markNew (session) {
        const target = unwrap(session)
        reset(target)
        target.#isNew = true
        target.id = null
        target.#changed = new Set(Object.keys(target.#data))
      },
      markSaved (session, id) {
        const target = unwrap(session)
        reset(target)
        target.id = id
        target.#isNew = false
        target.#changed = null
      },
      outdated: (session) => unwrap(session).#outdated,
      empty (session) {
        const target = unwrap(session)
        for (const key of Object.keys(target.#data)) target.#remove(key)
      },
      adopt (session, loaded) {
        const target = unwrap(session)
        const source = unwrap(loaded)
        reset(target)
        target.#data = source.#data
        target.#changed = null
        target.#isNew = source.#isNew
        target.id = source.id
        target.createdAt = source.createdAt
        target.touchedAt = source.touchedAt
        target.expiresAt = source.expiresAt
        target.filedUnder = source.filedUnder
        // What a factory remembers of the load (LoadedUsers' slots) comes with it.
        for (const slot of Object.getOwnPropertySymbols(source)) {
          (target as unknown as Record<symbol, unknown>)[slot] = (source as unknown as Record<symbol, unknown>)[slot]
        }
      },
      lock (session, error) {
        unwrap(session).#locked = error
      },
      visitor () {
        const session = new SessionBase()
        unwrap(session).#locked = () => new NotLoaded()
        return session
      }
    }
  }
}
