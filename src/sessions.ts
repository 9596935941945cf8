import { createHmac } from 'node:crypto'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import { IdChanged, NoUserIndex, SessionGone } from './errors.js'
import type { IndexedSession } from './factory.js'
import type { SessionLifecycle } from './lifecycle.js'
import type { SessionCap } from './session-cap.js'
import { Session, internals, type SessionData, type SessionOwner } from './session.js'
import { normalUserId } from './user.js'

/** One live session of a user, as `list()` shows it: never its id, which is a bearer credential. */
export interface UserSession {
  /** Opaque and stable: what `end()` takes. */
  handle: string
  createdAt: number
  /** When the session was last saved or touched (epoch ms). */
  lastSeenAt: number
  expiresAt: number | null
  /** It is the session of the request passed to `list()`. */
  current: boolean
}

/** Anything that carries a Cookie header: an IncomingMessage, a Fastify request, a socket.io handshake. */
export interface WithCookieHeader {
  headers: { cookie?: string | undefined }
}

/**
 * The sessions of one plugin registration, outside the request lifecycle: a user's sessions
 * (list them, end one, end all: "sign out everywhere"), and the session behind a Cookie header
 * for code that runs outside a route (socket.io, a raw WebSocket server, server-sent events).
 */
export class Sessions<D extends object = SessionData> {
  readonly #lifecycle: SessionLifecycle
  /** The registration's logger: what a load outside a route logs with. */
  readonly #log: FastifyBaseLogger
  /** Signs the handles `list()` shows. */
  readonly #secret: string
  /** What `save()` and `reload()` of a session loaded here reach. */
  readonly #detached: SessionOwner

  constructor (lifecycle: SessionLifecycle, log: FastifyBaseLogger, secret: string) {
    this.#lifecycle = lifecycle
    this.#log = log
    this.#secret = secret
    this.#detached = {
      saveNow: (session) => this.#saveDetached(session),
      // One that was ended comes back new and empty; with no reply, no cookie can change.
      // A migrated one is saved back now, as load() does: no route will.
      reloadNow: async (session) => {
        if (await lifecycle.reload(session, log) === 'migrated') await this.#saveDetached(session).catch(unlessIdChanged)
      }
    }
  }

  /**
   * The user's live sessions, oldest first; `request` marks the one it holds as `current`. A user
   * id is a string or a finite number (42 and '42' are one user); anything else rejects with
   * FST_SESSION_INVALID_USER, here and in `end` and `endAll`.
   */
  async list (userId: string | number, options: { request?: FastifyRequest } = {}): Promise<UserSession[]> {
    const current = options.request === undefined ? null : this.#lifecycle.idOf(options.request)
    const found = await this.#indexed(userId)
    return found
      .map((entry) => ({
        handle: this.#handleOf(entry.id),
        createdAt: entry.createdAt,
        lastSeenAt: entry.touchedAt,
        expiresAt: entry.expiresAt,
        current: entry.id === current
      }))
      .sort((a, b) => a.createdAt - b.createdAt)
  }

  /** Ends the user's session with this handle; false when it is not (or no longer) theirs. */
  async end (userId: string | number, handle: string): Promise<boolean> {
    const entry = (await this.#indexed(userId)).find((candidate) => this.#handleOf(candidate.id) === handle)
    if (entry === undefined) return false
    await this.#destroy(entry.id)
    return true
  }

  /**
   * Ends every session of the user, on every instance; `except` keeps the one that request holds.
   * How many ended. The factory's `revokeUser` goes first: a request that loaded a session of the
   * user before this call cannot rotate it into a new id that the listing below would miss.
   */
  async endAll (userId: string | number, options: { except?: FastifyRequest } = {}): Promise<number> {
    const user = normalUserId(userId)
    const keep = options.except === undefined ? null : this.#lifecycle.idOf(options.except)
    if (this.#lifecycle.capabilities.userIndex) await this.#lifecycle.guard.call('revokeUser', user, undefined, keep)
    const ending = (await this.#indexed(user)).filter((entry) => entry.id !== keep)
    await Promise.all(ending.map((entry) => this.#destroy(entry.id)))
    return ending.length
  }

  /**
   * The session behind a Cookie header (or a request carrying one), with the same signature
   * check, timeouts and errors as a route; null for none, a forged cookie, or a dead session.
   * `await session.save()` writes changes back (the id, and so the client's cookie, stays).
   */
  async load (source: string | WithCookieHeader | undefined): Promise<Session<D> | null> {
    const header = cookieHeaderOf(source)
    if (header === null) return null
    const value = this.#lifecycle.cookie.readHeader(header)
    if (value === undefined) return null
    const signed = this.#lifecycle.cookie.unsign(value)
    if (signed === null) return null
    const session = await this.#lifecycle.guard.call<Session | null>('load', signed.id)
    if (session === null) return null
    const admitted = this.#lifecycle.admit(session, this.#log)
    if (admitted === 'rejected') {
      await this.#lifecycle.discard(signed.id)
      return null
    }
    session.id ??= signed.id
    internals.setOwner(session, this.#detached)
    // Saved back now; a stateless factory's upgrade needs a new cookie, which waits for a route to send it.
    if (admitted === 'migrated') await this.#saveDetached(session).catch(unlessIdChanged)
    return session as unknown as Session<D>
  }

  /**
   * Stores a new session holding `data` in the factory and answers the Cookie header that
   * carries it (`sid=<signed id>`): what a test sends to start logged in.
   */
  async cookieFor (data: Partial<D>): Promise<string> {
    const session = new Session<any>(data)
    this.#lifecycle.prepareSave(session, Date.now())
    const login = this.#lifecycle.cap === null ? null : this.#lifecycle.cap.loginOf(session, true)
    const id = await this.#lifecycle.guard.call<string>('save', session)
    if (login !== null) await this.#capAfterSave(login, session, id)
    return `${this.#lifecycle.cookie.name}=${encodeURIComponent(this.#lifecycle.cookie.sign(id))}`
  }

  async #indexed (userId: string | number): Promise<IndexedSession[]> {
    const user = normalUserId(userId)
    const factory = this.#lifecycle.guard.factory
    if (!this.#lifecycle.capabilities.userIndex) throw new NoUserIndex(factory.constructor?.name ?? 'the factory')
    return await this.#lifecycle.guard.call<IndexedSession[]>('sessionsOf', user)
  }

  async #destroy (id: string): Promise<void> {
    await this.#lifecycle.guard.call('destroy', id)
  }

  #handleOf (id: string): string {
    return createHmac('sha256', this.#secret).update(`handle:${id}`).digest('base64url').slice(0, 22)
  }

  /** `session.save()` of a session loaded outside a route: no reply, so no cookie can change. */
  async #saveDetached (session: Session): Promise<void> {
    const id = session.id as string
    if (internals.destroyed(session)) {
      await this.#destroy(id)
      internals.markNew(session)
      return
    }
    if (internals.regenerated(session)) throw new IdChanged('regenerate()')
    if (!session.isModified && !internals.outdated(session)) return
    this.#lifecycle.prepareSave(session, Date.now())
    const login = this.#lifecycle.cap === null ? null : this.#lifecycle.cap.loginOf(session, false)
    const saved = await this.#lifecycle.guard.call<string>('save', session)
    if (saved !== id) throw new IdChanged('this factory')
    // A store-backed factory leaves a record ended meanwhile (sign out everywhere) gone: say so.
    if (!this.#lifecycle.capabilities.stateless && await this.#lifecycle.guard.call<Session | null>('load', id) === null) {
      throw new SessionGone()
    }
    if (login !== null) return await this.#capAfterSave(login, session, saved)
    internals.markSaved(session, saved)
  }

  /** `maxSessionsPerUser` after a login's save, once the save stands (marked saved): a failure rejects, the save stays. */
  async #capAfterSave (login: string, session: Session, id: string): Promise<void> {
    internals.markSaved(session, id)
    await (this.#lifecycle.cap as SessionCap).afterSave(login, session)
  }
}

/** The Cookie header of a string, or of an object with `headers.cookie`; null for anything else. */
function cookieHeaderOf (source: unknown): string | null {
  if (typeof source === 'string') return source === '' ? null : source
  if (typeof source !== 'object' || source === null) return null
  const headers: unknown = (source as { headers?: unknown }).headers
  if (typeof headers !== 'object' || headers === null) return null
  const cookie: unknown = (headers as { cookie?: unknown }).cookie
  return typeof cookie === 'string' && cookie !== '' ? cookie : null
}

function unlessIdChanged (error: unknown): void {
  if ((error as { code?: unknown } | null)?.code !== 'FST_SESSION_ID_CHANGED') throw error
}
