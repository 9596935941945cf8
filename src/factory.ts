import type { Session, SessionData } from './session.js'

/**
 * Where sessions live. A factory decides what the id is: a store key, or the whole sealed
 * session. Only `load` and `save` are required; every method returns a promise.
 */
export interface SessionFactory<D extends object = SessionData> {
  /** The session behind `id`, or null when it is unknown or expired. Never throw for a bad id. */
  load (id: string): Promise<Session<D> | null>
  /**
   * Stores the session and returns the id that goes in the cookie. `session.isNew`: write
   * `session.data` whole under `session.id`. Otherwise apply `session.changes()` to the stored
   * record (so concurrent requests merge), and never recreate a record destroyed meanwhile.
   * `session.expiresAt` (epoch ms) is the TTL to set.
   */
  save (session: Session<D>): Promise<string>
  /** Forgets the session. */
  destroy? (id: string): Promise<void>
  /** Extends the stored record's expiry to `session.expiresAt` without rewriting data. */
  touch? (session: Session<D>): Promise<void>
  /** Releases timers and connections; called on `app.close()`. */
  close? (): Promise<void>
}
