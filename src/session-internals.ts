import type { Session } from './session.js'

/** What the plugin hangs on a session it manages, so that `session.save()` can reach the reply. */
export interface SessionOwner {
  saveNow (session: Session<any>): Promise<void>
  /** Reads the stored session again into `session` (`session.reload()`). */
  reloadNow (session: Session<any>): Promise<void>
}

/**
 * The plugin's view of a session's lifecycle flags; not part of the public API. The Session class
 * (session-base.ts) makes it in its static block, the only code that reaches its #private fields.
 */
export interface SessionInternals {
  regenerated (session: Session<any>): boolean
  /** The last regenerate() kept no data key. */
  emptied (session: Session<any>): boolean
  destroyed (session: Session<any>): boolean
  changedKeys (session: Session<any>): Iterable<string>
  setOwner (session: Session<any>, owner: SessionOwner | null): void
  /** Before a save that creates a record: the session is new again, every key counts as changed. */
  markNew (session: Session<any>): void
  /** After a successful save: the stored record now matches, so nothing is pending. */
  markSaved (session: Session<any>, id: string): void
  /** The plugin saves an outdated session even when its data did not change. */
  outdated (session: Session<any>): boolean
  /** True for a real Session (or its property view), not an object that only inherits from the class. */
  isSession (value: unknown): value is Session<any>
  /** The session behind its property view: what the plugin works on, without the traps. */
  unwrap<D extends object> (session: Session<D>): Session<D>
  /** The property view of a session: what `request.session` gives the app. */
  view<D extends object> (session: Session<D>): Session<D>
  /** The key was set or deleted since the session was loaded (or last saved). */
  keyChanged (session: Session<any>, key: string): boolean
  /** The lifetime `options({ maxAge })` gave this session (seconds), if any. */
  lifetime (session: Session<any>): number | undefined
  /** `touch()` was called on this request. */
  touchAsked (session: Session<any>): boolean
  /** Empties the data (a regenerated session whose record is gone). */
  empty (session: Session<any>): void
  /** Takes the stored state of `loaded` (reload), dropping unsaved changes. */
  adopt (session: Session<any>, loaded: Session<any>): void
  /** From now on a change throws `error` (the response went out, or the request has no session). */
  lock (session: Session<any>, error: () => Error): void
  /** An empty session that reads like a visitor's and throws `FST_SESSION_NOT_LOADED` on any change. */
  visitor (): Session<any>
}
