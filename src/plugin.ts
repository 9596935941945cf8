import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import { SessionCookie, readCookie } from './cookie.js'
import { Deadlines } from './deadlines.js'
import { NotLoaded, SaveAfterSend, StoreUnavailable } from './errors.js'
import type { SessionFactory } from './factory.js'
import { MemoryFactory, immediate } from './factories/memory.js'
import { resolveOptions, type ResolvedOptions, type SessionPluginOptions } from './options.js'
import { redactId } from './redact.js'
import { Session, assertJson, internals, type SessionOwner } from './session.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The request's session (or the name given by the `decorator` option). */
    session: Session
  }
  interface FastifyContextConfig {
    /** `false` skips loading and saving the session on this route. */
    session?: boolean
  }
}

type FactoryMethod = 'load' | 'save' | 'destroy' | 'touch'

// A MemoryFactory is answered at once only while these are still its methods.
const MEMORY_LOAD = MemoryFactory.prototype.load
const MEMORY_SAVE = MemoryFactory.prototype.save

const VARY_COOKIE = /(?:^|,)\s*cookie\s*(?:,|$)/i

/**
 * Sets a header on the reply; on the raw response too when the reply is hijacked, or when the
 * handler saves by hand (it may hijack next). Fastify's own writeHead wins over the raw copy,
 * so an ordinary reply never gets a header twice.
 */
function putHeader (state: RequestState, name: string, value: string): void {
  const reply = state.reply
  if (!reply.sent) reply.header(name, value)
  if (reply.sent || state.byHand) {
    if (name === 'set-cookie') reply.raw.appendHeader(name, value)
    else reply.raw.setHeader(name, value)
  }
}

function getHeader (state: RequestState, name: string): unknown {
  const reply = state.reply
  return reply.sent ? reply.raw.getHeader(name) : reply.getHeader(name)
}

/** One request's view of its session: what came in with the cookie, and what must go out. */
class RequestState implements SessionOwner {
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
  /** onSend already ran (a fault there re-enters onSend with the error reply). */
  done = false
  /** The handler called `session.save()`: headers go on the raw response as well. */
  byHand = false

  constructor (
    readonly manager: SessionManager,
    readonly request: FastifyRequest,
    readonly reply: FastifyReply
  ) {}

  saveNow (): Promise<void> {
    return this.manager.saveNow(this)
  }
}

/** Loads in onRequest, decides and saves in onSend: the whole lifecycle of one session setup. */
class SessionManager {
  readonly factory: SessionFactory<any>
  readonly cookie: SessionCookie
  readonly #options: ResolvedOptions
  readonly #idleMs: number
  readonly #absoluteMs: number
  /** At most one touch per tenth of the idle timeout. */
  readonly #touchEveryMs: number
  readonly #deadlines: Deadlines
  /** The factory when it is a MemoryFactory, whose own load and save answer without a promise round trip. */
  readonly #memory: MemoryFactory | null

  constructor (options: ResolvedOptions) {
    this.#options = options
    this.factory = options.factory
    this.cookie = new SessionCookie(options.cookie, options.secrets)
    this.#idleMs = options.idleTimeout * 1000
    this.#absoluteMs = options.absoluteTimeout * 1000
    this.#touchEveryMs = this.#idleMs / 10
    this.#deadlines = new Deadlines(options.storeTimeout)
    this.#memory = options.factory instanceof MemoryFactory ? options.factory : null
  }

  /** Starts a request: verifies the cookie, and asks the factory only for a genuine id. */
  load (state: RequestState): Promise<void> | undefined {
    const value = readCookie(state.request.headers.cookie, this.cookie.name)
    if (value === undefined) return undefined
    state.hadCookie = true
    const signed = this.cookie.unsign(value)
    if (signed === null) {
      state.request.log.debug('session: cookie signature invalid, starting a fresh session')
      return undefined
    }
    const memory = this.#memory
    if (memory !== null && memory.load === MEMORY_LOAD) {
      let session: Session | null
      try {
        session = immediate.load(memory, signed.id)
      /* c8 ignore start -- MemoryFactory's load has no failure of its own; a bug must still answer 503 */
      } catch (cause) {
        state.done = true
        return Promise.reject(new StoreUnavailable({ cause }))
      }
      /* c8 ignore stop */
      const destroying = this.#loaded(state, signed.id, value, signed.renew, session)
      if (destroying === undefined) return undefined
      return destroying.catch((error: unknown) => {
        state.done = true
        throw error
      })
    }
    return this.#load(state, signed.id, value, signed.renew)
  }

  async #load (state: RequestState, id: string, value: string, renew: boolean): Promise<void> {
    try {
      const session = await this.#call<Session | null>('load', id)
      const destroying = this.#loaded(state, id, value, renew, session)
      if (destroying !== undefined) await destroying
    } catch (error) {
      // The error reply must leave the client's cookie and the store as they were.
      state.done = true
      throw error
    }
  }

  /** Takes what the factory found: nothing, a dead session (destroyed), or this request's session. */
  #loaded (state: RequestState, id: string, value: string, renew: boolean, session: Session | null): Promise<void> | undefined {
    if (session === null) {
      state.request.log.debug('session: unknown or expired id, starting a fresh session')
      state.stale = true
      return undefined
    }
    if (this.#isExpired(session, Date.now())) {
      state.request.log.debug('session: past its idle or absolute timeout, starting a fresh session')
      state.stale = true
      return this.factory.destroy === undefined ? undefined : this.#call('destroy', id)
    }
    session.id ??= id
    internals.setOwner(session, state)
    state.session = session
    state.cookieId = id
    state.cookieValue = value
    state.renew = renew
    return undefined
  }

  /** The session the handler sees: the loaded one, or a new one made on first use. */
  sessionOf (state: RequestState | null): Session {
    if (state === null) throw new NotLoaded()
    state.accessed = true
    if (state.session === null) {
      const session = new Session()
      internals.setOwner(session, state)
      state.session = session
    }
    return state.session
  }

  saveNow (state: RequestState): Promise<void> {
    if (state.reply.raw.headersSent) return Promise.reject(new SaveAfterSend())
    state.byHand = true
    return this.commit(state) ?? Promise.resolve()
  }

  /**
   * The one place that decides what a finished request writes: nothing, a touch, a save, a
   * destroy, a cookie. Returns a promise only when the factory has work to do.
   */
  commit (state: RequestState): Promise<void> | undefined {
    const session = state.session
    if (session === null) {
      if (state.stale) this.#clearCookie(state)
      return undefined
    }
    if (state.accessed) this.#varyCookie(state)
    if (internals.destroyed(session)) return this.#destroy(state, session)
    if (internals.regenerated(session)) return this.#regenerate(state, session)
    if (session.isNew) {
      if (session.isModified || this.#options.saveUninitialized) return this.#save(state, session)
      if (state.stale) this.#clearCookie(state)
      return undefined
    }
    // An outdated session (sealed with an older key) is rewritten by a save, whatever changed.
    if (session.isModified || internals.outdated(session)) return this.#save(state, session)
    const now = Date.now()
    if (this.#options.rolling && now - session.touchedAt >= this.#touchEveryMs) return this.#touch(state, session, now)
    if (state.renew) this.#setCookie(state, session.id as string, now)
    return undefined
  }

  /** Destroys the stored record, if any, and leaves the session new: what logout and login share. */
  async #forgetStored (state: RequestState, session: Session): Promise<void> {
    if (!session.isNew && session.id !== null && this.factory.destroy !== undefined) {
      await this.#call('destroy', session.id)
    }
    internals.markNew(session)
    state.cookieId = state.cookieValue = null
  }

  async #destroy (state: RequestState, session: Session): Promise<void> {
    const restart = session.isModified
    await this.#forgetStored(state, session)
    if (restart) return this.#save(state, session)
    if (state.hadCookie) this.#clearCookie(state)
  }

  async #regenerate (state: RequestState, session: Session): Promise<void> {
    await this.#forgetStored(state, session)
    session.createdAt = Date.now()
    return this.#save(state, session)
  }

  #save (state: RequestState, session: Session): Promise<void> | undefined {
    const memory = this.#memory
    if (memory === null || memory.save !== MEMORY_SAVE) return this.#saveAsync(state, session)
    try {
      const now = this.#beforeSave(session)
      let id: string
      try {
        id = immediate.save(memory, session)
      } catch (cause) {
        throw new StoreUnavailable({ cause })
      }
      this.#afterSave(state, session, id, now)
      return undefined
    } catch (error) {
      return Promise.reject(error)
    }
  }

  async #saveAsync (state: RequestState, session: Session): Promise<void> {
    const now = this.#beforeSave(session)
    const id = await this.#call<string>('save', session)
    this.#afterSave(state, session, id, now)
  }

  /** Checks the changed values and stamps the session; returns the time it used. */
  #beforeSave (session: Session): number {
    const data = session.data
    for (const key of internals.changedKeys(session)) assertJson(data[key], `/${key}`)
    const now = Date.now()
    if (session.isNew) session.id = this.#options.idGenerator()
    session.touchedAt = now
    session.expiresAt = this.#expiresAt(session)
    return now
  }

  #afterSave (state: RequestState, session: Session, id: string, now: number): void {
    this.#setCookie(state, id, now)
    internals.markSaved(session, id)
  }

  async #touch (state: RequestState, session: Session, now: number): Promise<void> {
    if (this.factory.touch === undefined) return this.#save(state, session)
    session.touchedAt = now
    session.expiresAt = this.#expiresAt(session)
    await this.#call('touch', session)
    if (state.renew || this.cookie.persistent) this.#setCookie(state, session.id as string, now)
  }

  #expiresAt (session: Session): number {
    return Math.min(session.touchedAt + this.#idleMs, session.createdAt + this.#absoluteMs)
  }

  #isExpired (session: Session, now: number): boolean {
    return now - session.touchedAt >= this.#idleMs || now - session.createdAt >= this.#absoluteMs
  }

  #setCookie (state: RequestState, id: string, now: number): void {
    // An unchanged id keeps the signature it came with, unless that was made with an older secret.
    const signed = id === state.cookieId && !state.renew ? state.cookieValue as string : this.cookie.sign(id)
    const line = this.cookie.serialize(signed, this.#isHttps(state), now)
    state.cookieId = id
    state.cookieValue = signed
    state.renew = false
    state.stale = false
    this.#writeCookieHeaders(state, line)
  }

  #clearCookie (state: RequestState): void {
    state.stale = false
    state.hadCookie = false
    this.#writeCookieHeaders(state, this.cookie.clear(this.#isHttps(state)))
  }

  #isHttps (state: RequestState): boolean {
    return state.request.protocol === 'https'
  }

  #writeCookieHeaders (state: RequestState, line: string): void {
    putHeader(state, 'set-cookie', line)
    if (getHeader(state, 'cache-control') === undefined) putHeader(state, 'cache-control', 'private')
    this.#varyCookie(state)
  }

  #varyCookie (state: RequestState): void {
    const vary = getHeader(state, 'vary')
    if (vary === undefined) return putHeader(state, 'vary', 'Cookie')
    const list = String(vary)
    if (list.trim() === '*' || VARY_COOKIE.test(list)) return
    putHeader(state, 'vary', `${list}, Cookie`)
  }

  /** A factory call bounded by `storeTimeout`; any fault becomes FST_SESSION_STORE_UNAVAILABLE. */
  #call<T = void> (method: FactoryMethod, arg: unknown): Promise<T> {
    const id = typeof arg === 'string' ? arg : (arg as Session).id
    let pending: unknown
    try {
      pending = (this.factory[method] as (arg: unknown) => unknown)(arg)
    } catch (cause) {
      return Promise.reject(new StoreUnavailable({ cause: redactId(cause, id) }))
    }
    return new Promise<T>((resolve, reject) => {
      const watched = this.#deadlines.watch(method, reject)
      Promise.resolve(pending).then((value) => {
        if (!this.#deadlines.settle(watched)) return
        const problem = checkResult(method, value)
        if (problem === null) resolve(value as T)
        else reject(new StoreUnavailable({ cause: new TypeError(problem) }))
      }, (cause: unknown) => {
        if (this.#deadlines.settle(watched)) reject(new StoreUnavailable({ cause: redactId(cause, id) }))
      })
    })
  }

  close (): void {
    this.#deadlines.close()
  }
}

// A factory that breaks its contract is a faulty store, not a reason to crash or adopt garbage.
function checkResult (method: FactoryMethod, value: unknown): string | null {
  if (method === 'load' && value !== null && !(value instanceof Session)) {
    return 'factory.load() must resolve to a Session or null'
  }
  if (method === 'save' && (typeof value !== 'string' || value === '')) {
    return 'factory.save() must resolve to a non-empty string id'
  }
  return null
}

export async function plugin (fastify: FastifyInstance, options: SessionPluginOptions): Promise<void> {
  const resolved = resolveOptions(options)
  if (!fastify.hasPlugin('@fastify/cookie')) await fastify.register(fastifyCookie)

  const manager = new SessionManager(resolved)
  // Each registration has its own slot, so several decorators (or sibling scopes) never collide.
  const kState = Symbol(`fastify-session-factory:${resolved.decorator}`)
  type WithState = FastifyRequest & { [kState]: RequestState | null }

  fastify.decorateRequest(kState, null)
  fastify.decorateRequest(resolved.decorator, {
    getter (this: FastifyRequest) {
      return manager.sessionOf((this as WithState)[kState])
    }
  })

  // request.routeOptions builds an object on every read, so the opt-out is looked up per request
  // only when a route may carry it: one declared before this plugin (onRoute never saw it), or
  // one whose final options (read once all onRoute hooks had their say) set config.session false.
  let mayOptOut = fastify.printRoutes() !== '(empty tree)'
  const routes: RouteOptions[] = []
  fastify.addHook('onRoute', (route) => { routes.push(route) })
  fastify.addHook('onReady', function findOptOuts (done) {
    if (routes.some((route) => route.config?.session === false)) mayOptOut = true
    routes.length = 0
    done()
  })

  fastify.addHook('onRequest', function loadSession (request, reply, done) {
    if (mayOptOut && request.routeOptions.config.session === false) return done()
    const state = new RequestState(manager, request, reply)
    ;(request as WithState)[kState] = state
    const loading = manager.load(state)
    if (loading === undefined) return done()
    loading.then(() => done(), done)
  })

  fastify.addHook('onSend', function saveSession (request, _reply, payload, done) {
    const state = (request as WithState)[kState]
    if (state === null || state.done) return done(null, payload)
    state.done = true
    const pending = manager.commit(state)
    if (pending === undefined) return done(null, payload)
    pending.then(() => done(null, payload), done)
  })

  fastify.addHook('onClose', async () => {
    manager.close()
    await manager.factory.close?.()
  })
}
