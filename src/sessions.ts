import { createHmac } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import type { SessionCookie } from './cookie.js'
import { IdChanged, NoUserIndex, SessionGone } from './errors.js'
import type { IndexedSession } from './factory.js'
import type { Admission } from './data-schema.js'
import type { FactoryGuard } from './guard.js'
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

/** What the instance API needs of the plugin's session manager. */
export interface SessionEngine {
  readonly guard: FactoryGuard
  readonly cookie: SessionCookie
  readonly secret: string
  prepareSave (session: Session, now: number): void
  isExpired (session: Session, now: number): boolean
  /** The loaded data against the `schema` option ('migrated': upgraded, to be saved back). */
  admit (session: Session): Admission
  /** [session-cap] `maxSessionsPerUser`, or null. */
  readonly cap: SessionCap | null
  /** The id of the session a request holds (loaded or saved), or null. */
  idOf (request: FastifyRequest): string | null
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
  readonly #engine: SessionEngine
  readonly #detached: SessionOwner

  constructor (engine: SessionEngine) {
    this.#engine = engine
    this.#detached = {
      saveNow: (session) => this.#saveDetached(session),
      reloadNow: (session) => this.#reloadDetached(session)
    }
  }

  /**
   * The user's live sessions, oldest first; `request` marks the one it holds as `current`. A user
   * id is a string or a finite number (42 and '42' are one user); anything else rejects with
   * FST_SESSION_INVALID_USER, here and in `end` and `endAll`.
   */
  async list (userId: string | number, options: { request?: FastifyRequest } = {}): Promise<UserSession[]> {
    const current = options.request === undefined ? null : this.#engine.idOf(options.request)
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
    const keep = options.except === undefined ? null : this.#engine.idOf(options.except)
    const guard = this.#engine.guard
    if (typeof guard.factory.sessionsOf === 'function' && typeof guard.factory.revokeUser === 'function') {
      await guard.call('revokeUser', user, undefined, keep)
    }
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
    const value = this.#engine.cookie.readHeader(header)
    if (value === undefined) return null
    const signed = this.#engine.cookie.unsign(value)
    if (signed === null) return null
    const session = await this.#engine.guard.call<Session | null>('load', signed.id)
    if (session === null) return null
    const admitted = this.#engine.isExpired(session, Date.now()) ? 'rejected' : this.#engine.admit(session)
    if (admitted === 'rejected') {
      await this.#destroy(signed.id)
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
    this.#engine.prepareSave(session, Date.now())
    const login = this.#engine.cap === null ? null : this.#engine.cap.loginOf(session, true) // [session-cap]
    const id = await this.#engine.guard.call<string>('save', session)
    if (login !== null) await this.#capAfterSave(login, session, id) // [session-cap]
    return `${this.#engine.cookie.name}=${encodeURIComponent(this.#engine.cookie.sign(id))}`
  }

  async #indexed (userId: string | number): Promise<IndexedSession[]> {
    const user = normalUserId(userId)
    const factory = this.#engine.guard.factory
    if (typeof factory.sessionsOf !== 'function') throw new NoUserIndex(factory.constructor?.name ?? 'the factory')
    return await this.#engine.guard.call<IndexedSession[]>('sessionsOf', user)
  }

  async #destroy (id: string): Promise<void> {
    if (this.#engine.guard.factory.destroy !== undefined) await this.#engine.guard.call('destroy', id)
  }

  #handleOf (id: string): string {
    return createHmac('sha256', this.#engine.secret).update(`handle:${id}`).digest('base64url').slice(0, 22)
  }

  /**
   * `session.reload()` outside a route: the stored session again, through the `schema` as a load;
   * one that was ended (or whose data the schema refuses) comes back new and empty.
   */
  async #reloadDetached (session: Session): Promise<void> {
    const id = session.isNew ? null : session.id
    const found = id === null ? null : await this.#engine.guard.call<Session | null>('load', id)
    if (found === null || this.#engine.isExpired(found, Date.now())) {
      internals.adopt(session, new Session())
      return
    }
    found.id ??= id
    internals.adopt(session, found)
    const admitted = this.#engine.admit(session)
    if (admitted === 'rejected') {
      internals.adopt(session, new Session())
      await this.#destroy(id as string)
    } else if (admitted === 'migrated') {
      // Saved back now, as load() does: no route will.
      await this.#saveDetached(session).catch(unlessIdChanged)
    }
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
    this.#engine.prepareSave(session, Date.now())
    const login = this.#engine.cap === null ? null : this.#engine.cap.loginOf(session, false) // [session-cap]
    const saved = await this.#engine.guard.call<string>('save', session)
    if (saved !== id) throw new IdChanged('this factory')
    // A store-backed factory leaves a record ended meanwhile (sign out everywhere) gone: say so.
    if (this.#engine.guard.factory.destroy !== undefined && await this.#engine.guard.call<Session | null>('load', id) === null) {
      throw new SessionGone()
    }
    if (login !== null) return await this.#capAfterSave(login, session, saved) // [session-cap]
    internals.markSaved(session, saved)
  }

  /** [session-cap] The login's cap, once its save stands (marked saved): a failure rejects, the save stays. */
  async #capAfterSave (login: string, session: Session, id: string): Promise<void> {
    internals.markSaved(session, id)
    await (this.#engine.cap as SessionCap).afterSave(login, session)
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
