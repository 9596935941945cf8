import { randomSlice } from './random.js'

const ID_BYTES = 32

/** 32 random bytes, base64url: 256 bits an attacker would have to guess. The default `idGenerator`. */
export function generateId (): string {
  return randomSlice(ID_BYTES).toString('base64url')
}

// RFC 6265 cookie-octets: what an id may hold to travel in the cookie unchanged.
const COOKIE_SAFE = /^[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]+$/

/** True for an id that can go in a cookie as it is (non-empty printable ASCII, no separators). */
export function isCookieSafe (id: unknown): id is string {
  return typeof id === 'string' && COOKIE_SAFE.test(id)
}
