import { InvalidUser } from './errors.js'
import { internals, type Session } from './session.js'

/** What the `userKey` option may be: a data key, a dotted path into the data, or a function of the data. */
export type UserKey = string | ((data: Readonly<Record<string, any>>) => unknown)

/** Reads the session's user out of its data, in its normal form (null: no user). */
export type UserReader = (data: Readonly<Record<string, unknown>>) => string | null

/**
 * The one normal form of a user id, for filing and for list/end/endAll: a string as it is, a
 * finite number as its decimal string (42 and '42' are one user). Anything else would file
 * users together ('[object Object]') or nowhere: it throws FST_SESSION_INVALID_USER.
 */
export function normalUserId (value: unknown): string {
  if (typeof value === 'string' && value !== '') return value
  if (typeof value === 'number' && Number.isFinite(value)) return String(value)
  throw new InvalidUser(describe(value))
}

/** The reader for a `userKey` option: a key, a dotted path ('passport.user') or a function. */
export function userReader (userKey: UserKey): UserReader {
  const read = typeof userKey === 'function' ? userKey : pathReader(userKey.split('.'))
  return (data) => {
    const value = read(data)
    return value === undefined || value === null ? null : normalUserId(value)
  }
}

function pathReader (path: string[]): (data: Readonly<Record<string, unknown>>) => unknown {
  if (path.length === 1) {
    const key = path[0] as string
    return (data) => data[key]
  }
  return (data) => {
    let value: unknown = data
    for (const key of path) {
      if (typeof value !== 'object' || value === null || !Object.hasOwn(value, key)) return undefined
      value = (value as Record<string, unknown>)[key]
    }
    return value
  }
}

/** What the error says the value was: its kind, never its content (it is session data). */
function describe (value: unknown): string {
  if (value === '') return 'an empty string'
  if (typeof value === 'number') return String(value)
  if (Array.isArray(value)) return 'an array'
  if (value === null) return 'null'
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`
}

/** How a save treats the user index, from what the factory remembers of the session's load. */
export interface UserFiling {
  /** The session's user now (normal form), or null. */
  userId: string | null
  /**
   * File the record under `userId` (or out of every index for null). False: the user is the
   * one the record was loaded with, so the index stays as the store has it now.
   */
  refile: boolean
  /**
   * A new record of a user it was loaded with (a rotation): the generation it was filed with,
   * which the save must find still current. Null: take the user's current one (a login).
   */
  generation: number | null
}

interface Known { userId: string | null, generation: number }

/**
 * What a factory with a user index remembers of each session it loaded or saved: the user and
 * the generation of its record. Kept on the Session object itself (under a symbol of this
 * instance's own), so a rotation, which keeps the object and gives it a new id, carries them
 * to its save; and a session's view and the session behind it read the same slot.
 */
export class LoadedUsers {
  readonly #slot = Symbol('fastify-session-factory.loadedUser')

  /** After a load or a save: the record names this user (null: none) at this generation (null: never filed, 0). */
  remember (session: Session<any>, userId: string | null, generation: number | null): void {
    // On the session itself: written through its view, the slot would cost a proxy trap.
    (internals.unwrap(session) as unknown as Record<symbol, Known>)[this.#slot] = { userId, generation: generation ?? 0 }
  }

  /** What a save of `session` does with the index. */
  filingOf (session: Session<any>): UserFiling {
    const userId = session.filedUnder ?? null
    const known = (internals.unwrap(session) as unknown as Record<symbol, Known | undefined>)[this.#slot]
    const continues = known !== undefined && known.userId === userId
    if (session.isNew) return { userId, refile: userId !== null, generation: continues && userId !== null ? known.generation : null }
    return { userId, refile: !continues, generation: null }
  }
}
