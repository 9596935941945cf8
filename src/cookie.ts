import { CookieTooLarge } from './errors.js'
import type { ResolvedCookieOptions } from './options.js'
import { Signer, type Unsigned } from './signer.js'

/** Browsers keep a cookie of at most this many bytes (RFC 6265 §6.1 asks for at least 4096). */
export const MAX_COOKIE_BYTES = 4096

// RFC 6265 cookie-octets, less '%' (which readers decode): values made of these go out as they are,
// so a signature's base64 '+' and '/' cost one byte each, not three.
const COOKIE_OCTETS = /^[\x21\x23\x24\x26-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]*$/

const EXPIRED = '; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0'

function isSpace (code: number): boolean {
  return code === 32 || code === 9
}

function decode (value: string): string {
  if (!value.includes('%')) return value
  try {
    return decodeURIComponent(value)
  } catch {
    return value
  }
}

/**
 * The value of the first cookie called `name` in a Cookie header (the most specific one, as
 * browsers order them), without parsing the others.
 */
export function readCookie (header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined
  const length = header.length
  let start = 0
  // The next '=' is searched once and reused: rescanning for it per segment was quadratic.
  let eq = -1
  while (start < length) {
    let end = header.indexOf(';', start)
    if (end === -1) end = length
    if (eq < start) {
      eq = header.indexOf('=', start)
      if (eq === -1) return undefined
    }
    if (eq < end) {
      let keyStart = start
      while (keyStart < eq && isSpace(header.charCodeAt(keyStart))) keyStart++
      let keyEnd = eq
      while (keyEnd > keyStart && isSpace(header.charCodeAt(keyEnd - 1))) keyEnd--
      if (keyEnd - keyStart === name.length && header.startsWith(name, keyStart)) {
        let valueStart = eq + 1
        let valueEnd = end
        while (valueStart < valueEnd && isSpace(header.charCodeAt(valueStart))) valueStart++
        while (valueEnd > valueStart && isSpace(header.charCodeAt(valueEnd - 1))) valueEnd--
        if (valueEnd - valueStart >= 2 && header.charCodeAt(valueStart) === 34 && header.charCodeAt(valueEnd - 1) === 34) {
          valueStart++
          valueEnd--
        }
        return decode(header.slice(valueStart, valueEnd))
      }
    }
    start = end + 1
  }
  return undefined
}

// Enough for the visitors active at once on one process; the oldest entry goes first.
const VERIFIED_MAX = 10_000

/** Signs and verifies cookie values, and writes the session cookie's Set-Cookie lines. */
export class SessionCookie {
  readonly name: string
  readonly #signer: Signer
  /** Values whose signature checked out: a returning visitor's cookie costs one HMAC, not one per request. */
  readonly #verified = new Map<string, Unsigned>()
  readonly #verifiedMax: number
  readonly #attributes: string
  readonly #secure: boolean | 'auto'
  readonly #maxAge: number | undefined

  constructor (options: ResolvedCookieOptions, secrets: string[], verifiedMax = VERIFIED_MAX) {
    this.name = options.name
    this.#verifiedMax = verifiedMax
    this.#signer = new Signer(secrets)
    this.#secure = options.secure
    this.#maxAge = options.maxAge
    let attributes = `; Path=${options.path}`
    if (options.domain !== undefined) attributes += `; Domain=${options.domain}`
    if (options.httpOnly) attributes += '; HttpOnly'
    attributes += `; SameSite=${options.sameSite[0]!.toUpperCase()}${options.sameSite.slice(1)}`
    if (options.partitioned === true) attributes += '; Partitioned'
    if (options.priority !== undefined) attributes += `; Priority=${options.priority[0]!.toUpperCase()}${options.priority.slice(1)}`
    this.#attributes = attributes
  }

  /** A persistent cookie (with `maxAge`) must be re-sent to extend its life. */
  get persistent (): boolean {
    return this.#maxAge !== undefined
  }

  sign (id: string): string {
    return this.#signer.sign(id)
  }

  /** The id inside a signed value, and whether it was signed with an older secret; null if forged. */
  unsign (value: string): Unsigned | null {
    const known = this.#verified.get(value)
    if (known !== undefined) return known
    // A copy: the value may be a slice that would keep the whole Cookie header alive in the cache.
    const key = Buffer.from(value).toString()
    const result = this.#signer.unsign(key)
    if (result === null) return null
    const unsigned: Unsigned = Object.freeze(result)
    if (this.#verified.size >= this.#verifiedMax) this.#verified.delete(this.#verified.keys().next().value as string)
    this.#verified.set(key, unsigned)
    return unsigned
  }

  /** The Set-Cookie line for a signed value; throws when browsers would drop it for its size. */
  serialize (signed: string, https: boolean, now: number): string {
    const value = COOKIE_OCTETS.test(signed) ? signed : encodeURIComponent(signed)
    let line = `${this.name}=${value}${this.#attributes}`
    if (this.#maxAge !== undefined) {
      line += `; Max-Age=${this.#maxAge}; Expires=${new Date(now + this.#maxAge * 1000).toUTCString()}`
    }
    if (this.#secure === true || (this.#secure === 'auto' && https)) line += '; Secure'
    if (line.length > MAX_COOKIE_BYTES) throw new CookieTooLarge(line.length, MAX_COOKIE_BYTES)
    return line
  }

  /** The Set-Cookie line that removes the cookie (same name, path and domain). */
  clear (https: boolean): string {
    let line = `${this.name}=${this.#attributes}${EXPIRED}`
    if (this.#secure === true || (this.#secure === 'auto' && https)) line += '; Secure'
    return line
  }
}
