import { createDecipheriv } from 'node:crypto'
import { randomSlice } from '../random.js'

/**
 * The two functions of `sodium-native` that SealedCookieFactory's `sodium` option calls
 * (XChaCha20-Poly1305, combined mode: the tag follows the ciphertext); `decrypt` throws when the
 * value does not authenticate. Typed as @types/sodium-native types them.
 */
export interface SealedCookieSodium {
  crypto_aead_xchacha20poly1305_ietf_encrypt (ciphertext: Buffer, message: Buffer, ad: Buffer | null, nsec: null, npub: Buffer, key: Buffer): unknown
  crypto_aead_xchacha20poly1305_ietf_decrypt (message: Buffer, nsec: null, ciphertext: Buffer, ad: Buffer | null, npub: Buffer, key: Buffer): unknown
}

export const NONCE_BYTES = 24
export const TAG_BYTES = 16

/**
 * HChaCha20 (draft-irtf-cfrg-xchacha §2.2): the ChaCha20 block function on the key and the
 * nonce's first 16 bytes, its first and last rows kept. XChaCha20-Poly1305 is ChaCha20-Poly1305
 * under this subkey, with the nonce's last 8 bytes after 4 zero bytes as the nonce; that is how
 * a process without libsodium opens what libsodium sealed (node:crypto has no XChaCha20).
 */
export function hchacha20 (key: Buffer, nonce: Buffer): Buffer {
  const s = new Uint32Array(16)
  s[0] = 0x61707865
  s[1] = 0x3320646e
  s[2] = 0x79622d32
  s[3] = 0x6b206574
  for (let i = 0; i < 8; i++) s[4 + i] = key.readUInt32LE(4 * i)
  for (let i = 0; i < 4; i++) s[12 + i] = nonce.readUInt32LE(4 * i)
  for (let round = 0; round < 10; round++) {
    quarter(s, 0, 4, 8, 12)
    quarter(s, 1, 5, 9, 13)
    quarter(s, 2, 6, 10, 14)
    quarter(s, 3, 7, 11, 15)
    quarter(s, 0, 5, 10, 15)
    quarter(s, 1, 6, 11, 12)
    quarter(s, 2, 7, 8, 13)
    quarter(s, 3, 4, 9, 14)
  }
  const out = Buffer.allocUnsafe(32)
  for (let i = 0; i < 4; i++) {
    out.writeUInt32LE(s[i] as number, 4 * i)
    out.writeUInt32LE(s[12 + i] as number, 16 + 4 * i)
  }
  return out
}

function quarter (s: Uint32Array, a: number, b: number, c: number, d: number): void {
  s[a] = (s[a] as number) + (s[b] as number)
  s[d] = rotl((s[d] as number) ^ (s[a] as number), 16)
  s[c] = (s[c] as number) + (s[d] as number)
  s[b] = rotl((s[b] as number) ^ (s[c] as number), 12)
  s[a] = (s[a] as number) + (s[b] as number)
  s[d] = rotl((s[d] as number) ^ (s[a] as number), 8)
  s[c] = (s[c] as number) + (s[d] as number)
  s[b] = rotl((s[b] as number) ^ (s[c] as number), 7)
}

function rotl (x: number, n: number): number {
  return (x << n) | (x >>> (32 - n))
}

/** The plaintext of `sealed` (ciphertext | tag), or null when it does not authenticate. */
export function openXChaCha (sodium: SealedCookieSodium | null, key: Buffer, ad: Buffer, nonce: Buffer, sealed: Buffer): Buffer | null {
  try {
    if (sodium !== null) {
      const plaintext = Buffer.allocUnsafe(sealed.length - TAG_BYTES)
      sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(plaintext, null, sealed, ad, nonce, key)
      return plaintext
    }
    const iv = Buffer.alloc(12)
    nonce.copy(iv, 4, 16)
    const decipher = createDecipheriv('chacha20-poly1305', hchacha20(key, nonce), iv, { authTagLength: TAG_BYTES })
    decipher.setAAD(ad, { plaintextLength: sealed.length - TAG_BYTES })
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES))
    const plaintext = decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES))
    decipher.final()
    return plaintext
  } catch {
    return null
  }
}

// The plaintext's bytes, written here rather than into a buffer of their own per seal (sealing
// is synchronous: one at a time); grown to the largest session seen.
let scratch = Buffer.allocUnsafeSlow(1024)

/** header | nonce | ciphertext | tag, the header authenticated too. */
export function sealXChaCha (sodium: SealedCookieSodium, key: Buffer, header: Buffer, plaintext: string): Buffer {
  // UTF-8 takes at most 3 bytes per UTF-16 unit.
  if (scratch.length < plaintext.length * 3) scratch = Buffer.allocUnsafeSlow(plaintext.length * 3)
  const length = scratch.write(plaintext)
  const start = header.length + NONCE_BYTES
  const body = Buffer.allocUnsafe(start + length + TAG_BYTES)
  body.set(header)
  const nonce = randomSlice(NONCE_BYTES)
  body.set(nonce, header.length)
  sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(body.subarray(start), scratch.subarray(0, length), header, null, nonce, key)
  return body
}
