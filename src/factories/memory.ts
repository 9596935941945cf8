import { InvalidOptions } from '../errors.js'
import type { SessionFactory } from '../factory.js'
import { generateId } from '../options.js'
import { Session, type SessionData } from '../session.js'

export interface MemoryFactoryOptions {
  /** Most sessions kept; the least recently used go first. Default 10,000. */
  maxSessions?: number
  /** Lifetime in seconds of a session saved without `expiresAt` (outside the plugin). Default 86,400. */
  ttl?: number
}

interface Entry {
  /** Each key's value as JSON, so nothing outside the factory holds a live reference to it. */
  values: Map<string, string>
  createdAt: number
  touchedAt: number
  expiresAt: number
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
  readonly #entries = new Map<string, Entry>()
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
    const entry = this.#live(id, Date.now())
    if (entry === undefined) return null
    this.#use(id, entry)
    const data: Record<string, unknown> = {}
    for (const [key, json] of entry.values) data[key] = JSON.parse(json)
    const session = new Session<D>(data as Partial<D>, id)
    session.createdAt = entry.createdAt
    session.touchedAt = entry.touchedAt
    session.expiresAt = entry.expiresAt
    return session
  }

  async save (session: Session<D>): Promise<string> {
    const id = session.id ?? generateId()
    const expiresAt = session.expiresAt ?? Date.now() + this.#ttlMs
    if (session.isNew) {
      const values = new Map<string, string>()
      const data = session.data as Record<string, unknown>
      for (const key of Object.keys(data)) values.set(key, JSON.stringify(data[key]))
      this.#use(id, { values, createdAt: session.createdAt, touchedAt: session.touchedAt, expiresAt })
      this.#evict()
      return id
    }
    const entry = this.#live(id, Date.now())
    // Destroyed (or expired) while this request ran: it stays gone.
    if (entry === undefined) return id
    const { set, deleted } = session.changes()
    for (const [key, value] of Object.entries(set)) entry.values.set(key, JSON.stringify(value))
    for (const key of deleted) entry.values.delete(key)
    entry.touchedAt = session.touchedAt
    entry.expiresAt = expiresAt
    this.#use(id, entry)
    return id
  }

  async touch (session: Session<D>): Promise<void> {
    const entry = session.id === null ? undefined : this.#live(session.id, Date.now())
    if (entry === undefined) return
    entry.touchedAt = session.touchedAt
    entry.expiresAt = session.expiresAt ?? Date.now() + this.#ttlMs
  }

  async destroy (id: string): Promise<void> {
    this.#entries.delete(id)
  }

  async close (): Promise<void> {
    if (this.#sweeper !== null) clearInterval(this.#sweeper)
    this.#sweeper = null
    this.#entries.clear()
  }

  #live (id: string, now: number): Entry | undefined {
    const entry = this.#entries.get(id)
    if (entry === undefined || entry.expiresAt > now) return entry
    this.#entries.delete(id)
    return undefined
  }

  /** Moves the entry to the most-recently-used end (a Map iterates in insertion order). */
  #use (id: string, entry: Entry): void {
    this.#entries.delete(id)
    this.#entries.set(id, entry)
    if (this.#sweeper === null) {
      this.#sweeper = setInterval(() => this.sweep(), SWEEP_EVERY_MS).unref()
    }
  }

  #evict (): void {
    while (this.#entries.size > this.#maxSessions) {
      this.#entries.delete(this.#entries.keys().next().value as string)
    }
  }

  /** Drops every expired session now (it also runs every minute on its own). */
  sweep (now = Date.now()): number {
    let removed = 0
    for (const [id, entry] of this.#entries) {
      if (entry.expiresAt <= now) {
        this.#entries.delete(id)
        removed++
      }
    }
    return removed
  }
}
