import type { FastifyReply } from 'fastify'

/** Where a session's headers go: the reply, and its raw response once that may bypass Fastify. */
export interface HeaderTarget {
  readonly reply: FastifyReply
  /** The handler saved by hand (`session.save()`): it may hijack next, so the raw response gets them too. */
  byHand: boolean
}

const VARY_COOKIE = /(?:^|,)\s*cookie\s*(?:,|$)/i
const NOT_SHARED = /(?:^|[\s,])(?:private|no-store|no-cache)(?:[\s,=]|$)/i
const SHARED = /(?:^|[\s,])(?:public|s-maxage|max-age)(?:[\s,=]|$)/i

/**
 * Sets a header on the reply; on the raw response too when the reply is hijacked, or when the
 * handler saves by hand. Fastify's own writeHead wins over the raw copy, so an ordinary reply
 * never gets a header twice.
 */
export function putHeader (target: HeaderTarget, name: string, value: string): void {
  const reply = target.reply
  if (!reply.sent) reply.header(name, value)
  if (reply.sent || target.byHand) {
    if (name === 'set-cookie') reply.raw.appendHeader(name, value)
    else reply.raw.setHeader(name, value)
  }
}

export function getHeader (target: HeaderTarget, name: string): unknown {
  const reply = target.reply
  return reply.sent ? reply.raw.getHeader(name) : reply.getHeader(name)
}

/** Adds `Cookie` to `Vary` unless it is there already (or `Vary: *`). */
export function varyCookie (target: HeaderTarget): void {
  const vary = getHeader(target, 'vary')
  if (vary === undefined) return putHeader(target, 'vary', 'Cookie')
  const list = String(vary)
  if (list.trim() === '*' || VARY_COOKIE.test(list)) return
  putHeader(target, 'vary', `${list}, Cookie`)
}

/** A Set-Cookie line, with `Cache-Control: private` when the app set none, and `Vary: Cookie`. */
export function putCookie (target: HeaderTarget, line: string): void {
  putHeader(target, 'set-cookie', line)
  if (getHeader(target, 'cache-control') === undefined) putHeader(target, 'cache-control', 'private')
  varyCookie(target)
}

/** The app let shared caches store this response (`public`, `s-maxage` or `max-age`, and not `private`/`no-store`/`no-cache`). */
export function sharedCacheable (target: HeaderTarget): boolean {
  const value = getHeader(target, 'cache-control')
  if (value === undefined) return false
  const text = String(value)
  return SHARED.test(text) && !NOT_SHARED.test(text)
}
