import type { FastifyInstance, FastifyRequest } from 'fastify'
import { Signer } from '@fastify/cookie'
import { LRUCache } from 'lru-cache'
import { CookieTooLarge } from './errors.js'
import { HmacSha256 } from './hmac.js'
import { isCookieSafe } from './id.js'
import type { ResolvedCookieOptions } from './options.js'

/** Browsers keep a cookie of at most this many bytes (RFC 6265 §6.1 asks for at least 4096). */
export const MAX_COOKIE_BYTES = 4096

/** What a genuine cookie value holds. */
export interface Unsigned {
  readonly id: string
  /** Signed with an older secret (or signed at all, for a self-authenticating id): re-issue it in today's form. */
  readonly renew: boolean
}

// Enough for the visitors active at once on one process; the least recently used go first.
const VERIFIED_MAX = 10_000

/**
 * A signed value as it goes in the Set-Cookie header. @fastify/cookie decodes a value holding
 * `%` when it reads it, so `%` is escaped and any cookie-safe id round-trips; a value without
 * `%` (every generated id) goes out as it is, as cookies of earlier releases did.
 */
function encodeValue (value: string): string {
  return value.includes('%') ? value.replaceAll('%', '%25') : value
}

interface SerializeOptions {
  path: string
  domain?: string
  httpOnly: boolean
  secure: boolean
  sameSite: 'lax' | 'strict' | 'none'
  partitioned?: boolean
  priority?: 'low' | 'medium' | 'high'
  maxAge?: number
  expires?: Date
  encode: (value: string) => string
}

/**
 * The session cookie, read, verified and written through @fastify/cookie (its parser, `Signer`
 * and serializer); what is ours: the signing of new values (hmac.ts, `Signer.sign`'s output),
 * the verified-value cache, the size check, and the attributes a request decides (Secure,
 * SameSite, Max-Age). A factory whose ids authenticate themselves
 * (`capabilities.selfAuthenticatingIds`) gets its ids in the cookie as they are, no HMAC.
 */
export class SessionCookie {
  readonly name: string
  readonly #fastify: FastifyInstance
  readonly #signer: InstanceType<typeof Signer>
  /** Signs with the first secret; `#signer` verifies with all of them. */
  readonly #hmac: HmacSha256
  /** Values whose signature checked out: a returning visitor's cookie costs one HMAC, not one per request. */
  readonly #verified: LRUCache<string, Unsigned>
  readonly #options: ResolvedCookieOptions
  /** The factory's ids authenticate themselves (AEAD seals): the cookie carries them unsigned. */
  readonly #selfAuthenticating: boolean
  /**
   * The attributes of a line without Max-Age (a browser-session cookie), over http and https:
   * serialized by @fastify/cookie once, not per response (its serializer checks every attribute
   * again each time).
   */
  readonly #attributesLine: [string | null, string | null] = [null, null]

  constructor (fastify: FastifyInstance, options: ResolvedCookieOptions, secrets: string[], selfAuthenticating = false, verifiedMax = VERIFIED_MAX) {
    this.name = options.name
    this.#fastify = fastify
    this.#selfAuthenticating = selfAuthenticating
    this.#options = options
    this.#verified = new LRUCache({ max: verifiedMax })
    this.#signer = new Signer(secrets, 'sha256')
    this.#hmac = new HmacSha256(secrets[0] as string)
  }

  /** The cookie's value on this request: from `request.cookies`, or parsed here when @fastify/cookie's hook has not run yet. */
  read (request: FastifyRequest): string | undefined {
    const jar = request.cookies ?? (request.headers.cookie === undefined ? undefined : this.#fastify.parseCookie(request.headers.cookie))
    return jar?.[this.name]
  }

  /** The cookie's value in a Cookie header, for code outside a route. */
  readHeader (header: string): string | undefined {
    return this.#fastify.parseCookie(header)[this.name]
  }

  /** The cookie value of an id: signed with the first secret, or the id itself when it authenticates itself. */
  sign (id: string): string {
    return this.#selfAuthenticating ? id : this.#hmac.sign(id)
  }

  /**
   * The id inside a cookie value, and whether to re-issue it; null if forged. A self-authenticating
   * id comes as it is (the factory's load refuses a forged one), or signed as earlier releases
   * wrote it: that opens with any secret, and is re-issued unsigned.
   */
  unsign (value: string): Unsigned | null {
    if (this.#selfAuthenticating) {
      // No '.', no signature (a sealed id is base64url); with one, a value no secret signed is a bare id too.
      if (!value.includes('.')) return { id: value, renew: false }
      const signed = this.#verify(value)
      return signed === null ? { id: value, renew: false } : { id: signed.id, renew: true }
    }
    return this.#verify(value)
  }

  /** The id inside a value signed with one of the secrets, and whether that was an older one; null if none signed it. */
  #verify (value: string): Unsigned | null {
    const known = this.#verified.get(value)
    if (known !== undefined) return known
    const result = this.#signer.unsign(value)
    if (!result.valid || result.value === null) return null
    const unsigned: Unsigned = Object.freeze({ id: result.value, renew: result.renew })
    // A copy: the value may be a slice that would keep the whole Cookie header alive in the cache.
    this.#verified.set(Buffer.from(value).toString(), unsigned)
    return unsigned
  }

  /** The Set-Cookie line for a signed value; throws when browsers would drop it for its size. */
  serialize (signed: string, https: boolean, now: number, maxAge: number | undefined): string {
    const value = encodeValue(signed)
    let line: string
    // The value checked as @fastify/cookie's serializer checks it; one it refuses goes to it, to throw there.
    if (maxAge === undefined && isCookieSafe(value)) {
      line = `${this.name}=${value}${this.#attributesLine[https ? 1 : 0] ?? this.#cacheAttributes(https)}`
    } else {
      const options = this.#attributes(https)
      if (maxAge !== undefined) {
        options.maxAge = maxAge
        options.expires = new Date(now + maxAge * 1000)
      }
      line = this.#fastify.serializeCookie(this.name, signed, options)
    }
    if (line.length > MAX_COOKIE_BYTES) throw new CookieTooLarge(line.length, MAX_COOKIE_BYTES)
    return line
  }

  #cacheAttributes (https: boolean): string {
    const empty = this.#fastify.serializeCookie(this.name, '', this.#attributes(https))
    return (this.#attributesLine[https ? 1 : 0] = empty.slice(this.name.length + 1))
  }

  /** The Set-Cookie line that removes the cookie (same name, path and domain). */
  clear (https: boolean): string {
    const options = this.#attributes(https)
    options.maxAge = 0
    options.expires = new Date(0)
    return this.#fastify.serializeCookie(this.name, '', options)
  }

  #attributes (https: boolean): SerializeOptions {
    const o = this.#options
    const secure = o.secure === true || (o.secure === 'auto' && https)
    const options: SerializeOptions = {
      path: o.path,
      httpOnly: o.httpOnly,
      secure,
      // A SameSite=None cookie without Secure is dropped by browsers: over plain http, 'auto' falls back to Lax.
      sameSite: o.sameSite === 'none' && !secure ? 'lax' : o.sameSite,
      encode: encodeValue
    }
    if (o.domain !== undefined) options.domain = o.domain
    if (o.partitioned === true) options.partitioned = true
    if (o.priority !== undefined) options.priority = o.priority
    return options
  }
}
