import type { FastifyRequest } from 'fastify'
import { InvalidOptions } from './errors.js'
import type { IndexedSession, MaybePromise, SessionFactory } from './factory.js'
import { isThenable, then, type FactoryGuard } from './guard.js'
import { internals, type Session } from './session.js'
import type { UserKey } from './user.js'

/** The `maxSessionsPerUser` option, checked at registration. */
export interface CapPolicy {
  /** How many live sessions a user keeps. */
  max: number
  /** The top-level data key `userKey` reads; null for a function, which may read any key. */
  userRoot: string | null
}

/** Null without the option; throws FST_SESSION_INVALID_OPTIONS when it cannot work (no `userKey`, no user index). */
export function capPolicy (max: number | undefined, userKey: UserKey | undefined, factory: SessionFactory<any>): CapPolicy | null {
  if (max === undefined) return null
  if (userKey === undefined) {
    throw new InvalidOptions('/maxSessionsPerUser needs /userKey: the cap counts each user\'s sessions, so set userKey to what identifies the user (a key such as \'userId\', a path such as \'passport.user\', or a function)')
  }
  if (factory.capabilities?.userIndex !== true || typeof factory.destroy !== 'function') {
    const name: unknown = (factory as { constructor?: { name?: unknown } }).constructor?.name
    throw new InvalidOptions(`/maxSessionsPerUser needs a factory with a user index (sessionsOf and destroy), which ${typeof name === 'string' && name !== 'Object' ? name : 'this factory'} has not: use MemoryFactory, RedisFactory or PostgresFactory, or give your factory a user index (sessionsOf and revokeUser, declared with capabilities: { userIndex: true }; see docs/custom-factory.md)`)
  }
  return { max, userRoot: typeof userKey === 'string' ? userKey.slice(0, (userKey + '.').indexOf('.')) : null }
}

/**
 * `maxSessionsPerUser`: after a save that files a session under a user (a login), the user's
 * least recently seen sessions beyond the cap are ended, in the shared store, before the
 * response goes out. The session just saved is never ended by its own save.
 */
export class SessionCap {
  constructor (readonly guard: FactoryGuard, readonly policy: CapPolicy) {}

  /**
   * Before a save, once the session is stamped (`filedUnder` set): the user this save logs in,
   * or null. A new or regenerated session with a user is a login; so is a change of the key
   * `userKey` reads (of any key, for a function). Any other save costs this one check.
   */
  loginOf (session: Session, wasNew: boolean): string | null {
    const user = session.filedUnder
    if (user === null || wasNew) return user
    const root = this.policy.userRoot
    if (root === null) return session.isModified ? user : null
    for (const key of internals.changedKeys(session)) {
      if (key === root) return user
    }
    return null
  }

  /** After the login's save: ends the user's sessions beyond the cap, least recently seen first. */
  afterSave (user: string, session: Session, request?: FastifyRequest): MaybePromise<void> {
    // Refused (a concurrent sign-out everywhere): nothing was saved.
    if (session.isNew) return
    const keep = session.id as string
    return then(this.guard.call<IndexedSession[]>('sessionsOf', user, request), (listed) => {
      const others = listed.filter((entry) => entry.id !== keep)
      // Not listed: a concurrent login's cap ended it already, and that login keeps the cap.
      if (others.length === listed.length) return
      const excess = others.length - (this.policy.max - 1)
      if (excess <= 0) return
      return this.#end(others.sort(leastRecentlySeenFirst).slice(0, excess), request)
    })
  }

  /** All at once, each through the guard; with a synchronous factory, no promise is made. */
  #end (ending: IndexedSession[], request: FastifyRequest | undefined): MaybePromise<void> {
    let pending = false
    const answers = ending.map((entry) => {
      try {
        const answer = this.guard.call('destroy', entry.id, request)
        pending ||= isThenable(answer)
        return answer
      } catch (error) {
        // Settled with the others, so none of their failures goes unhandled.
        pending = true
        return Promise.reject(error)
      }
    })
    if (pending) return Promise.all(answers).then(noop)
  }
}

function noop (): void {}

function leastRecentlySeenFirst (a: IndexedSession, b: IndexedSession): number {
  return a.touchedAt - b.touchedAt || a.createdAt - b.createdAt || Number(a.id > b.id) - Number(a.id < b.id)
}
