import type { Session, SessionData } from './session.js'

/** A value, or a promise of it: a factory method may answer either way. */
export type MaybePromise<T> = T | Promise<T>

/** One live session of a user, as a factory's user index lists it (the id stays inside the plugin). */
export interface IndexedSession {
  id: string
  createdAt: number
  touchedAt: number
  expiresAt: number | null
}

/**
 * What a factory can do, declared once on the factory (`readonly capabilities = { ... }`) and read
 * once at registration: the plugin never guesses a factory's kind from a missing method.
 * Everything left out is false.
 */
export interface FactoryCapabilities {
  /** `destroy()` answers `true` when it removed a live record and `false` when there was none. */
  destroyReports?: boolean
  /** `sessionsOf()` and `revokeUser()` keep a user index (sign out everywhere, `maxSessionsPerUser`). */
  userIndex?: boolean
  /** No server-side record: the id is the whole session. Nothing to destroy; rolled by a save and a new cookie. */
  stateless?: boolean
  /** Ids that authenticate themselves (sealed with an AEAD): the cookie carries them without an HMAC. */
  selfAuthenticatingIds?: boolean
}

/**
 * Where sessions live. A factory decides what the id is: a store key, or the whole sealed
 * session. Only `load` and `save` are required; every method may answer at once or with a
 * promise (the plugin awaits only promises).
 */
export interface SessionFactory<D extends object = SessionData> {
  /** What this factory can do (see FactoryCapabilities); read once at registration. */
  readonly capabilities?: FactoryCapabilities
  /** The session behind `id`, or null when it is unknown or expired. Never throw for a bad id. */
  load (id: string): MaybePromise<Session<D> | null>
  /**
   * Stores the session and returns the id that goes in the cookie. `session.isNew`: write
   * `session.data` whole under `session.id`. Otherwise apply `session.changes()` to the stored
   * record (so concurrent requests merge), and never recreate a record destroyed meanwhile.
   * `session.expiresAt` (epoch ms) is the TTL to set.
   *
   * With a user index, `session.filedUnder` is the session's user (normal form; null: none). File
   * or unfile the record only when it differs from the user of the record this Session was
   * loaded from (a new session: always), so a stale request never unfiles a newer login. A new
   * record whose user is the one it was loaded with continues that session (a rotation): when
   * the user was revoked (`revokeUser`) since that load, store nothing and throw
   * `errors.FST_SESSION_GONE` (the plugin treats it as a logout). The check and the write are
   * one atomic step.
   */
  save (session: Session<D>): MaybePromise<string>
  /** Forgets the session; `true` when a live record was removed (`void`: the plugin checks with `load`). */
  destroy? (id: string): MaybePromise<boolean | void>
  /**
   * Extends the stored record's expiry to `session.expiresAt` without rewriting data. With a user
   * index: a record never filed (saved before `userKey` was set) is filed under `session.filedUnder`.
   */
  touch? (session: Session<D>): MaybePromise<void>
  /** Releases timers (never the client or pool it was handed); called on `app.close()`. */
  close? (): MaybePromise<void>
  /**
   * The user index (optional): the live sessions saved with `session.filedUnder === userId`.
   * Entries whose record expired or was destroyed must not be listed.
   */
  sessionsOf? (userId: string): MaybePromise<IndexedSession[]>
  /**
   * Sign out everywhere, first step (with a user index): from now on, no session of the user
   * loaded before this call can be saved under a new id (raise the user's generation,
   * atomically with respect to save). `keep`: the id of a session of the user that stays signed
   * in; it moves to the new generation. The plugin then destroys what `sessionsOf` lists.
   */
  revokeUser? (userId: string, keep: string | null): MaybePromise<void>
}
