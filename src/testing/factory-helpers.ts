// What the factory checks share: the plugin's steps before a save, loads that must (or must not)
// find a session, the optional methods a group needs, and a user index's entries.
import assert from 'node:assert/strict'
import type { IndexedSession, SessionFactory } from '../factory.js'
import { generateId } from '../id.js'
import { Session } from '../session.js'

/** The groups of the factory suite, as `groups` names them. */
export type Group = 'required' | 'recommended' | 'userIndex'

export const GROUP_TITLES: Record<Group, string> = { required: 'required', recommended: 'recommended', userIndex: 'user index' }

// What the plugin does before a save: an id for a new session, an expiry, the user to file it under.
export function prepare<D extends object> (session: Session<D>, ttlMs = 60_000, userId: string | null = null): Session<D> {
  if (session.isNew) session.id = generateId()
  session.touchedAt = Date.now()
  session.expiresAt = Date.now() + ttlMs
  session.filedUnder = userId
  return session
}

export async function saveNew (factory: SessionFactory<any>, data: Record<string, unknown>, ttlMs?: number, userId?: string | null): Promise<string> {
  return factory.save(prepare(new Session<any>(data), ttlMs, userId))
}

export async function mustLoad (factory: SessionFactory<any>, id: string): Promise<Session<any>> {
  const session = await factory.load(id)
  assert.ok(session instanceof Session, 'load() of a saved id must answer with a Session')
  return session
}

// Checks the answer without printing it: a failure report shows no session id or data.
export async function mustBeGone (factory: SessionFactory<any>, id: string, message: string): Promise<void> {
  assert.ok(await factory.load(id) === null, message)
}

type Method = 'destroy' | 'touch' | 'sessionsOf' | 'revokeUser'

/** The factory's optional method that a group needs, or a failure that says how to switch the group off. */
export function needs<M extends Method> (factory: SessionFactory<any>, method: M, group: Exclude<Group, 'required'>): NonNullable<SessionFactory<any>[M]> {
  const fn = factory[method]
  if (typeof fn !== 'function') {
    assert.fail(`the ${GROUP_TITLES[group]} checks need ${method}(), which this factory lacks: implement it, or switch the group off with groups: { ${group}: false } (or skip the checks that need it)`)
  }
  return fn.bind(factory) as NonNullable<SessionFactory<any>[M]>
}

/** A user index's entries, reduced to what the contract lists and in a stable order. */
export async function listed (factory: SessionFactory<any>, userId: string): Promise<IndexedSession[]> {
  const entries = await needs(factory, 'sessionsOf', 'userIndex')(userId)
  assert.ok(Array.isArray(entries), 'sessionsOf() must answer with an array')
  return entries
    .map(({ id, createdAt, touchedAt, expiresAt }) => ({ id, createdAt, touchedAt, expiresAt }))
    .sort(byId)
}

export function byId (a: IndexedSession, b: IndexedSession): number {
  return a.id.localeCompare(b.id)
}

export function entryOf (id: string, session: Session<any>): IndexedSession {
  return { id, createdAt: session.createdAt, touchedAt: session.touchedAt, expiresAt: session.expiresAt }
}
