import { hash, timingSafeEqual } from 'node:crypto'

const BLOCK_BYTES = 64
const DIGEST_BYTES = 32
/** Messages up to this many UTF-16 units fit the scratch buffer (at most 3 UTF-8 bytes each). */
const SCRATCH_UNITS = 4096

/**
 * HMAC-SHA256 (RFC 2104) of one secret, from two one-shot `crypto.hash` calls over pads made
 * once: about half the CPU of a `createHmac` object per cookie, whose construction dominates
 * for a message this short. The output is createHmac's, so cookies move freely between this
 * plugin, @fastify/cookie's signer and @fastify/session.
 */
class HmacSha256 {
  /** The inner pad, then room for the message. */
  readonly #inner = Buffer.alloc(BLOCK_BYTES + SCRATCH_UNITS * 3)
  /** The outer pad, then the inner digest. */
  readonly #outer = Buffer.alloc(BLOCK_BYTES + DIGEST_BYTES)

  constructor (secret: Buffer) {
    const key = Buffer.alloc(BLOCK_BYTES)
    // A key longer than the block is hashed first, as RFC 2104 says.
    ;(secret.length > BLOCK_BYTES ? hash('sha256', secret, 'buffer') : secret).copy(key)
    for (let i = 0; i < BLOCK_BYTES; i++) {
      this.#inner[i] = (key[i] as number) ^ 0x36
      this.#outer[i] = (key[i] as number) ^ 0x5c
    }
  }

  /** The MAC of `message` (UTF-8), in base64 without its '=' padding, as @fastify/cookie writes it. */
  base64 (message: string): string {
    let inner: string
    if (message.length <= SCRATCH_UNITS) {
      const length = this.#inner.write(message, BLOCK_BYTES, 'utf8')
      // 'binary' is latin1: one char per byte of the digest, written back as the same bytes below.
      inner = hash('sha256', this.#inner.subarray(0, BLOCK_BYTES + length), 'binary')
    } else {
      inner = hash('sha256', Buffer.concat([this.#inner.subarray(0, BLOCK_BYTES), Buffer.from(message)]), 'binary')
    }
    this.#outer.write(inner, BLOCK_BYTES, 'binary')
    return hash('sha256', this.#outer, 'base64').slice(0, -1)
  }
}

/** What a genuine signed value holds. */
export interface Unsigned {
  readonly id: string
  /** Signed with an older secret: re-issue it signed with the first. */
  readonly renew: boolean
}

/** Signs `value` as `value.<mac>`; the first secret signs, every one verifies (rotation). */
export class Signer {
  readonly #keys: HmacSha256[]

  constructor (secrets: string[]) {
    this.#keys = secrets.map((secret) => new HmacSha256(Buffer.from(secret)))
  }

  sign (value: string): string {
    return `${value}.${(this.#keys[0] as HmacSha256).base64(value)}`
  }

  /** The value inside a signed one, or null when no secret made its MAC (compared in constant time). */
  unsign (signed: string): Unsigned | null {
    const dot = signed.lastIndexOf('.')
    if (dot === -1) return null
    const value = signed.slice(0, dot)
    const given = Buffer.from(signed.slice(dot + 1))
    for (let i = 0; i < this.#keys.length; i++) {
      const expected = Buffer.from((this.#keys[i] as HmacSha256).base64(value))
      if (expected.length === given.length && timingSafeEqual(expected, given)) return { id: value, renew: i > 0 }
    }
    return null
  }
}
