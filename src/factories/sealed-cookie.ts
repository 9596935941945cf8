import { createCipheriv, createDecipheriv, createSecretKey, hkdfSync, type KeyObject } from 'node:crypto'
import { InvalidOptions } from '../errors.js'
import type { SessionFactory } from '../factory.js'
import { randomSlice } from '../random.js'
import { Session, type SessionData } from '../session.js'

/** A 32-byte key: the bytes themselves, or a base64 / base64url string of them. */
export type SealedCookieKey = Buffer | Uint8Array | string

export interface SealedCookieFactoryOptions {
  /** One or more 32-byte keys: the first seals, every one opens (rotation: prepend the new key). */
  keys: SealedCookieKey | SealedCookieKey[]
}

/**
 * Layout, before base64url: version (1) | key id (4) | iv (12) | ciphertext | tag (16).
 * The version and key id are authenticated as AES-GCM additional data.
 */
const VERSION = 1
const KEY_BYTES = 32
const KEY_ID_BYTES = 4
const IV_BYTES = 12
const TAG_BYTES = 16
const HEADER_BYTES = 1 + KEY_ID_BYTES
const OVERHEAD_BYTES = HEADER_BYTES + IV_BYTES + TAG_BYTES
const BASE64URL = /^[A-Za-z0-9_-]+$/
// Standard or url alphabet, optionally padded: what `openssl rand -base64 32` and Node print.
const BASE64_KEY = /^[A-Za-z0-9+/_-]+={0,2}$/
const HEX_KEY = /^[0-9a-fA-F]{64}$/
const KEY_HINT = 'make one with `openssl rand -base64 32` or `crypto.randomBytes(32)`'

interface Key {
  id: Buffer
  /** The key id as a number: what a seal's bytes 1-4 are compared with. */
  idNumber: number
  /** Made once per key: node:crypto takes a KeyObject without checking and copying raw bytes per seal. */
  cipherKey: KeyObject
  /** version | key id: the start of every value this key seals, and the AES-GCM additional data. */
  header: Buffer
}

// The configured key is never used as is: HKDF gives the cipher key and a public key id apart.
function deriveKey (raw: Buffer): Key {
  const id = Buffer.from(hkdfSync('sha256', raw, '', 'fastify-session-factory sealed-cookie v1 key id', KEY_ID_BYTES))
  return {
    id,
    idNumber: id.readUInt32BE(0),
    cipherKey: createSecretKey(Buffer.from(hkdfSync('sha256', raw, '', 'fastify-session-factory sealed-cookie v1 aes-256-gcm', KEY_BYTES))),
    header: Buffer.concat([Buffer.of(VERSION), id])
  }
}

function keyBytes (key: unknown, path: string): Buffer {
  let bytes: Buffer
  if (key instanceof Uint8Array) {
    bytes = Buffer.from(key)
  } else if (typeof key === 'string' && BASE64_KEY.test(key)) {
    bytes = Buffer.from(key, 'base64')
  } else {
    throw new InvalidOptions(`SealedCookieFactory ${path} must be a Buffer or a base64/base64url string of 32 bytes; ${KEY_HINT}`)
  }
  if (bytes.length !== KEY_BYTES) {
    const hex = typeof key === 'string' && HEX_KEY.test(key) ? ' (for a hex key, pass Buffer.from(key, \'hex\'))' : ''
    throw new InvalidOptions(`SealedCookieFactory ${path} is ${bytes.length} bytes, it must be exactly ${KEY_BYTES}${hex}; ${KEY_HINT}`)
  }
  return bytes
}

function resolveKeys (options: unknown): Key[] {
  const given = (options as { keys?: unknown } | null | undefined)?.keys
  const list = Array.isArray(given) ? given : given === undefined ? [] : [given]
  if (list.length === 0) throw new InvalidOptions(`SealedCookieFactory needs keys: one or more 32-byte keys; ${KEY_HINT}`)
  const keys: Key[] = []
  list.forEach((raw: unknown, i) => {
    const path = Array.isArray(given) ? `keys[${i}]` : 'keys'
    const key = deriveKey(keyBytes(raw, path))
    const twin = keys.findIndex((other) => other.id.equals(key.id))
    if (twin !== -1) throw new InvalidOptions(`SealedCookieFactory ${path} repeats keys[${twin}]; list each key once`)
    keys.push(key)
  })
  return keys
}

/**
 * Stateless sessions: the whole session, timestamps included, is sealed with AES-256-GCM into
 * the value the plugin puts in the cookie. Nothing is stored, so nothing can be revoked early.
 */
export class SealedCookieFactory<D extends object = SessionData> implements SessionFactory<D> {
  readonly #keys: Key[]
  readonly #sealer: Key

  constructor (options: SealedCookieFactoryOptions) {
    this.#keys = resolveKeys(options)
    this.#sealer = this.#keys[0] as Key
  }

  /** Opens a sealed value; anything that fails to open (forged, old key gone, truncated, garbage) is null. */
  load (sealed: string): Session<D> | null {
    if (!BASE64URL.test(sealed)) return null
    const bytes = Buffer.from(sealed, 'base64url')
    // Only the canonical spelling opens, so no two cookie values carry one seal.
    if (bytes.length <= OVERHEAD_BYTES || bytes.toString('base64url') !== sealed) return null
    if (bytes[0] !== VERSION) return null
    const id = bytes.readUInt32BE(1)
    const key = this.#keys.find((candidate) => candidate.idNumber === id)
    if (key === undefined) return null
    let json: string
    try {
      const decipher = createDecipheriv('aes-256-gcm', key.cipherKey, bytes.subarray(HEADER_BYTES, HEADER_BYTES + IV_BYTES), { authTagLength: TAG_BYTES })
      // The seal's own header: equal to the key's, which the version and id checks just matched.
      decipher.setAAD(key.header)
      decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES))
      const plaintext = decipher.update(bytes.subarray(HEADER_BYTES + IV_BYTES, bytes.length - TAG_BYTES))
      decipher.final()
      json = plaintext.toString('utf8')
    } catch {
      return null
    }
    // Authenticated: only a holder of the key could have written this, and only `save` does.
    const [createdAt, touchedAt, expiresAt, data] = JSON.parse(json) as [number, number, number | null, Record<string, unknown>]
    if (expiresAt !== null && expiresAt <= Date.now()) return null
    const session = Session.fromJSON<D>({ id: sealed, data: data as Partial<D>, createdAt, touchedAt, expiresAt })
    // Opened with an older key: the plugin saves it now, which reseals it with the first key.
    if (key !== this.#sealer) session.markOutdated()
    return session
  }

  /** Seals the whole session (its id is ignored) and returns the sealed value: the cookie's "id". */
  save (session: Session<D>): string {
    const plaintext = JSON.stringify([session.createdAt, session.touchedAt, session.expiresAt, session.data])
    const header = this.#sealer.header
    const iv = randomSlice(IV_BYTES)
    const cipher = createCipheriv('aes-256-gcm', this.#sealer.cipherKey, iv, { authTagLength: TAG_BYTES })
    cipher.setAAD(header)
    const ciphertext = cipher.update(plaintext, 'utf8')
    cipher.final()
    // One buffer, written in place: header | iv | ciphertext | tag.
    const sealed = Buffer.allocUnsafe(OVERHEAD_BYTES + ciphertext.length)
    header.copy(sealed, 0)
    iv.copy(sealed, HEADER_BYTES)
    ciphertext.copy(sealed, HEADER_BYTES + IV_BYTES)
    cipher.getAuthTag().copy(sealed, HEADER_BYTES + IV_BYTES + ciphertext.length)
    return sealed.toString('base64url')
  }
}
