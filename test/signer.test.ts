// The cookie signer computes HMAC-SHA256 from two one-shot hashes. Its MACs must be createHmac's
// to the bit, for every secret and message, and its cookies interchangeable with those of
// @fastify/cookie's signer (which @fastify/session uses).
import { createHmac } from 'node:crypto'
import { Signer as FastifyCookieSigner } from '@fastify/cookie'
import fc from 'fast-check'
import t from 'tap'
import { Signer } from '../src/signer.js'
import { checkProperty } from './helpers/fuzz.js'

function reference (secret: string, message: string): string {
  return createHmac('sha256', secret).update(message).digest('base64').replace(/=+$/, '')
}

// Short secrets, and long ones: 65 to 200 graphemes are always past the 64-byte block, so
// hashed first. (fast-check's default size would keep a `maxLength: 200` string short.)
const secret = fc.oneof(
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 64 }),
  fc.string({ unit: 'grapheme', minLength: 65, maxLength: 200, size: 'max' })
)
const message = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 200 }),
  fc.string({ unit: 'binary', maxLength: 60 }),
  // Around the 4096-unit scratch buffer, past which the message is hashed from a copy.
  fc.tuple(fc.integer({ min: 4090, max: 4100 }), fc.constantFrom('a', 'é', '€', '🍪')).map(([units, c]) => c.repeat(Math.ceil(units / c.length)).slice(0, units))
)

t.test('the MAC is HMAC-SHA256 as createHmac computes it, for any secret and message', async (t) => {
  await checkProperty(fc.property(secret, message, (key, value) => {
    const signed = new Signer([key]).sign(value)
    return signed === `${value}.${reference(key, value)}`
  }), 300)
  t.pass('300 secrets and messages, including long secrets, unicode, lone surrogates and 4096±6 units')
})

t.test('secrets either side of the 64-byte block sign as createHmac does', async (t) => {
  for (const bytes of [63, 64, 65, 200]) {
    const key = 'k'.repeat(bytes)
    t.equal(new Signer([key]).sign('id'), `id.${reference(key, 'id')}`, `a ${bytes}-byte secret`)
  }
  const wide = '€'.repeat(22) // 22 characters, 66 UTF-8 bytes: past the block by bytes, not by length
  t.equal(new Signer([wide]).sign('id'), `id.${reference(wide, 'id')}`, 'a 22-character, 66-byte secret')
})

t.test('one signer stays right across messages of any length, long then short (its scratch buffer is reused)', async (t) => {
  await checkProperty(fc.property(secret, fc.array(message, { minLength: 2, maxLength: 6 }), (key, values) => {
    const signer = new Signer([key])
    return values.every((value) => signer.sign(value) === `${value}.${reference(key, value)}`)
  }), 100)
  t.pass('100 sequences on one signer each')
})

t.test('cookies cross between this signer and @fastify/cookie\'s in both directions', async (t) => {
  await checkProperty(fc.property(secret, fc.string({ unit: 'grapheme', maxLength: 100 }), (key, value) => {
    const ours = new Signer([key])
    const theirs = new FastifyCookieSigner(key, 'sha256')
    const mine = ours.sign(value)
    const fromThem = theirs.sign(value)
    const back = theirs.unsign(mine)
    const opened = ours.unsign(fromThem)
    return mine === fromThem && back.valid && back.value === value && opened !== null && opened.id === value
  }), 200)
  t.pass('200 secrets and values')
})

t.test('the first secret signs, every one verifies, and an older one asks for a renewal', async (t) => {
  const first = 'a-first-secret-of-thirty-two-characters!'
  const older = 'an-older-secret-of-thirty-two-characters'
  const signer = new Signer([first, older])
  t.equal(signer.sign('id'), `id.${reference(first, 'id')}`)
  t.same(signer.unsign(`id.${reference(first, 'id')}`), { id: 'id', renew: false })
  t.same(signer.unsign(`id.${reference(older, 'id')}`), { id: 'id', renew: true })
  t.same(signer.unsign('a.b.c.' + reference(first, 'a.b.c')), { id: 'a.b.c', renew: false }, 'the last dot splits')
})

t.test('anything else is refused', async (t) => {
  const key = 'a-first-secret-of-thirty-two-characters!'
  const signer = new Signer([key])
  const mac = reference(key, 'id')
  for (const [value, why] of [
    ['id', 'no dot'],
    ['id.', 'an empty MAC'],
    [`id.${mac}=`, 'the MAC with its base64 padding'],
    [`id.${mac.slice(1)}`, 'a shorter MAC'],
    [`id.${mac.slice(0, -1)}${mac.endsWith('A') ? 'B' : 'A'}`, 'one character changed'],
    [`ie.${mac}`, 'another value under the MAC'],
    [`id.${reference('another-secret-of-thirty-two-characters', 'id')}`, 'the MAC of another secret']
  ] as const) {
    t.equal(signer.unsign(value), null, why)
  }
})
