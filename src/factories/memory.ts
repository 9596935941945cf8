import { LRUCache } from 'lru-cache'
import { InvalidOptions, SessionGone } from '../errors.js'
import type { IndexedSession, SessionFactory } from '../factory.js'
import { generateId } from '../id.js'
import { Session, type SessionData } from '../session.js'
import { LoadedUsers } from '../user.js'

export interface MemoryFactoryOptions {
  /** Most sessions kept; the least recently used go first. Default 10,000. */
  maxSessions?: number
  /** Lifetime in seconds of a session saved without `expiresAt` (outside the plugin). Default 86,400. */
  ttl?: number
}

/** A record. */
interface Entry {
  readonly id: string
  /**
   * The data as one JSON text: compact (a flood of short-lived sessions leaves little behind for
   * the garbage collector) and a copy, so nothing outside the factory holds a live reference.
   */
  json: string
  createdAt: number
  touchedAt: number
  expiresAt: number
  userId: string | null
  /** The user's generation the record was filed at; null: never filed (saved before `userKey` was set). */
  generation: number | null
}

/**
 * The session's changes applied to the record as it is now, which other requests may have
 * changed. Only what was set or deleted counts: a value changed in place without set() is not
 * saved, whether or not another request wrote the record meanwhile.
 */
function merge (json: string, session: Session<any>): string {
  const { set, deleted } = session.changes()
  // A plain object, never handed out: JSON.stringify takes its fast path. Session keeps the
  // reserved keys (__proto__ and co.) out of set(), so no assignment here reaches a prototype.
  const data = JSON.parse(json) as Record<string, unknown>
  for (const key in set) data[key] = set[key]
  for (const key of deleted) delete data[key]
  return JSON.stringify(data)
}

const SWEEP_EVERY_MS = 60_000

function positiveInteger (value: unknown, fallback: number, name: string): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new InvalidOptions(`MemoryFactory ${name} must be a positive integer`)
  }
  return value
}

/**
 * Sessions in this process's memory: the default for one instance and for tests. Bounded, and
 * saves merge each session's changes, so concurrent requests on one session all keep theirs.
 */
export class MemoryFactory<D extends object = SessionData> implements SessionFactory<D> {
  /** A destroy() that says whether a record went, and a user index: read once by the plugin. */
  readonly capabilities = { destroyReports: true, userIndex: true } as const
  /** Bounded by maxSessions: the least recently used go first. */
  readonly #entries: LRUCache<string, Entry>
  /** The user index: each user's entries, so listing them scans nothing else. */
  readonly #byUser = new Map<string, Set<Entry>>()
  /**
   * Each revoked user's generation (raised by every sign out everywhere): a rotation of a
   * session loaded at an older one is refused. One number per revoked user, kept for good.
   */
  readonly #generations = new Map<string, number>()
  readonly #loaded = new LoadedUsers()
  readonly #ttlMs: number
  #sweeper: NodeJS.Timeout | null = null

  constructor (options: MemoryFactoryOptions = {}) {
    this.#entries = new LRUCache<string, Entry>({
      // Counted by maxSize rather than max, which would allocate room for every session up front.
      maxSize: positiveInteger(options.maxSessions, 10_000, 'maxSessions'),
      sizeCalculation: () => 1,
      // Only an eviction: every other removal goes through #remove, which unfiles the entry itself.
      dispose: (entry, _id, reason) => { if (reason === 'evict') this.#unfile(entry) }
    })
    this.#ttlMs = positiveInteger(options.ttl, 86_400, 'ttl') * 1000
  }

  /** How many sessions are held now. */
  get size (): number {
    return this.#entries.size
  }

  // Every method answers at once: the plugin awaits only promises, so a memory session costs none.
  load (id: string): Session<D> | null {
    const entry = this.#live(id, Date.now(), true)
    if (entry === undefined) return null
    const session = Session.fromJSON<D>({ id, data: JSON.parse(entry.json), createdAt: entry.createdAt, touchedAt: entry.touchedAt, expiresAt: entry.expiresAt })
    this.#loaded.remember(session, entry.userId, entry.generation)
    return session
  }

  /** The id. A rotation of a session its user was signed out of everywhere since its load throws FST_SESSION_GONE. */
  save (session: Session<D>): string {
    const id = session.id ?? generateId()
    const expiresAt = session.expiresAt ?? Date.now() + this.#ttlMs
    const filing = this.#loaded.filingOf(session)
    if (session.isNew) {
      const generation = filing.userId === null ? null : this.#generation(filing.userId)
      if (filing.generation !== null && filing.generation < (generation as number)) throw new SessionGone()
      const json = JSON.stringify(session.data)
      const previous = this.#entries.peek(id)
      if (previous !== undefined) this.#remove(previous)
      const entry: Entry = { id, json, createdAt: session.createdAt, touchedAt: session.touchedAt, expiresAt, userId: null, generation }
      this.#add(entry)
      this.#file(entry, filing.userId)
      this.#loaded.remember(session, filing.userId, generation)
      return id
    }
    const entry = this.#live(id, Date.now(), true)
    // Destroyed (or expired) while this request ran: it stays gone.
    if (entry === undefined) return id
    entry.json = merge(entry.json, session)
    entry.touchedAt = session.touchedAt
    entry.expiresAt = expiresAt
    if (filing.refile) {
      entry.generation = filing.userId === null ? 0 : this.#generation(filing.userId)
      this.#file(entry, filing.userId)
    }
    this.#loaded.remember(session, entry.userId, entry.generation)
    return id
  }

  /** Extends the expiry; a record never filed (saved before `userKey` was set) is filed under its user now. */
  touch (session: Session<D>): void {
    const entry = session.id === null ? undefined : this.#live(session.id, Date.now())
    if (entry === undefined) return
    entry.touchedAt = session.touchedAt
    entry.expiresAt = session.expiresAt ?? Date.now() + this.#ttlMs
    if (entry.generation === null && entry.userId === null && session.filedUnder !== null) {
      entry.generation = this.#generation(session.filedUnder)
      this.#file(entry, session.filedUnder)
    }
  }

  /** Sign out everywhere: no session of the user loaded until now can be rotated into a new record; `keep` moves on to the new generation. */
  revokeUser (userId: string, keep: string | null): void {
    const generation = this.#generation(userId) + 1
    this.#generations.set(userId, generation)
    const kept = keep === null ? undefined : this.#live(keep, Date.now())
    if (kept !== undefined && kept.userId === userId) kept.generation = generation
  }

  #generation (userId: string): number {
    return this.#generations.get(userId) ?? 0
  }

  /** True when a live session was removed. */
  destroy (id: string): boolean {
    const entry = this.#live(id, Date.now())
    if (entry === undefined) return false
    this.#remove(entry)
    return true
  }

  /** The user index: the live sessions saved with this `userId`. */
  sessionsOf (userId: string): IndexedSession[] {
    const found: IndexedSession[] = []
    for (const entry of [...this.#byUser.get(userId) ?? []]) {
      if (this.#live(entry.id, Date.now()) === entry) {
        found.push({ id: entry.id, createdAt: entry.createdAt, touchedAt: entry.touchedAt, expiresAt: entry.expiresAt })
      }
    }
    return found
  }

  /** Moves the entry to its user's set in the index (or out of the index for null). */
  #file (entry: Entry, userId: string | null): void {
    if (entry.userId === userId) return
    this.#unfile(entry)
    entry.userId = userId
    if (userId === null) return
    let set = this.#byUser.get(userId)
    if (set === undefined) this.#byUser.set(userId, set = new Set())
    set.add(entry)
  }

  #unfile (entry: Entry): void {
    if (entry.userId === null) return
    const set = this.#byUser.get(entry.userId) as Set<Entry>
    set.delete(entry)
    if (set.size === 0) this.#byUser.delete(entry.userId)
  }

  close (): void {
    if (this.#sweeper !== null) clearInterval(this.#sweeper)
    this.#sweeper = null
    this.#entries.clear()
    this.#byUser.clear()
    this.#generations.clear()
  }

  /** The entry if it has not expired; `use` makes it the most recently used. */
  #live (id: string, now: number, use = false): Entry | undefined {
    const entry = use ? this.#entries.get(id) : this.#entries.peek(id)
    if (entry === undefined || entry.expiresAt > now) return entry
    this.#remove(entry)
    return undefined
  }

  #add (entry: Entry): void {
    this.#entries.set(entry.id, entry)
    if (this.#sweeper === null) {
      this.#sweeper = setInterval(() => this.sweep(), SWEEP_EVERY_MS).unref()
    }
  }

  #remove (entry: Entry): void {
    this.#unfile(entry)
    this.#entries.delete(entry.id)
  }

  /** Drops every expired session now (it also runs every minute on its own). */
  sweep (now = Date.now()): number {
    const expired: Entry[] = []
    for (const entry of this.#entries.values()) {
      if (entry.expiresAt <= now) expired.push(entry)
    }
    for (const entry of expired) this.#remove(entry)
    return expired.length
  }
}
