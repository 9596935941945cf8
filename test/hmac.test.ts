// The signing HMAC must write exactly what @fastify/cookie's Signer writes, since the Signer
// verifies every cookie: any secret (either side of the 64-byte block) and any value.
import t from 'tap'
import fc from 'fast-check'
import { Signer } from '@fastify/cookie'
import { HmacSha256 } from '../src/hmac.js'

t.test('signs as @fastify/cookie\'s Signer does, for secrets either side of the 64-byte block', async (t) => {
  for (const secret of ['s'.repeat(32), 'x'.repeat(63), 'y'.repeat(64), 'z'.repeat(65), 'é'.repeat(33), 'k'.repeat(200)]) {
    const ours = new HmacSha256(secret)
    const theirs = new Signer(secret, 'sha256')
    for (const value of ['', 'id', 'a'.repeat(43), 'ünïcode-✓', 'v'.repeat(4096), 'w'.repeat(4097), '€'.repeat(5000)]) {
      t.equal(ours.sign(value), theirs.sign(value), `${Buffer.byteLength(secret)}-byte secret, ${value.length}-unit value`)
    }
  }
})

t.test('one signer stays right across values of any length, long then short (its scratch buffer is reused)', async (t) => {
  fc.assert(fc.property(
    fc.string({ minLength: 1, maxLength: 120, unit: 'grapheme' }),
    fc.array(fc.string({ maxLength: 5000, unit: 'grapheme', size: 'max' }), { minLength: 1, maxLength: 6 }),
    (secret, values) => {
      const ours = new HmacSha256(secret)
      const theirs = new Signer(secret, 'sha256')
      for (const value of values) {
        if (ours.sign(value) !== theirs.sign(value)) return false
        if (!theirs.unsign(ours.sign(value)).valid) return false
      }
      return true
    }
  ), { numRuns: 60 })
  t.pass('every value signed as the Signer signs it, and the Signer verifies it')
})
