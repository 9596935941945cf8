import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import { SessionCookie } from './cookie.js'
import { AfterSend, InvalidOptions, SaveAfterSend, SessionGone, StoreUnavailable } from './errors.js'
import { FactoryGuard, isThenable, then, type Maybe } from './guard.js'
import { putCookie, sharedCacheable, varyCookie, type HeaderTarget } from './headers.js'
import { isCookieSafe } from './id.js'
import { resolveOptions, type ResolvedOptions, type SessionPluginOptions } from './options.js'
import type { Admission } from './data-schema.js'
import { MAX_AGE_KEY, Session, assertJson, internals, readTimestamp, type RequestSessionData, type SessionOwner } from './session.js'
import { Sessions } from './sessions.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The request's session (or the name given by the `decorator` option). */
    session: Session<RequestSessionData>
  }
  interface FastifyInstance {
    /**
     * The sessions of this registration outside a request: a user's sessions (list, end, end
     * all) and the session behind a Cookie header. Named after `decorator` plus "s".
     */
    sessions: Sessions<RequestSessionData>
  }
  interface FastifyContextConfig {
    /** `false` skips loading and saving the session on this route. */
    session?: boolean
  }
}

export async function plugin (fastify: FastifyInstance, options: SessionPluginOptions): Promise<void> {
  const resolved = resolveOptions(options)
  // Registered after ours, @fastify/cookie fails with Fastify's own FST_ERR_DEC_ALREADY_PRESENT.
  if (!fastify.hasPlugin('@fastify/cookie')) await fastify.register(fastifyCookie)

  const manager = new SessionManager(fastify, resolved)
  // Each registration has its own slot, so several decorators (or sibling scopes) never collide.
  const kState = Symbol(`fastify-session-factory:${resolved.decorator}`)
  type WithState = FastifyRequest & { [kState]: RequestState | null }

  fastify.decorateRequest(kState, null)
  fastify.decorateRequest(resolved.decorator, {
    getter (this: FastifyRequest) {
      return manager.sessionOf((this as WithState)[kState])
    }
  })

  fastify.decorate(`${resolved.decorator}s`, new Sessions({
    guard: manager.guard,
    cookie: manager.cookie,
    secret: resolved.secrets[0] as string,
    prepareSave: (session, now) => manager.prepareSave(session, now),
    isExpired: (session, now) => manager.isExpired(session, now),
    admit: (session) => manager.admit(session, fastify.log),
    idOf (request) {
      const state = (request as WithState)[kState]
      return state?.session?.id ?? state?.cookieId ?? null
    }
  }))

  fastify.addHook('onRequest', function loadSession (request, reply, done) {
    if (!manager.inScope(request)) return done()
    const state = new RequestState(manager, request, reply)
    ;(request as WithState)[kState] = state
    let loading: Maybe<void>
    try {
      loading = manager.load(state)
    } catch (error) {
      manager.failLoad(state, error)
      return done()
    }
    if (!isThenable(loading)) return done()
    // A failed load fails only the requests that read the session: the first read throws it.
    // A promise returned to Fastify settles the hook, and a throw in what follows cannot escape.
    return loading.then(undefined, (error: unknown) => manager.failLoad(state, error))
  })

  if (resolved.saveUninitialized) {
    // saveUninitialized stores a session for requests that reached a handler, not for a 400 or a 404.
    fastify.addHook('preHandler', function reachedHandler (request, _reply, done) {
      const state = (request as WithState)[kState]
      if (state !== null && !request.is404) state.handled = true
      done()
    })
  }

  fastify.addHook('onSend', function saveSession (request, _reply, payload, done) {
    const state = (request as WithState)[kState]
    if (state === null || state.phase === 'done') return done(null, payload)
    // A second send while the first one's session work is still running (`reply.send()` without
    // `return`, a send from a hook and a returned value): the first response goes out, whole,
    // and this one is dropped here, as Fastify drops a send after the reply went out.
    if (state.phase === 'saving') {
      // A dropped stream would hold its file handle open for good.
      if (isStream(payload)) payload.destroy()
      return
    }
    state.phase = 'saving'
    // From here on a change could not be saved: it throws instead of being lost.
    if (state.session !== null) internals.lock(state.session, afterSend)
    let pending: Maybe<void>
    try {
      pending = manager.commit(state)
    } catch (error) {
      state.phase = 'done'
      return done(error as Error)
    }
    if (!isThenable(pending)) {
      state.phase = 'done'
      return done(null, payload)
    }
    return pending.then(() => {
      state.phase = 'done'
      return payload
    }, (error: unknown) => {
      state.phase = 'done'
      throw error
    })
  })

  fastify.addHook('onClose', async () => {
    manager.close()
    await manager.guard.factory.close?.()
  })
}

/** One request's view of its session: what came in with the cookie, and what must go out. */
class RequestState implements SessionOwner, HeaderTarget {
  session: Session | null = null
  /** The handler (or a hook) read `request.session`. */
  accessed = false
  /** The id of the loaded session, and the signed cookie value it came in. */
  cookieId: string | null = null
  cookieValue: string | null = null
  /** The cookie was signed with an older secret: re-issue it signed with the first. */
  renew = false
  /** The request sent our cookie, valid or not. */
  hadCookie = false
  /** The cookie named a session that is gone: clear it unless a new session replaces it. */
  stale = false
  /** 'saving' while onSend's session work runs; 'done' after it (or after a failed load: the error reply leaves everything as it was). */
  phase: 'open' | 'saving' | 'done' = 'open'
  /** The handler called `session.save()`: headers go on the raw response as well. */
  byHand = false
  /** The request reached its handler (tracked only with saveUninitialized). */
  handled = false
  /** The load failed: the first read of the session throws this. */
  failure: unknown = null
  /** `migrate` upgraded the loaded data: a change the handler did not make. */
  migrated = false

  constructor (
    readonly manager: SessionManager,
    readonly request: FastifyRequest,
    readonly reply: FastifyReply
  ) {}

  saveNow (): Promise<void> {
    return this.manager.saveNow(this)
  }

  reloadNow (): Promise<void> {
    return this.manager.reloadNow(this)
  }
}

/** Loads in onRequest, decides and saves in onSend: the whole lifecycle of one session setup. */
class SessionManager {
  readonly guard: FactoryGuard
  readonly cookie: SessionCookie
  readonly #options: ResolvedOptions
  readonly #idleMs: number
  readonly #absoluteMs: number
  /** At most one touch (and one rolling cookie refresh) per tenth of the idle timeout. */
  readonly #touchEveryMs: number
  /** The cookie path, when it is narrower than the whole site: requests outside it get no session work. */
  readonly #scope: string | null
  /** The factory's destroy() said whether it removed a record: no load is needed to find out. */
  #destroyReports = false
  #warnedInsecure = false
  /** What `request.session` is on a request without session work: it reads like a visitor's. */
  readonly #visitor = internals.visitor()

  constructor (fastify: FastifyInstance, options: ResolvedOptions) {
    this.#options = options
    this.guard = new FactoryGuard(options.factory, options.storeTimeout)
    // speed (#24): a self-authenticating factory's ids go in the cookie without an HMAC.
    this.cookie = new SessionCookie(fastify, options.cookie, options.secrets, options.factory.capabilities?.selfAuthenticatingIds === true)
    this.#idleMs = options.idleTimeout * 1000
    this.#absoluteMs = options.absoluteTimeout * 1000
    this.#touchEveryMs = this.#idleMs / 10
    this.#scope = options.cookie.path === '/' ? null : options.cookie.path
  }

  /** Whether this request gets session work: not opted out, not skipped, and inside the cookie's path. */
  inScope (request: FastifyRequest): boolean {
    if (request.routeOptions.config.session === false) return false
    if (this.#options.skip !== undefined && this.#options.skip(request)) return false
    return this.#scope === null || pathMatches(request.url, this.#scope)
  }

  /** Starts a request: verifies the cookie, and asks the factory only for a genuine id. */
  load (state: RequestState): Maybe<void> {
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
  failLoad (state: RequestState, error: unknown): void {
    state.phase = 'done'
    state.failure = error
  }

  /** Takes what the factory found: nothing, a dead session (destroyed), or this request's session. */
  #loaded (state: RequestState, id: string, value: string, renew: boolean, session: Session | null): Maybe<void> {
    if (session === null) {
      state.request.log.debug('session: unknown or expired id, starting a fresh session')
      state.stale = true
      return
    }
    // The plugin works on the session itself; the app gets its view (data keys as properties).
    session = internals.unwrap(session)
    if (this.isExpired(session, Date.now())) {
      state.request.log.debug('session: past its idle or absolute timeout, starting a fresh session')
      return this.#discard(state, id)
    }
    // Data the schema refuses, and migrate() does not upgrade, is dead too; an upgrade is a change, saved in onSend.
    const admitted = this.admit(session, state.request.log)
    if (admitted === 'rejected') return this.#discard(state, id)
    state.migrated = admitted === 'migrated'
    session.id ??= id
    internals.setOwner(session, state)
    state.session = session
    state.cookieId = id
    state.cookieValue = value
    state.renew = renew
  }

  /** A loaded session that is dead: its record destroyed, the cookie cleared, a fresh session. */
  #discard (state: RequestState, id: string): Maybe<void> {
    state.stale = true
    if (this.guard.factory.destroy === undefined) return
    return then(this.guard.call('destroy', id, state.request), noop)
  }

  /** A loaded session's data against the `schema` option: valid, upgraded by `migrate`, or rejected. */
  admit (session: Session, log: FastifyBaseLogger): Admission {
    return this.#options.dataSchema?.admit(session, log) ?? 'valid'
  }

  /** The session the handler sees: the loaded one, a new one made on first use, or a visitor's where there is no session work. */
  sessionOf (state: RequestState | null): Session {
    if (state === null) return this.#visitor
    if (state.failure !== null) throw state.failure
    state.accessed = true
    return internals.view(state.session ?? this.#fresh(state))
  }

  #fresh (state: RequestState): Session {
    const session = internals.unwrap(new Session())
    internals.setOwner(session, state)
    // Made after the response went out: a change to it could never be saved.
    if (state.phase !== 'open') internals.lock(session, afterSend)
    state.session = session
    return session
  }

  /** `session.reload()`: the stored session again, unsaved changes dropped; one that was ended comes back new and empty. */
  async reloadNow (state: RequestState): Promise<void> {
    const session = state.session as Session
    const id = session.isNew ? null : session.id
    const found = id === null ? null : await this.guard.call<Session | null>('load', id, state.request)
    if (found === null || this.isExpired(found, Date.now())) {
      if (id !== null) state.stale = true
      internals.adopt(session, new Session())
      state.cookieId = state.cookieValue = null
      return
    }
    found.id ??= id
    internals.adopt(session, found)
  }

  saveNow (state: RequestState): Promise<void> {
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
  commit (state: RequestState): Maybe<void> {
    const deferCookies = sharedCacheable(state)
    let session = state.session
    if (session === null) {
      if (state.handled) session = this.#fresh(state)
      else return state.stale && !deferCookies ? this.#clearCookie(state) : undefined
    }
    if (state.accessed) varyCookie(state)
    if (internals.destroyed(session)) return this.#destroy(state, session)
    if (internals.regenerated(session)) return this.#regenerate(state, session)
    if (session.isNew) {
      if (session.isModified || state.handled) return this.#save(state, session)
      return state.stale && !deferCookies ? this.#clearCookie(state) : undefined
    }
    // A stateless factory's upgrade is a new cookie the handler did not cause: it waits for a response no shared cache keeps.
    if (state.migrated && deferCookies && !state.accessed && this.guard.factory.destroy === undefined) return
    if (session.isModified) return this.#save(state, session)
    // `session.touch()`: extend the session now, whatever `rolling` says and however recent the last touch.
    if (internals.touchAsked(session)) return this.#touch(state, session, !deferCookies)
    // A server-side touch sends no cookie; rolling by a save (a stateless factory) does, so it waits.
    // A persistent cookie's refresh rides with the touch, so that touch waits too.
    if (deferCookies) {
      const touchAlone = this.#options.rolling && this.guard.factory.touch !== undefined && this.#maxAge(session) === undefined
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
  #touchIfDue (state: RequestState, session: Session, refresh: boolean): Maybe<void> | null {
    if (Date.now() - session.touchedAt < this.#touchEvery(session)) return null
    return this.#touch(state, session, refresh)
  }

  #touch (state: RequestState, session: Session, refresh: boolean): Maybe<void> {
    // A factory without touch (a stateless one) is rolled by a save and a new cookie.
    if (this.guard.factory.touch === undefined) return refresh ? this.#save(state, session) : undefined
    const now = Date.now()
    this.#stamp(session, now)
    return then(this.guard.call('touch', session, state.request), () => {
      if (refresh && (state.renew || this.#maxAge(session) !== undefined)) return this.#resend(state, session, now)
    })
  }

  #destroy (state: RequestState, session: Session): Maybe<void> {
    const restart = session.isModified
    // Data that cannot be saved fails the request before the old record goes.
    if (restart) this.#options.dataSchema?.assertValid(session)
    const stored = !session.isNew && session.id !== null && this.guard.factory.destroy !== undefined
    return then(stored ? this.guard.call('destroy', session.id, state.request) : undefined, () => {
      internals.markNew(session)
      state.cookieId = state.cookieValue = null
      if (restart) return this.#save(state, session)
      if (state.hadCookie) this.#clearCookie(state)
    })
  }

  /**
   * A new id for the session, the old record destroyed. When that record is already gone (a
   * concurrent logout), this is a logout too: nothing is written and the cookie is cleared.
   */
  #regenerate (state: RequestState, session: Session): Maybe<void> {
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

  /** Destroys the stored record; whether a live one was there (asked of load() when destroy() does not say). */
  #removeStored (id: string, request: FastifyRequest): Maybe<boolean> {
    const factory = this.guard.factory
    if (factory.destroy === undefined) return then(this.guard.call<Session | null>('load', id, request), (found) => found !== null)
    const destroy = (): Maybe<boolean | undefined> => then(this.guard.call<boolean | void>('destroy', id, request), (removed) => {
      if (typeof removed !== 'boolean') return undefined
      this.#destroyReports = true
      return removed
    })
    if (this.#destroyReports) return then(destroy(), (removed) => removed !== false)
    return then(this.guard.call<Session | null>('load', id, request), (found) => {
      if (found === null) return false
      return then(destroy(), (removed) => removed !== false)
    })
  }

  #save (state: RequestState, session: Session): Maybe<void> {
    const wasNew = session.isNew
    const lifetimeChanged = internals.keyChanged(session, MAX_AGE_KEY)
    const now = Date.now()
    this.prepareSave(session, now)
    let saving: Maybe<string>
    try {
      saving = this.guard.call<string>('save', session, state.request)
    } catch (error) {
      return this.#refused(state, session, error)
    }
    const saved = then(saving, (id) => {
      const sameCookie = id === state.cookieId
      internals.markSaved(session, id)
      if (!sameCookie || wasNew) return this.#setCookie(state, id, now, this.#maxAge(session))
      // The same id again: the cookie the browser holds is right, unless its lifetime or signature must change.
      // A persistent cookie is rolled with every save, as its session is.
      if (lifetimeChanged || (!sharedCacheable(state) && (state.renew || (this.#options.rolling && this.#maxAge(session) !== undefined)))) {
        return this.#resend(state, session, now)
      }
    })
    return isThenable(saved) ? saved.catch((error: unknown) => this.#refused(state, session, error)) : saved
  }

  /** FST_SESSION_GONE: the factory refused a rotation of a session whose user was signed out everywhere since its load. */
  #refused (state: RequestState, session: Session, error: unknown): void {
    if (!(error instanceof SessionGone)) throw error
    state.request.log.debug('session: the factory refused a session its user was signed out of, treating it as a logout')
    this.#signedOut(state, session)
  }

  /** A logout: the session emptied and new again, nothing written, the client's cookie cleared. */
  #signedOut (state: RequestState, session: Session): void {
    internals.empty(session)
    internals.markNew(session)
    state.cookieId = state.cookieValue = null
    if (state.hadCookie) this.#clearCookie(state)
  }

  /** Before any save: the changed values checked (JSON, then the `schema`), a new session named (a cookie-safe id), the session stamped. */
  prepareSave (session: Session, now: number): void {
    const data = session.data as Record<string, unknown>
    for (const key of internals.changedKeys(session)) assertJson(data[key], `/${key}`)
    this.#options.dataSchema?.assertValid(session)
    if (session.isNew) {
      const id = this.#options.idGenerator()
      if (!isCookieSafe(id)) throw new InvalidOptions('idGenerator() must return a non-empty string of printable ASCII without spaces, quotes, commas, semicolons or backslashes')
      session.id = id
    }
    this.#stamp(session, now)
  }

  /** Stamps the session before a save or touch: its activity, expiry and user. */
  #stamp (session: Session, now: number): void {
    session.touchedAt = now
    session.expiresAt = Math.min(now + this.#idleMs, session.createdAt + this.#absoluteMs)
    // In its one normal form; a value that is no user id throws (FST_SESSION_INVALID_USER), never files users together.
    if (this.#options.userOf !== undefined) session.filedUnder = this.#options.userOf(session.data)
  }

  /** Re-sends the cookie of an unchanged id, but never for a record that is gone (it may overwrite a newer login's cookie). */
  #resend (state: RequestState, session: Session, now: number): Maybe<void> {
    const id = session.id as string
    if (this.guard.factory.destroy === undefined) return this.#setCookie(state, id, now, this.#maxAge(session))
    return then(this.guard.call<Session | null>('load', id, state.request), (found) => {
      if (found !== null) this.#setCookie(state, id, now, this.#maxAge(session))
    })
  }

  /** How often an unchanged session is touched: a tenth of the idle timeout, or of a shorter persistent cookie's life. */
  #touchEvery (session: Session): number {
    const maxAge = this.#maxAge(session)
    // At most one touch a second, however short the cookie's life.
    return maxAge === undefined ? this.#touchEveryMs : Math.min(this.#touchEveryMs, Math.max(maxAge * 100, 1000))
  }

  #maxAge (session: Session): number | undefined {
    return internals.lifetime(session) ?? this.#options.cookie.maxAge
  }

  isExpired (session: Session, now: number): boolean {
    // Fails closed: a missing timestamp is NaN, and NaN is never "recent enough". Present but
    // not a number (nor a numeric string) is a corrupt record: 503.
    let touchedAt: number, createdAt: number
    try {
      touchedAt = readTimestamp(session.touchedAt, 'touchedAt')
      createdAt = readTimestamp(session.createdAt, 'createdAt')
    } catch (cause) {
      throw new StoreUnavailable({ cause })
    }
    session.touchedAt = touchedAt
    session.createdAt = createdAt
    return !(now - touchedAt < this.#idleMs && now - createdAt < this.#absoluteMs)
  }

  #setCookie (state: RequestState, id: string, now: number, maxAge: number | undefined): void {
    // An unchanged id keeps the signature it came with, unless that was made with an older secret.
    const signed = id === state.cookieId && !state.renew ? state.cookieValue as string : this.cookie.sign(id)
    const line = this.cookie.serialize(signed, this.#isHttps(state), now, maxAge)
    state.cookieId = id
    state.cookieValue = signed
    state.renew = false
    state.stale = false
    putCookie(state, line)
  }

  #clearCookie (state: RequestState): void {
    state.stale = false
    state.hadCookie = false
    putCookie(state, this.cookie.clear(this.#isHttps(state)))
  }

  #isHttps (state: RequestState): boolean {
    const https = state.request.protocol === 'https'
    if (!https && this.#options.cookie.secure === true && !this.#warnedInsecure) {
      this.#warnedInsecure = true
      state.request.log.warn('session: cookie.secure is true but this request came over plain http; browsers keep a Secure cookie only over https. Behind a TLS proxy, set Fastify\'s trustProxy so request.protocol says https')
    }
    return https
  }

  close (): void {
    this.guard.close()
  }
}

function noop (): void {}

function afterSend (): Error {
  return new AfterSend()
}

function isStream (payload: unknown): payload is { destroy: () => void } {
  return typeof (payload as { pipe?: unknown } | null)?.pipe === 'function' && typeof (payload as { destroy?: unknown }).destroy === 'function'
}

/** RFC 6265 §5.1.4 path-match of the request's path against the cookie's path. */
function pathMatches (url: string, path: string): boolean {
  const query = url.indexOf('?')
  const requestPath = query === -1 ? url : url.slice(0, query)
  if (!requestPath.startsWith(path)) return false
  return requestPath.length === path.length || path.endsWith('/') || requestPath.charCodeAt(path.length) === 47
}
