import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify'
import { resolveCapabilities, type ResolvedCapabilities } from './capabilities.js'
import { SessionCookie } from './cookie.js'
import type { Admission } from './data-schema.js'
import { AfterSend, InvalidOptions, SaveAfterSend, SessionGone } from './errors.js'
import type { MaybePromise } from './factory.js'
import { FactoryGuard, isThenable, then } from './guard.js'
import { sharedCacheable, varyCookie } from './headers.js'
import { generateId, isCookieSafe } from './id.js'
import type { ResolvedOptions } from './options.js'
import type { RequestSession } from './request-session.js'
import { MAX_AGE_KEY, Session, assertJson, internals } from './session.js'
import { Timeouts } from './timeouts.js'
import { SessionCap } from './session-cap.js'

/**
 * A session's way through a request: the load in onRequest (the cookie verified, the factory
 * asked only for a genuine id), expiry and the `schema`, the session the handler sees, and in
 * onSend the one decision of what is written and which cookie goes out. `app.sessions` loads,
 * reloads and saves outside a route through the same steps.
 */
export class SessionLifecycle {
  readonly guard: FactoryGuard
  readonly cookie: SessionCookie
  /** What the factory declared it can do, read once at registration. */
  readonly capabilities: ResolvedCapabilities
  /** Where a request keeps its RequestSession (one slot per registration). */
  readonly slot: symbol
  /** `maxSessionsPerUser`, or null. */
  readonly cap: SessionCap | null
  readonly #options: ResolvedOptions
  readonly #timeouts: Timeouts
  /** The cookie path, when it is narrower than the whole site: requests outside it get no session work. */
  readonly #scope: string | null
  /** The factory has touch(); one without (a stateless one, by declaration) is rolled by a save, the only way to extend its record. */
  readonly #touches: boolean
  #warnedInsecure = false
  /** What `request.session` is on a request without session work: it reads like a visitor's. */
  readonly #visitor = internals.visitor()

  constructor (fastify: FastifyInstance, options: ResolvedOptions, slot: symbol) {
    this.#options = options
    this.capabilities = resolveCapabilities(options.factory)
    this.guard = new FactoryGuard(options.factory, options.storeTimeout)
    this.#touches = typeof options.factory.touch === 'function'
    // A self-authenticating factory's ids go in the cookie without an HMAC.
    this.cookie = new SessionCookie(fastify, options.cookie, options.secrets, this.capabilities.selfAuthenticatingIds)
    this.slot = slot
    this.cap = options.sessionCap === null ? null : new SessionCap(this.guard, options.sessionCap)
    this.#timeouts = new Timeouts(options.idleTimeout, options.absoluteTimeout)
    this.#scope = options.cookie.path === '/' ? null : options.cookie.path
  }

  /** Whether this request gets session work: not opted out, not skipped, and inside the cookie's path. */
  inScope (request: FastifyRequest): boolean {
    if (request.routeOptions.config.session === false) return false
    if (this.#options.skip !== undefined && this.#options.skip(request)) return false
    return this.#scope === null || pathMatches(request.url, this.#scope)
  }

  /** Starts a request: verifies the cookie, and asks the factory only for a genuine id. */
  load (state: RequestSession): MaybePromise<void> {
    const value = this.cookie.read(state.request)
    if (value === undefined) return
    state.hadCookie = true
    const signed = this.cookie.unsign(value)
    if (signed === null) {
      state.request.log.debug('session: cookie signature invalid, starting a fresh session')
      return
    }
    const found = this.guard.call<Session | null>('load', signed.id, state.request)
    return then(found, (session) => this.#loaded(state, signed.id, value, signed.renew, session))
  }

  /** A failed load: nothing is saved and no cookie changes on this request; reading the session throws. */
  failLoad (state: RequestSession, error: unknown): void {
    state.phase = 'done'
    state.failure = error
  }

  /** Takes what the factory found: nothing, a dead session (destroyed), or this request's session. */
  #loaded (state: RequestSession, id: string, value: string, renew: boolean, session: Session | null): MaybePromise<void> {
    if (session === null) {
      state.request.log.debug('session: unknown or expired id, starting a fresh session')
      state.stale = true
      return
    }
    // The plugin works on the session itself; the app gets its view (data keys as properties).
    session = internals.unwrap(session)
    const admitted = this.admit(session, state.request.log)
    if (admitted === 'rejected') {
      state.stale = true
      return this.discard(id, state.request)
    }
    state.migrated = admitted === 'migrated'
    session.id ??= id
    internals.setOwner(session, state)
    state.session = session
    state.cookieId = id
    state.cookieValue = value
    state.renew = renew
  }

  /**
   * A loaded session against the timeouts and the `schema`: 'rejected' (past a timeout, or data
   * the schema refuses and `migrate` does not upgrade), 'migrated' (an upgrade: a change to save) or 'valid'.
   */
  admit (session: Session, log: FastifyBaseLogger): Admission {
    if (this.#timeouts.isExpired(session, Date.now())) {
      log.debug('session: past its idle or absolute timeout, treated as gone')
      return 'rejected'
    }
    return this.#options.dataSchema?.admit(session, log) ?? 'valid'
  }

  /** The stored record of a dead session destroyed (a stateless factory keeps none). */
  discard (id: string, request?: FastifyRequest): MaybePromise<void> {
    if (this.capabilities.stateless) return
    return then(this.guard.call('destroy', id, request), noop)
  }

  /** The session the handler sees: the loaded one, a new one made on first use, or a visitor's where there is no session work. */
  handlerSession (state: RequestSession | null): Session {
    if (state === null) return this.#visitor
    if (state.failure !== null) throw state.failure
    state.accessed = true
    return internals.view(state.session ?? this.#fresh(state))
  }

  #fresh (state: RequestSession): Session {
    const session = internals.unwrap(new Session())
    internals.setOwner(session, state)
    // Made after the response went out: a change to it could never be saved.
    if (state.phase !== 'open') internals.lock(session, afterSend)
    state.session = session
    return session
  }

  /** The id of the session a request holds (loaded or saved), or null. */
  idOf (request: FastifyRequest): string | null {
    const state = (request as unknown as Record<symbol, RequestSession | null | undefined>)[this.slot]
    return state?.session?.id ?? state?.cookieId ?? null
  }

  /** `session.reload()` in a route: a session that was ended comes back new, and its cookie is cleared; a migrated one is saved in onSend. */
  async reloadNow (state: RequestSession): Promise<void> {
    const stored = !(state.session as Session).isNew
    const admitted = await this.reload(state.session as Session, state.request.log, state.request)
    state.migrated = admitted === 'migrated'
    if (admitted !== 'rejected') return
    if (stored) state.stale = true
    state.cookieId = state.cookieValue = null
  }

  /**
   * Reads the stored session again into `session`, unsaved changes dropped, through the `schema`
   * as a load: 'rejected' when it was ended or its data is refused (it comes back new and empty,
   * and refused data's record goes), 'migrated' when `migrate` upgraded it (a change to save).
   */
  async reload (session: Session, log: FastifyBaseLogger, request?: FastifyRequest): Promise<Admission> {
    const id = session.isNew ? null : session.id
    const found = id === null ? null : await this.guard.call<Session | null>('load', id, request)
    let admitted: Admission = 'rejected'
    if (found !== null && !this.#timeouts.isExpired(found, Date.now())) {
      found.id ??= id
      internals.adopt(session, found)
      // Admitted on the session itself: a migration's changes must survive to its save.
      admitted = this.#options.dataSchema?.admit(session, log) ?? 'valid'
      if (admitted === 'rejected') await this.discard(id as string, request)
    }
    if (admitted === 'rejected') internals.adopt(session, new Session())
    return admitted
  }

  /** `session.save()` in a route: the end-of-request write, now; headers go on the raw response too. */
  saveNow (state: RequestSession): Promise<void> {
    if (state.reply.raw.headersSent) return Promise.reject(new SaveAfterSend())
    state.byHand = true
    try {
      return Promise.resolve(this.commit(state))
    } catch (error) {
      return Promise.reject(error)
    }
  }

  /**
   * The one place that decides what a finished request writes: nothing, a touch, a save, a
   * destroy, a cookie. Cookies the handler did not cause (a re-signature, clearing a stale
   * cookie, a rolling refresh, a reseal) wait for a response that shared caches may not store.
   */
  commit (state: RequestSession): MaybePromise<void> {
    const deferCookies = sharedCacheable(state)
    let session = state.session
    if (session === null) {
      if (state.handled) session = this.#fresh(state)
      else return state.stale && !deferCookies ? state.clearCookie() : undefined
    }
    if (state.accessed) varyCookie(state)
    if (internals.destroyed(session)) return this.#destroy(state, session)
    if (internals.regenerated(session)) return this.#regenerate(state, session)
    if (session.isNew) {
      if (session.isModified || state.handled) return this.#save(state, session)
      return state.stale && !deferCookies ? state.clearCookie() : undefined
    }
    // A stateless factory's upgrade is a new cookie the handler did not cause: it waits for a response no shared cache keeps.
    if (state.migrated && deferCookies && !state.accessed && this.capabilities.stateless) return
    if (session.isModified) return this.#save(state, session)
    // `session.touch()`: extend the session now, whatever `rolling` says and however recent the last touch.
    if (internals.touchAsked(session)) return this.#touch(state, session, !deferCookies)
    // A touch sends no cookie; rolling by a save (a factory without touch, a stateless one) does, so it waits.
    // A persistent cookie's refresh rides with the touch, so that touch waits too.
    if (deferCookies) {
      const touchAlone = this.#options.rolling && this.#touches && this.#maxAge(session) === undefined
      return touchAlone ? this.#touchIfDue(state, session, false) ?? undefined : undefined
    }
    // An outdated session (sealed with an older key) is rewritten by a save, whatever changed.
    if (internals.outdated(session)) return this.#save(state, session)
    if (this.#options.rolling) {
      const touched = this.#touchIfDue(state, session, true)
      if (touched !== null) return touched
    }
    if (state.renew) return this.#resend(state, session, Date.now())
  }

  /** A touch when the last one is a tenth of the idle timeout old; null when none is due. */
  #touchIfDue (state: RequestSession, session: Session, refresh: boolean): MaybePromise<void> | null {
    if (Date.now() - session.touchedAt < this.#timeouts.touchEvery(this.#maxAge(session))) return null
    return this.#touch(state, session, refresh)
  }

  #touch (state: RequestSession, session: Session, refresh: boolean): MaybePromise<void> {
    // A factory without touch (a stateless one) is rolled by a save and a new cookie.
    if (!this.#touches) return refresh ? this.#save(state, session) : undefined
    const now = Date.now()
    this.#stamp(session, now)
    return then(this.guard.call('touch', session, state.request), () => {
      if (refresh && (state.renew || this.#maxAge(session) !== undefined)) return this.#resend(state, session, now)
    })
  }

  #destroy (state: RequestSession, session: Session): MaybePromise<void> {
    const restart = session.isModified
    // Data that cannot be saved fails the request before the old record goes.
    if (restart) this.#options.dataSchema?.assertValid(session)
    const stored = !session.isNew && session.id !== null
    return then(stored ? this.guard.call('destroy', session.id, state.request) : undefined, () => {
      internals.markNew(session)
      state.cookieId = state.cookieValue = null
      if (restart) return this.#save(state, session)
      if (state.hadCookie) state.clearCookie()
    })
  }

  /**
   * A new id for the session, the old record destroyed. When that record is already gone (a
   * concurrent logout), this is a logout too: nothing is written and the cookie is cleared.
   */
  #regenerate (state: RequestSession, session: Session): MaybePromise<void> {
    if (session.isNew || session.id === null) return this.#save(state, session)
    // The absolute timeout runs on for kept data (a rotation must not extend a stolen session); an emptied session starts anew.
    if (internals.emptied(session)) session.createdAt = Date.now()
    this.#options.dataSchema?.assertValid(session)
    return then(this.#removeStored(session.id, state.request), (removed) => {
      internals.markNew(session)
      state.cookieId = state.cookieValue = null
      if (!removed) {
        state.request.log.debug('session: regenerated a session whose record is gone, treating it as a logout')
        return this.#signedOut(state, session)
      }
      return this.#save(state, session)
    })
  }

  /** Destroys the stored record; whether a live one was there (asked of load() unless destroy() is declared to say). */
  #removeStored (id: string, request: FastifyRequest): MaybePromise<boolean> {
    if (this.capabilities.stateless) return then(this.guard.call<Session | null>('load', id, request), (found) => found !== null)
    if (this.capabilities.destroyReports) return then(this.guard.call<boolean | void>('destroy', id, request), isRemoved)
    return then(this.guard.call<Session | null>('load', id, request), (found) => {
      if (found === null) return false
      return then(this.guard.call<boolean | void>('destroy', id, request), isRemoved)
    })
  }

  #save (state: RequestSession, session: Session): MaybePromise<void> {
    const wasNew = session.isNew
    const lifetimeChanged = internals.keyChanged(session, MAX_AGE_KEY)
    const now = Date.now()
    this.prepareSave(session, now)
    // A login (a new session with a user, or a change of user) under maxSessionsPerUser; one check when the cap is off.
    const login = this.cap === null ? null : this.cap.loginOf(session, wasNew)
    let saving: MaybePromise<string>
    try {
      saving = this.guard.call<string>('save', session, state.request)
    } catch (error) {
      return this.#refused(state, session, error)
    }
    const saved = then(saving, (id) => {
      const sameCookie = id === state.cookieId
      internals.markSaved(session, id)
      if (!sameCookie || wasNew) return state.setCookie(id, now, this.#maxAge(session))
      // The same id again: the cookie the browser holds is right, unless its lifetime or signature must change.
      // A persistent cookie is rolled with every save, as its session is.
      if (lifetimeChanged || (!sharedCacheable(state) && (state.renew || (this.#options.rolling && this.#maxAge(session) !== undefined)))) {
        return this.#resend(state, session, now)
      }
    })
    const done = isThenable(saved) ? saved.catch((error: unknown) => this.#refused(state, session, error)) : saved
    // The cap after the login's save (its cookie is set: the login stands even if this fails) and before the response.
    return login === null ? done : then(done, () => (this.cap as SessionCap).afterSave(login, session, state.request))
  }

  /** FST_SESSION_GONE: the factory refused a rotation of a session whose user was signed out everywhere since its load. */
  #refused (state: RequestSession, session: Session, error: unknown): void {
    if (!(error instanceof SessionGone)) throw error
    state.request.log.debug('session: the factory refused a session its user was signed out of, treating it as a logout')
    this.#signedOut(state, session)
  }

  /** A logout: the session emptied and new again, nothing written, the client's cookie cleared. */
  #signedOut (state: RequestSession, session: Session): void {
    internals.empty(session)
    internals.markNew(session)
    state.cookieId = state.cookieValue = null
    if (state.hadCookie) state.clearCookie()
  }

  /** Before any save: the changed values checked (JSON, then the `schema`), a new session named (a cookie-safe id), the session stamped. */
  prepareSave (session: Session, now: number): void {
    const data = session.data as Record<string, unknown>
    for (const key of internals.changedKeys(session)) assertJson(data[key], `/${key}`)
    this.#options.dataSchema?.assertValid(session)
    if (session.isNew) {
      const generate = this.#options.idGenerator
      const id = generate()
      // Ours makes base64url; only the app's own generator is checked.
      if (generate !== generateId && !isCookieSafe(id)) throw new InvalidOptions('idGenerator() must return a non-empty string of printable ASCII without spaces, quotes, commas, semicolons or backslashes')
      session.id = id
    }
    this.#stamp(session, now)
  }

  /** Stamps the session before a save or touch: its activity, expiry and user. */
  #stamp (session: Session, now: number): void {
    session.touchedAt = now
    session.expiresAt = this.#timeouts.expiresAt(session, now)
    // In its one normal form; a value that is no user id throws (FST_SESSION_INVALID_USER), never files users together.
    if (this.#options.userOf !== undefined) session.filedUnder = this.#options.userOf(session.data)
  }

  /** Re-sends the cookie of an unchanged id, but never for a record that is gone (it may overwrite a newer login's cookie). */
  #resend (state: RequestSession, session: Session, now: number): MaybePromise<void> {
    const id = session.id as string
    if (this.capabilities.stateless) return state.setCookie(id, now, this.#maxAge(session))
    return then(this.guard.call<Session | null>('load', id, state.request), (found) => {
      if (found !== null) state.setCookie(id, now, this.#maxAge(session))
    })
  }

  #maxAge (session: Session): number | undefined {
    return internals.lifetime(session) ?? this.#options.cookie.maxAge
  }

  /** Whether the request came over https; warns once when a Secure cookie goes over plain http. */
  isHttps (request: FastifyRequest): boolean {
    const https = request.protocol === 'https'
    if (!https && this.#options.cookie.secure === true && !this.#warnedInsecure) {
      this.#warnedInsecure = true
      request.log.warn('session: cookie.secure is true but this request came over plain http; browsers keep a Secure cookie only over https. Behind a TLS proxy, set Fastify\'s trustProxy so request.protocol says https')
    }
    return https
  }

  close (): void {
    this.guard.close()
  }
}

function noop (): void {}

/** What destroy() answered: false alone says no live record was there. */
function isRemoved (removed: boolean | void): boolean {
  return removed !== false
}

/** What a change to a session after its response went out throws. */
export function afterSend (): Error {
  return new AfterSend()
}

/** RFC 6265 §5.1.4 path-match of the request's path against the cookie's path. */
function pathMatches (url: string, path: string): boolean {
  const query = url.indexOf('?')
  const requestPath = query === -1 ? url : url.slice(0, query)
  if (!requestPath.startsWith(path)) return false
  return requestPath.length === path.length || path.endsWith('/') || requestPath.charCodeAt(path.length) === 47
}
