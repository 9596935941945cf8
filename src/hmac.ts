import { hash } from 'node:crypto'

const BLOCK_BYTES = 64
const DIGEST_BYTES = 32
/** Messages up to this many UTF-16 units fit the scratch buffer (at most 3 UTF-8 bytes each). */
const SCRATCH_UNITS = 4096

/**
 * HMAC-SHA256 (RFC 2104) of one secret, from two one-shot `crypto.hash` calls over pads made
 * once. @fastify/cookie's `Signer` builds a `createHmac` object per call, whose construction
 * dominates for a message this short (figures: docs/benchmarks.md). The output is createHmac's,
 * so `Signer`, which verifies every cookie, accepts it.
 */
export class HmacSha256 {
  /** The inner pad, then room for the message. */
  readonly #inner = Buffer.alloc(BLOCK_BYTES + SCRATCH_UNITS * 3)
  /** The outer pad, then the inner digest. */
  readonly #outer = Buffer.alloc(BLOCK_BYTES + DIGEST_BYTES)

  constructor (secret: string) {
    const bytes = Buffer.from(secret)
    const key = Buffer.alloc(BLOCK_BYTES)
    // A key longer than the block is hashed first, as RFC 2104 says.
    ;(bytes.length > BLOCK_BYTES ? hash('sha256', bytes, 'buffer') : bytes).copy(key)
    for (let i = 0; i < BLOCK_BYTES; i++) {
      this.#inner[i] = (key[i] as number) ^ 0x36
      this.#outer[i] = (key[i] as number) ^ 0x5c
    }
  }

  /** `value.<MAC>`, the MAC in base64 without its '=' padding, as @fastify/cookie's `Signer.sign` writes it. */
  sign (value: string): string {
    let inner: string
    if (value.length <= SCRATCH_UNITS) {
      const length = this.#inner.write(value, BLOCK_BYTES, 'utf8')
      // 'binary' is latin1: one char per byte of the digest, written back as the same bytes below.
      inner = hash('sha256', this.#inner.subarray(0, BLOCK_BYTES + length), 'binary')
    } else {
      inner = hash('sha256', Buffer.concat([this.#inner.subarray(0, BLOCK_BYTES), Buffer.from(value)]), 'binary')
    }
    this.#outer.write(inner, BLOCK_BYTES, 'binary')
    return `${value}.${hash('sha256', this.#outer, 'base64').slice(0, -1)}`
  }
}
