// A store-backed factory built on the package's public API alone: a Map of JSON text records
// stands in for your database. It passes every group of the conformance suite (required,
// recommended, user index) and the plugin suite: test/examples/custom-factory.test.ts.
// Its methods answer at once, as a synchronous store's can; an async store returns promises.
import { randomUUID } from 'node:crypto'
import { Session, type IndexedSession, type SessionFactory } from '../src/index.js'

/** One session as the store keeps it (as JSON text). */
interface Row {
  data: Record<string, unknown>
  createdAt: number
  touchedAt: number
  expiresAt: number
  /** The user the session is filed under in the user index, if any. */
  userId: string | null
}

export interface MapFactoryOptions {
  /** Lifetime in seconds of a session saved without `expiresAt` (outside the plugin). Default 86,400. */
  ttl?: number
}

export class MapFactory implements SessionFactory {
  /** The "database": session id → the JSON text of its row. */
  readonly rows = new Map<string, string>()
  /** The user index: user id → the ids of that user's sessions. */
  readonly #byUser = new Map<string, Set<string>>()
  readonly #ttlMs: number

  constructor ({ ttl = 86_400 }: MapFactoryOptions = {}) {
    this.#ttlMs = ttl * 1000
  }

  load (id: string): Session | null {
    const row = this.#read(id)
    if (row === undefined) return null
    return Session.fromJSON({ id, data: row.data, createdAt: row.createdAt, touchedAt: row.touchedAt, expiresAt: row.expiresAt })
  }

  save (session: Session): string {
    const id = session.id ?? randomUUID()
    const expiresAt = session.expiresAt ?? Date.now() + this.#ttlMs
    if (session.isNew) {
      this.#write(id, { data: { ...session.data }, createdAt: session.createdAt, touchedAt: session.touchedAt, expiresAt, userId: session.userId })
      return id
    }
    const row = this.#read(id)
    // Destroyed (a logout) or expired while this request ran: it stays gone.
    if (row === undefined) return id
    // Only what this request changed: another request's changes to other keys stay.
    const { set, deleted } = session.changes()
    Object.assign(row.data, set)
    for (const key of deleted) delete row.data[key]
    this.#write(id, { ...row, touchedAt: session.touchedAt, expiresAt, userId: session.userId })
    return id
  }

  touch (session: Session): void {
    const row = session.id === null ? undefined : this.#read(session.id)
    if (row === undefined) return
    this.#write(session.id as string, { ...row, touchedAt: session.touchedAt, expiresAt: session.expiresAt ?? Date.now() + this.#ttlMs })
  }

  destroy (id: string): boolean {
    const row = this.#read(id)
    if (row === undefined) return false
    this.#remove(id, row)
    return true
  }

  sessionsOf (userId: string): IndexedSession[] {
    const listed: IndexedSession[] = []
    for (const id of [...this.#byUser.get(userId) ?? []]) {
      const row = this.#read(id)
      if (row !== undefined) listed.push({ id, createdAt: row.createdAt, touchedAt: row.touchedAt, expiresAt: row.expiresAt })
    }
    return listed
  }

  /** The live row of `id`; an expired one is removed on the way. */
  #read (id: string): Row | undefined {
    const text = this.rows.get(id)
    if (text === undefined) return undefined
    const row = JSON.parse(text) as Row
    if (row.expiresAt > Date.now()) return row
    this.#remove(id, row)
    return undefined
  }

  #write (id: string, row: Row): void {
    const previous = this.rows.get(id)
    const before = previous === undefined ? null : (JSON.parse(previous) as Row).userId
    if (before !== row.userId) {
      if (before !== null) this.#unindex(before, id)
      if (row.userId !== null) {
        let ids = this.#byUser.get(row.userId)
        if (ids === undefined) this.#byUser.set(row.userId, ids = new Set())
        ids.add(id)
      }
    }
    this.rows.set(id, JSON.stringify(row))
  }

  #remove (id: string, row: Row): void {
    this.rows.delete(id)
    if (row.userId !== null) this.#unindex(row.userId, id)
  }

  #unindex (userId: string, id: string): void {
    const ids = this.#byUser.get(userId)
    ids?.delete(id)
    if (ids?.size === 0) this.#byUser.delete(userId)
  }
}
