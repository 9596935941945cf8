// A factory whose user index can go stale in the ways issue 26 names, one bug at a time, for
// the tests of the kit's user index group. It is built the way a store-backed index usually is:
// per user, entries scored by expiry (a Redis sorted set), pruned by score, and each listed id
// re-read from the store, which hides a stale entry from every check that only destroys or waits.
import { setImmediate as tick } from 'node:timers/promises'
import { MapFactory } from '../../examples/custom-factory.js'
import type { IndexedSession, Session, SessionFactory } from '../../src/index.js'

export type IndexBug =
  /** None: it passes the whole group. */
  | 'none'
  /** destroy() forgets the record but leaves its id in the user's index. */
  | 'destroy-keeps-id'
  /** The entries of destroyed or expired sessions are never removed, only filtered out when read. */
  | 'never-prunes'
  /** An entry keeps the score (expiry) of its first filing: a later save or touch does not move it. */
  | 'first-expiry-score'
  /** The index is read, changed and written back with a store round trip between: concurrent saves lose entries. */
  | 'racy'

export class StaleIndexFactory implements SessionFactory {
  readonly capabilities = { destroyReports: true, userIndex: true } as const
  readonly #store = new MapFactory()
  /** user → (id → score: the epoch ms the entry is pruned at), as a store keeps it: JSON text, read and written whole. */
  readonly #index = new Map<string, string>()
  /** id → the user it is filed under. */
  readonly #owner = new Map<string, string>()
  readonly #bug: IndexBug

  constructor (bug: IndexBug = 'none') {
    this.#bug = bug
  }

  async load (id: string): Promise<Session | null> {
    return this.#store.load(id)
  }

  async save (session: Session): Promise<string> {
    // A save of a loaded session that was destroyed meanwhile stores nothing (MapFactory's rule).
    const alive = session.isNew || this.#store.load(session.id as string) !== null
    const id = this.#store.save(session)
    if (alive) await this.#file(id, session.filedUnder, session.expiresAt as number)
    return id
  }

  async touch (session: Session): Promise<void> {
    const id = session.id as string
    if (this.#store.load(id) === null) return
    this.#store.touch(session)
    await this.#file(id, session.filedUnder, session.expiresAt as number)
  }

  async destroy (id: string): Promise<boolean> {
    const owner = this.#owner.get(id)
    this.#owner.delete(id)
    if (owner !== undefined && this.#bug !== 'destroy-keeps-id' && this.#bug !== 'never-prunes') this.#unfile(owner, id)
    return this.#store.destroy(id)
  }

  async sessionsOf (userId: string): Promise<IndexedSession[]> {
    const now = Date.now()
    const entries = this.#read(userId)
    const listed: IndexedSession[] = []
    for (const [id, score] of entries) {
      const session = score > now ? this.#store.load(id) : null
      if (session === null) {
        if (this.#bug !== 'never-prunes') entries.delete(id)
        continue
      }
      listed.push({ id, createdAt: session.createdAt, touchedAt: session.touchedAt, expiresAt: session.expiresAt })
    }
    this.#write(userId, entries)
    return listed
  }

  /** Files the session under its user, in one step (the store's atomic update) unless the bug is `racy`. */
  async #file (id: string, userId: string | null, expiresAt: number): Promise<void> {
    const before = this.#owner.get(id)
    if (before !== undefined && before !== userId) this.#unfile(before, id)
    if (userId === null) {
      this.#owner.delete(id)
      return
    }
    this.#owner.set(id, userId)
    const entries = this.#read(userId)
    if (this.#bug === 'racy') await tick()
    if (this.#bug !== 'first-expiry-score' || !entries.has(id)) entries.set(id, expiresAt)
    this.#write(userId, entries)
  }

  #unfile (userId: string, id: string): void {
    const entries = this.#read(userId)
    entries.delete(id)
    this.#write(userId, entries)
  }

  #read (userId: string): Map<string, number> {
    return new Map(JSON.parse(this.#index.get(userId) ?? '[]'))
  }

  #write (userId: string, entries: Map<string, number>): void {
    this.#index.set(userId, JSON.stringify([...entries]))
  }
}
