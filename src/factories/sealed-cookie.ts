import { createCipheriv, createDecipheriv, createSecretKey, hkdfSync, type KeyObject } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import { InvalidOptions } from '../errors.js'
import type { SessionFactory } from '../factory.js'
import { randomSlice } from '../random.js'
import { Session, type SessionData } from '../session.js'
import { NONCE_BYTES, TAG_BYTES, openXChaCha, sealXChaCha, type SealedCookieSodium } from './sealed-xchacha.js'

export type { SealedCookieSodium }

/** A 32-byte key: the bytes themselves, or a base64 / base64url string of them. */
export type SealedCookieKey = Buffer | Uint8Array | string

export interface SealedCookieFactoryOptions {
  /** One or more 32-byte keys: the first seals, every one opens (rotation: prepend the new key). */
  keys: SealedCookieKey | SealedCookieKey[]
  /**
   * Memory, in bytes, for seals opened lately (each sealed value with its decrypted JSON), so a
   * returning visitor whose cookie did not change is not decrypted again. Least recently used
   * go first; an entry past its expiry is never served. Default 1 MiB; 0 turns the cache off.
   */
  cacheBytes?: number
  /**
   * Seal with XChaCha20-Poly1305 through libsodium: pass `sodium-native` (an optional peer
   * dependency). Cheaper than node:crypto, which builds a cipher object per AES-256-GCM seal, and
   * its 192-bit random nonce never runs short. Seals of both kinds open with or without it, so
   * instances with and without the add-on share their cookies.
   */
  sodium?: SealedCookieSodium
}

const DEFAULT_CACHE_BYTES = 1024 * 1024

/**
 * Layout, before base64url: version | key id (4) | iv | ciphertext | tag (16). Version 1 is
 * AES-256-GCM with a 12-byte iv, version 2 XChaCha20-Poly1305 with a 24-byte one, each under its
 * own key derived from yours. The version and key id are authenticated as additional data.
 */
const AES_GCM = 1
const XCHACHA = 2
const KEY_BYTES = 32
const KEY_ID_BYTES = 4
const IV_BYTES = 12
const HEADER_BYTES = 1 + KEY_ID_BYTES
/** A seal's bytes beyond its plaintext, per version. */
const OVERHEAD_BYTES = [0, HEADER_BYTES + IV_BYTES + TAG_BYTES, HEADER_BYTES + NONCE_BYTES + TAG_BYTES]
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
  /** version 1 | key id: the start of every AES-GCM seal of this key, and its additional data. */
  header: Buffer
  /** The XChaCha20-Poly1305 key. */
  xchachaKey: Buffer
  /** version 2 | key id. */
  xchachaHeader: Buffer
}

function hkdf (raw: Buffer, info: string, bytes: number): Buffer {
  return Buffer.from(hkdfSync('sha256', raw, '', `fastify-session-factory sealed-cookie ${info}`, bytes))
}

// The configured key is never used as is: HKDF gives each cipher's key and a public key id apart.
function deriveKey (raw: Buffer): Key {
  const id = hkdf(raw, 'v1 key id', KEY_ID_BYTES)
  return {
    id,
    idNumber: id.readUInt32BE(0),
    cipherKey: createSecretKey(hkdf(raw, 'v1 aes-256-gcm', KEY_BYTES)),
    header: Buffer.concat([Buffer.of(AES_GCM), id]),
    xchachaKey: hkdf(raw, 'v2 xchacha20-poly1305', KEY_BYTES),
    xchachaHeader: Buffer.concat([Buffer.of(XCHACHA), id])
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

function resolveCacheBytes (options: unknown): number {
  const given = (options as { cacheBytes?: unknown }).cacheBytes
  if (given === undefined) return DEFAULT_CACHE_BYTES
  if (typeof given !== 'number' || !Number.isSafeInteger(given) || given < 0) {
    throw new InvalidOptions(`SealedCookieFactory cacheBytes is ${String(given)}: it is a whole number of bytes, 0 or more (0 turns the cache off)`)
  }
  return given
}

function resolveSodium (options: unknown): SealedCookieSodium | null {
  const given = (options as { sodium?: unknown }).sodium
  if (given === undefined) return null
  const binding = given as Partial<Record<keyof SealedCookieSodium, unknown>> | null
  if (typeof binding?.crypto_aead_xchacha20poly1305_ietf_encrypt !== 'function' || typeof binding.crypto_aead_xchacha20poly1305_ietf_decrypt !== 'function') {
    throw new InvalidOptions("SealedCookieFactory sodium must be the sodium-native module (`import sodium from 'sodium-native'`), or a binding with its crypto_aead_xchacha20poly1305_ietf_encrypt and _decrypt")
  }
  return given as SealedCookieSodium
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

/** What a seal holds once opened: createdAt, touchedAt, expiresAt, data. */
type Sealed = [number, number, number | null, Record<string, unknown>]

/** A seal that opened: its plaintext, parsed again for every request, so no two share an object. */
interface Opened {
  json: string
  expiresAt: number | null
  /** Sealed with an older key. */
  outdated: boolean
  /** What the entry is counted for (see OpenedSeals). */
  bytes: number
}

// Per entry beyond its two strings' characters: the Map slot and lru-cache's array slots, the entry
// object, two string headers (heap deltas of 20,000 entries: what is counted stays above what is held).
const ENTRY_OVERHEAD_BYTES = 176

/**
 * Seals opened lately, keyed by the canonical sealed value (a string of its own, never a slice of
 * a Cookie header), bounded in bytes; the least recently used go first.
 */
class OpenedSeals {
  // An entry bigger than the whole bound is not kept (lru-cache's maxEntrySize is maxSize).
  readonly #entries: LRUCache<string, Opened>
  hits = 0
  misses = 0

  constructor (maxBytes: number) {
    this.#entries = new LRUCache({ maxSize: maxBytes, sizeCalculation: (entry) => entry.bytes })
  }

  get entries (): number {
    return this.#entries.size
  }

  get bytes (): number {
    return this.#entries.calculatedSize
  }

  /** The entry of a seal opened lately; null when it is there but expired (and now gone). */
  get (sealed: string, now: number): Opened | null | undefined {
    const entry = this.#entries.get(sealed)
    if (entry === undefined) {
      this.misses++
      return undefined
    }
    // Checked on every hit: a cached seal dies when its session does.
    if (entry.expiresAt !== null && entry.expiresAt <= now) {
      this.misses++
      this.#entries.delete(sealed)
      return null
    }
    this.hits++
    return entry
  }

  add (sealed: string, json: string, jsonBytes: number, expiresAt: number | null, outdated: boolean): void {
    // Base64url is one byte a character; JSON is too when all ASCII, at most two otherwise.
    const bytes = ENTRY_OVERHEAD_BYTES + sealed.length + (json.length === jsonBytes ? jsonBytes : 2 * json.length)
    this.#entries.set(sealed, { json, expiresAt, outdated, bytes })
  }
}

/**
 * Stateless sessions: the whole session, timestamps included, is sealed with AES-256-GCM into
 * the value the plugin puts in the cookie. Nothing is stored, so nothing can be revoked early.
 */
export class SealedCookieFactory<D extends object = SessionData> implements SessionFactory<D> {
  /** No server-side record (the id is the sealed session), and ids that authenticate themselves (AES-GCM). */
  readonly capabilities = { stateless: true, selfAuthenticatingIds: true } as const
  readonly #keys: Key[]
  readonly #sealer: Key
  readonly #opened: OpenedSeals | null
  readonly #sodium: SealedCookieSodium | null

  constructor (options: SealedCookieFactoryOptions) {
    this.#keys = resolveKeys(options)
    this.#sealer = this.#keys[0] as Key
    const cacheBytes = resolveCacheBytes(options)
    this.#opened = cacheBytes === 0 ? null : new OpenedSeals(cacheBytes)
    this.#sodium = resolveSodium(options)
  }

  /**
   * The cache of opened seals now: the entries it holds, the bytes they are counted for (at most
   * `cacheBytes`), and the loads it served (`hits`) or not (`misses`). All 0 when it is off.
   */
  get cache (): { entries: number, bytes: number, hits: number, misses: number } {
    const opened = this.#opened
    return opened === null
      ? { entries: 0, bytes: 0, hits: 0, misses: 0 }
      : { entries: opened.entries, bytes: opened.bytes, hits: opened.hits, misses: opened.misses }
  }

  /** Opens a sealed value; anything that fails to open (forged, old key gone, truncated, garbage) is null. */
  load (sealed: string): Session<D> | null {
    const cached = this.#opened?.get(sealed, Date.now())
    if (cached === null) return null
    if (cached !== undefined) return this.#session(sealed, JSON.parse(cached.json) as Sealed, cached.outdated)
    if (!BASE64URL.test(sealed)) return null
    const bytes = Buffer.from(sealed, 'base64url')
    // Only the canonical spelling opens, so no two cookie values carry one seal.
    const canonical = bytes.toString('base64url')
    if (canonical !== sealed) return null
    const version = bytes[0] as number
    if ((version !== AES_GCM && version !== XCHACHA) || bytes.length <= (OVERHEAD_BYTES[version] as number)) return null
    const id = bytes.readUInt32BE(1)
    const key = this.#keys.find((candidate) => candidate.idNumber === id)
    if (key === undefined) return null
    const plaintext = version === AES_GCM
      ? openAesGcm(key, bytes)
      : openXChaCha(this.#sodium, key.xchachaKey, key.xchachaHeader, bytes.subarray(HEADER_BYTES, HEADER_BYTES + NONCE_BYTES), bytes.subarray(HEADER_BYTES + NONCE_BYTES))
    if (plaintext === null) return null
    // Authenticated: only a holder of the key could have written this, and only `save` does.
    const json = plaintext.toString('utf8')
    let record: Sealed
    try {
      record = JSON.parse(json) as Sealed
    } catch {
      // Only from a session whose timestamps the app set to no number (NaN seals as is).
      return null
    }
    const expiresAt = record[2]
    if (expiresAt !== null && expiresAt <= Date.now()) return null
    // Opened with an older key: the plugin saves it now, which reseals it with the first key.
    const outdated = key !== this.#sealer
    this.#opened?.add(canonical, json, plaintext.length, expiresAt, outdated)
    return this.#session(sealed, record, outdated)
  }

  #session (sealed: string, [createdAt, touchedAt, expiresAt, data]: Sealed, outdated: boolean): Session<D> {
    const session = Session.fromJSON<D>({ id: sealed, data: data as Partial<D>, createdAt, touchedAt, expiresAt })
    if (outdated) session.markOutdated()
    return session
  }

  /** Seals the whole session (its id is ignored) and returns the sealed value: the cookie's "id". */
  save (session: Session<D>): string {
    // The array [createdAt, touchedAt, expiresAt, data] as JSON, without building the array.
    const plaintext = `[${session.createdAt},${session.touchedAt},${session.expiresAt},${JSON.stringify(session.data)}]`
    return (this.#sodium === null ? sealAesGcm(this.#sealer, plaintext) : sealXChaCha(this.#sodium, this.#sealer.xchachaKey, this.#sealer.xchachaHeader, plaintext)).toString('base64url')
  }
}

function openAesGcm (key: Key, bytes: Buffer): Buffer | null {
  try {
    const decipher = createDecipheriv('aes-256-gcm', key.cipherKey, bytes.subarray(HEADER_BYTES, HEADER_BYTES + IV_BYTES), { authTagLength: TAG_BYTES })
    // The seal's own header: equal to the key's, which the version and id checks just matched.
    decipher.setAAD(key.header)
    decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES))
    const plaintext = decipher.update(bytes.subarray(HEADER_BYTES + IV_BYTES, bytes.length - TAG_BYTES))
    decipher.final()
    return plaintext
  } catch {
    return null
  }
}

function sealAesGcm (key: Key, plaintext: string): Buffer {
  const iv = randomSlice(IV_BYTES)
  const cipher = createCipheriv('aes-256-gcm', key.cipherKey, iv)
  cipher.setAAD(key.header)
  return Buffer.concat([key.header, iv, cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()])
}
