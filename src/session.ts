// The Session's public face, made of session-data.ts (what a session holds and how it is
// stored), session-internals.ts (what the plugin hangs on it and reads of it), session-view.ts
// (data keys as properties) and session-base.ts (the class).
import { SessionBase } from './session-base.js'
import type { SessionData, SessionRecord } from './session-data.js'

export { MAX_AGE_KEY, MAX_AGE_LIMIT, assertJson, readTimestamp, type RequestSessionData, type SessionData, type SessionRecord, type SessionTypes } from './session-data.js'
export type { SessionInternals, SessionOwner } from './session-internals.js'
export { internals } from './session-base.js'

/**
 * A session: its data, and what the plugin needs to load and save it. Data keys are also its
 * properties (`session.user = x`, `delete session.user`, `Object.keys(session)`), as on the peers.
 */
export type Session<D extends object = SessionData> = SessionBase<D> & Partial<D>

/** The Session class: `new Session(data?, id?)`, `Session.fromJSON(record)`. */
export interface SessionConstructor {
  new <D extends object = SessionData>(data?: Partial<NoInfer<D>>, id?: string | null): Session<D>
  readonly prototype: SessionBase<any>
  fromJSON<D extends object = SessionData> (record: SessionRecord<D>): Session<D>
}

// eslint-disable-next-line @typescript-eslint/no-redeclare
export const Session = SessionBase as unknown as SessionConstructor
