// A store-backed factory built on the package's public API alone: a Map of JSON text records
// stands in for your database. It passes every group of the conformance suite (required,
// recommended, user index) and the plugin suite: test/examples/custom-factory.test.ts.
// Its methods answer at once, as a synchronous store's can; an async store returns promises.
import { randomUUID } from 'node:crypto'
import { LoadedUsers, Session, errors, type IndexedSession, type SessionFactory } from '../src/index.js'

/** One session as the store keeps it (as JSON text). */
interface Row {
  data: Record<string, unknown>
  createdAt: number
  touchedAt: number
  expiresAt: number
  /** The user the session is filed under in the user index, if any. */
  userId: string | null
  /** The user's generation it was filed at; null: never filed (saved before `userKey` was set). */
  generation: number | null
}

export interface MapFactoryOptions {
  /** Lifetime in seconds of a session saved without `expiresAt` (outside the plugin). Default 86,400. */
  ttl?: number
}

export class MapFactory implements SessionFactory {
  /** What it can do, read once at registration: destroy() says whether a record went; a user index. */
  readonly capabilities = { destroyReports: true, userIndex: true } as const
  /** The "database": session id → the JSON text of its row. */
  readonly rows = new Map<string, string>()
  /** The user index: user id → the ids of that user's sessions. */
  readonly #byUser = new Map<string, Set<string>>()
  /** Each user's generation, raised by sign out everywhere (revokeUser). */
  readonly #generations = new Map<string, number>()
  /** The user and generation of the record each loaded session came from: what decides filing. */
  readonly #loaded = new LoadedUsers()
  readonly #ttlMs: number

  constructor ({ ttl = 86_400 }: MapFactoryOptions = {}) {
    this.#ttlMs = ttl * 1000
  }

  load (id: string): Session | null {
    const row = this.#read(id)
    if (row === undefined) return null
    const session = Session.fromJSON({ id, data: row.data, createdAt: row.createdAt, touchedAt: row.touchedAt, expiresAt: row.expiresAt })
    this.#loaded.remember(session, row.userId, row.generation)
    return session
  }

  save (session: Session): string {
    const id = session.id ?? randomUUID()
    const expiresAt = session.expiresAt ?? Date.now() + this.#ttlMs
    // Whether this save moves the session in the user index, and for a rotation, the generation it carries.
    const filing = this.#loaded.filingOf(session)
    if (session.isNew) {
      const generation = filing.userId === null ? null : this.#generation(filing.userId)
      // A rotation of a session whose user was signed out everywhere since it was loaded: a logout.
      if (filing.generation !== null && filing.generation < (generation as number)) throw new errors.FST_SESSION_GONE()
      this.#write(id, { data: { ...session.data }, createdAt: session.createdAt, touchedAt: session.touchedAt, expiresAt, userId: filing.userId, generation })
      this.#loaded.remember(session, filing.userId, generation)
      return id
    }
    const row = this.#read(id)
    // Destroyed (a logout) or expired while this request ran: it stays gone.
    if (row === undefined) return id
    // Only what this request changed: another request's changes to other keys stay.
    const { set, deleted } = session.changes()
    Object.assign(row.data, set)
    for (const key of deleted) delete row.data[key]
    // The user index moves only when this request changed the user: a stale request leaves it.
    if (filing.refile) {
      row.userId = filing.userId
      row.generation = filing.userId === null ? 0 : this.#generation(filing.userId)
    }
    this.#write(id, { ...row, touchedAt: session.touchedAt, expiresAt })
    this.#loaded.remember(session, row.userId, row.generation)
    return id
  }

  touch (session: Session): void {
    const row = session.id === null ? undefined : this.#read(session.id)
    if (row === undefined) return
    // Never filed (saved before userKey was set): filed under its user now.
    const file = row.userId === null && row.generation === null && session.filedUnder !== null
    this.#write(session.id as string, {
      ...row,
      touchedAt: session.touchedAt,
      expiresAt: session.expiresAt ?? Date.now() + this.#ttlMs,
      ...(file ? { userId: session.filedUnder, generation: this.#generation(session.filedUnder as string) } : {})
    })
  }

  /** Sign out everywhere: sessions of the user loaded until now can no longer rotate into new ids. */
  revokeUser (userId: string, keep: string | null): void {
    const generation = this.#generation(userId) + 1
    this.#generations.set(userId, generation)
    const kept = keep === null ? undefined : this.#read(keep)
    if (kept !== undefined && kept.userId === userId) this.#write(keep as string, { ...kept, generation })
  }

  #generation (userId: string): number {
    return this.#generations.get(userId) ?? 0
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
