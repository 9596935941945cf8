import type { FastifyReply, FastifyRequest } from 'fastify'
import { putCookie, type HeaderTarget } from './headers.js'
import type { SessionLifecycle } from './lifecycle.js'
import type { Session, SessionOwner } from './session.js'

/** One request's session: what came in with the cookie, how far the request got, and what must go out. */
export class RequestSession implements SessionOwner, HeaderTarget {
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
    readonly lifecycle: SessionLifecycle,
    readonly request: FastifyRequest,
    readonly reply: FastifyReply
  ) {}

  /** `session.save()` in a route. */
  saveNow (): Promise<void> {
    return this.lifecycle.saveNow(this)
  }

  /** `session.reload()` in a route. */
  reloadNow (): Promise<void> {
    return this.lifecycle.reloadNow(this)
  }

  /** Sets the cookie to `id`; an unchanged id keeps the signature it came with, unless that was made with an older secret. */
  setCookie (id: string, now: number, maxAge: number | undefined): void {
    const cookie = this.lifecycle.cookie
    const signed = id === this.cookieId && !this.renew ? this.cookieValue as string : cookie.sign(id)
    const line = cookie.serialize(signed, this.lifecycle.isHttps(this.request), now, maxAge)
    this.cookieId = id
    this.cookieValue = signed
    this.renew = false
    this.stale = false
    putCookie(this, line)
  }

  /** Clears the cookie (same path and domain, expired). */
  clearCookie (): void {
    this.stale = false
    this.hadCookie = false
    putCookie(this, this.lifecycle.cookie.clear(this.lifecycle.isHttps(this.request)))
  }
}
