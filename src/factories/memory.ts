import { InvalidOptions } from '../errors.js'
import type { SessionFactory } from '../factory.js'
import { LinkedList, type Linked } from '../list.js'
import { generateId } from '../options.js'
import { internals, ownData, type Session, type SessionData } from '../session.js'

export interface MemoryFactoryOptions {
  /** Most sessions kept; the least recently used go first. Default 10,000. */
  maxSessions?: number
  /** Lifetime in seconds of a session saved without `expiresAt` (outside the plugin). Default 86,400. */
  ttl?: number
}

/** A record, linked into the recency list: `prev` was used less recently, `next` more. */
interface Entry extends Linked<Entry> {
  readonly id: string
  /**
   * The data as one JSON text: compact (a flood of short-lived sessions leaves little behind for
   * the garbage collector) and a copy, so nothing outside the factory holds a live reference.
   */
  json: string
  createdAt: number
  touchedAt: number
  expiresAt: number
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
 * For the plugin: a MemoryFactory's answers at once, without the promise round trip. Only while
 * `load` and `save` are still MemoryFactory's own (a subclass or a patch may wait, or fail).
 */
export let immediate: {
  load (factory: MemoryFactory<any>, id: string): Session<any> | null
  save (factory: MemoryFactory<any>, session: Session<any>): string
}

/**
 * Sessions in this process's memory: the default for one instance and for tests. Bounded, and
 * saves merge each session's changes, so concurrent requests on one session all keep theirs.
 */
export class MemoryFactory<D extends object = SessionData> implements SessionFactory<D> {
  readonly #entries = new Map<string, Entry>()
  /** From the least to the most recently used: eviction takes the head without scanning the map. */
  readonly #recency = new LinkedList<Entry>()
  readonly #maxSessions: number
  readonly #ttlMs: number
  #sweeper: NodeJS.Timeout | null = null

  constructor (options: MemoryFactoryOptions = {}) {
    this.#maxSessions = positiveInteger(options.maxSessions, 10_000, 'maxSessions')
    this.#ttlMs = positiveInteger(options.ttl, 86_400, 'ttl') * 1000
  }

  /** How many sessions are held now. */
  get size (): number {
    return this.#entries.size
  }

  async load (id: string): Promise<Session<D> | null> {
    return this.#loadNow(id)
  }

  async save (session: Session<D>): Promise<string> {
    return this.#saveNow(session)
  }

  #loadNow (id: string): Session<D> | null {
    const entry = this.#live(id, Date.now())
    if (entry === undefined) return null
    this.#use(entry)
    const session = internals.adopt<D>(ownData(JSON.parse(entry.json)), id)
    session.createdAt = entry.createdAt
    session.touchedAt = entry.touchedAt
    session.expiresAt = entry.expiresAt
    return session
  }

  #saveNow (session: Session<D>): string {
    const id = session.id ?? generateId()
    const expiresAt = session.expiresAt ?? Date.now() + this.#ttlMs
    if (session.isNew) {
      const json = JSON.stringify(session.data)
      const previous = this.#entries.get(id)
      if (previous !== undefined) this.#remove(previous)
      this.#add({ id, json, createdAt: session.createdAt, touchedAt: session.touchedAt, expiresAt, prev: null, next: null })
      while (this.#entries.size > this.#maxSessions) this.#remove(this.#recency.head as Entry)
      return id
    }
    const entry = this.#live(id, Date.now())
    // Destroyed (or expired) while this request ran: it stays gone.
    if (entry === undefined) return id
    entry.json = merge(entry.json, session)
    entry.touchedAt = session.touchedAt
    entry.expiresAt = expiresAt
    this.#use(entry)
    return id
  }

  async touch (session: Session<D>): Promise<void> {
    const entry = session.id === null ? undefined : this.#live(session.id, Date.now())
    if (entry === undefined) return
    entry.touchedAt = session.touchedAt
    entry.expiresAt = session.expiresAt ?? Date.now() + this.#ttlMs
  }

  async destroy (id: string): Promise<void> {
    const entry = this.#entries.get(id)
    if (entry !== undefined) this.#remove(entry)
  }

  async close (): Promise<void> {
    if (this.#sweeper !== null) clearInterval(this.#sweeper)
    this.#sweeper = null
    this.#entries.clear()
    this.#recency.clear()
  }

  #live (id: string, now: number): Entry | undefined {
    const entry = this.#entries.get(id)
    if (entry === undefined || entry.expiresAt > now) return entry
    this.#remove(entry)
    return undefined
  }

  #add (entry: Entry): void {
    this.#entries.set(entry.id, entry)
    this.#recency.push(entry)
    if (this.#sweeper === null) {
      this.#sweeper = setInterval(() => this.sweep(), SWEEP_EVERY_MS).unref()
    }
  }

  #remove (entry: Entry): void {
    this.#entries.delete(entry.id)
    this.#recency.remove(entry)
  }

  /** Moves the entry to the most recently used end. */
  #use (entry: Entry): void {
    if (entry === this.#recency.tail) return
    this.#recency.remove(entry)
    this.#recency.push(entry)
  }

  static {
    immediate = {
      load: (factory, id) => factory.#loadNow(id),
      save: (factory, session) => factory.#saveNow(session)
    }
  }

  /** Drops every expired session now (it also runs every minute on its own). */
  sweep (now = Date.now()): number {
    let removed = 0
    for (const entry of this.#entries.values()) {
      if (entry.expiresAt <= now) {
        this.#remove(entry)
        removed++
      }
    }
    return removed
  }
}
