// SealedCookieFactory with `sodium`: seals of version 2 (XChaCha20-Poly1305 through libsodium),
// which node:crypto opens too (HChaCha20 + ChaCha20-Poly1305), so instances with and without the
// add-on share their cookies.
import { createDecipheriv, hkdfSync, randomBytes } from 'node:crypto'
import sodium from 'sodium-native'
import t from 'tap'
import { hchacha20 } from '../../src/factories/sealed-xchacha.js'
import { SealedCookieFactory, Session } from '../../src/index.js'
import { runFactorySuite, runPluginSuite } from '../../src/testing.js'
import { buildApp, sessionCookie } from '../helpers/app.js'
import { tapRunner } from '../helpers/suite-runners.js'

const KEY = randomBytes(32)
const OTHER = randomBytes(32)

/** A session as the plugin hands it to `save`: stamped, with an expiry. */
function stamped (data: Record<string, unknown> = {}): Session {
  const session = new Session(data)
  session.expiresAt = Date.now() + 60_000
  return session
}

/** The v2 derivation, as documented in sealed-cookie.ts: HKDF-SHA256, empty salt, one label per use. */
function v2KeyOf (raw: Buffer): { header: Buffer, cipherKey: Buffer } {
  const id = Buffer.from(hkdfSync('sha256', raw, '', 'fastify-session-factory sealed-cookie v1 key id', 4))
  return {
    header: Buffer.concat([Buffer.of(2), id]),
    cipherKey: Buffer.from(hkdfSync('sha256', raw, '', 'fastify-session-factory sealed-cookie v2 xchacha20-poly1305', 32))
  }
}

/** A v2 seal built here with libsodium directly. */
function sealV2 (raw: Buffer, nonce: Buffer, plaintext: string): string {
  const { header, cipherKey } = v2KeyOf(raw)
  const message = Buffer.from(plaintext)
  const sealed = Buffer.alloc(message.length + 16)
  sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(sealed, message, header, null, nonce, cipherKey)
  return Buffer.concat([header, nonce, sealed]).toString('base64url')
}

/** XChaCha20-Poly1305 opened by node:crypto alone, as the factory does without the add-on. */
function openWithNode (key: Buffer, header: Buffer, nonce: Buffer, sealed: Buffer): string {
  const iv = Buffer.concat([Buffer.alloc(4), nonce.subarray(16)])
  const decipher = createDecipheriv('chacha20-poly1305', hchacha20(key, nonce), iv, { authTagLength: 16 })
  decipher.setAAD(header, { plaintextLength: sealed.length - 16 })
  decipher.setAuthTag(sealed.subarray(sealed.length - 16))
  return decipher.update(sealed.subarray(0, sealed.length - 16), undefined, 'utf8') + decipher.final('utf8')
}

const withSodium = (keys: Buffer | Buffer[] = KEY): SealedCookieFactory => new SealedCookieFactory({ keys, sodium })
const withoutSodium = (keys: Buffer | Buffer[] = KEY): SealedCookieFactory => new SealedCookieFactory({ keys })

t.test('options: sodium must be a binding with the two ChaCha20-Poly1305 functions', async (t) => {
  const encrypt = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt
  for (const bad of [null, 42, {}, { crypto_aead_xchacha20poly1305_ietf_encrypt: encrypt }, { crypto_aead_xchacha20poly1305_ietf_encrypt: encrypt, crypto_aead_xchacha20poly1305_ietf_decrypt: 'no' }]) {
    t.throws(() => new SealedCookieFactory({ keys: KEY, sodium: bad as never }), { code: 'FST_SESSION_INVALID_OPTIONS', message: /sodium-native/ }, JSON.stringify(bad))
  }
})

t.test('HChaCha20 gives the subkey of the test vector in draft-irtf-cfrg-xchacha-03 §2.2.1', async (t) => {
  const key = Buffer.from(Array.from({ length: 32 }, (_, i) => i))
  const nonce = Buffer.from('000000090000004a0000000031415927', 'hex')
  t.equal(hchacha20(key, nonce).toString('hex'), '82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc')
})

t.test('format: base64url(version 2 | key id | 192-bit nonce | ciphertext | tag), which node:crypto opens', async (t) => {
  const session = stamped({ user: 'ada', note: 'naïve 😀' })
  const plaintext = JSON.stringify([session.createdAt, session.touchedAt, session.expiresAt, session.data])
  const a = Buffer.from(withSodium().save(session), 'base64url')
  const b = Buffer.from(withSodium().save(session), 'base64url')
  const { header, cipherKey } = v2KeyOf(KEY)
  t.same(a.subarray(0, 5), header, 'version 2, then the key id of v1 (one id per key)')
  t.equal(a.length, 5 + 24 + Buffer.byteLength(plaintext) + 16, 'no padding, no other overhead')
  t.notSame(a.subarray(5, 29), b.subarray(5, 29), 'every seal gets its own nonce')
  t.equal(openWithNode(cipherKey, header, a.subarray(5, 29), a.subarray(29)), plaintext, 'the documented layout, key and additional data')
  t.throws(() => openWithNode(cipherKey, Buffer.concat([Buffer.of(1), header.subarray(1)]), a.subarray(5, 29), a.subarray(29)), 'the header is authenticated')
})

t.test('node:crypto\'s XChaCha20-Poly1305 (HChaCha20 in JS) opens what libsodium seals, for random keys, nonces and lengths', async (t) => {
  let agreed = 0
  for (let i = 0; i < 300; i++) {
    const key = randomBytes(32)
    const nonce = randomBytes(24)
    const message = randomBytes(i * 7).toString('base64')
    const sealed = Buffer.from(sealV2(key, nonce, message), 'base64url')
    if (openWithNode(v2KeyOf(key).cipherKey, sealed.subarray(0, 5), nonce, sealed.subarray(29)) === message) agreed++
  }
  t.equal(agreed, 300)
})

// A known answer: version 2 cookies must open forever, with or without the add-on.
const KAT_KEY = Buffer.from(Array.from({ length: 32 }, (_, i) => i))
const KAT_NONCE = Buffer.from('17161514131211100f0e0d0c0b0a09080706050403020100', 'hex')
const KAT_PLAINTEXT = JSON.stringify([1_767_225_600_000, 1_767_225_660_000, 4_102_444_800_000, { user: 'ada', roles: ['admin'] }])
const KAT_SEALED = 'AnYYymYXFhUUExIREA8ODQwLCgkIBwYFBAMCAQDdPY9gvF2PfmBKwDT2L4c3oWLlkz66SkVHdGGrAWJBvmUNB_fpQM83Qax22oi9o5LFfSi3rSr4r2i3TAKwJhnCF3i_Qqxcb4QNXevfcyl_gcQGUXI3r-yTprv8NA'

t.test('v2 known answer: a fixed key, iv and plaintext seal to a fixed value, which both ciphers\' factories open', async (t) => {
  t.equal(sealV2(KAT_KEY, KAT_NONCE, KAT_PLAINTEXT), KAT_SEALED, 'libsodium gives the known answer')
  for (const factory of [withSodium(KAT_KEY), withoutSodium(KAT_KEY)]) {
    const loaded = factory.load(KAT_SEALED)
    t.same({ ...loaded?.data }, { user: 'ada', roles: ['admin'] })
    t.same([loaded?.createdAt, loaded?.touchedAt, loaded?.expiresAt], [1_767_225_600_000, 1_767_225_660_000, 4_102_444_800_000])
    t.equal(loaded?.isModified, false)
  }
})

t.test('instances with and without sodium open each other\'s seals, in both directions and across a rotation', async (t) => {
  const session = stamped({ user: 'ada', big: 'é'.repeat(3000) })
  const sealers = { sodium: withSodium(), node: withoutSodium() }
  for (const [name, sealer] of Object.entries(sealers)) {
    const sealed = sealer.save(session)
    t.equal(Buffer.from(sealed, 'base64url')[0], name === 'sodium' ? 2 : 1, `${name} seals its own version`)
    for (const opener of [withSodium(), withoutSodium(), withSodium([OTHER, KEY]), withoutSodium([OTHER, KEY])]) {
      t.equal(opener.load(sealed)?.get('big'), 'é'.repeat(3000), `${name}'s seal opens, a 6 KB value too`)
    }
    t.equal(withSodium(OTHER).load(sealed), null, 'a key not listed opens nothing')
  }
})

t.test('tampering with any bit of a version 2 seal gives null, with and without sodium', async (t) => {
  const bytes = Buffer.from(withSodium().save(stamped({ user: 'ada' })), 'base64url')
  for (const factory of [withSodium(), withoutSodium()]) {
    let opened = 0
    for (let i = 0; i < bytes.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const copy = Buffer.from(bytes)
        copy[i]! ^= 1 << bit
        if (factory.load(copy.toString('base64url')) !== null) opened++
      }
    }
    t.equal(opened, 0, 'no variant opens')
  }
})

t.test('a session whose timestamps the app set to NaN seals, and opens as nothing rather than failing the request', async (t) => {
  for (const factory of [withSodium(), withoutSodium()]) {
    const session = stamped({ user: 'ada' })
    session.createdAt = Number.NaN
    t.equal(factory.load(factory.save(session)), null)
  }
})

t.test('through the plugin: counted on, unsigned, and a node:crypto cookie of an earlier deploy keeps its data', async (t) => {
  const app = await buildApp({ factory: withSodium() })
  t.teardown(() => app.close())
  const versionOf = (cookie: string | undefined): number | undefined => Buffer.from(cookie?.slice('sid='.length) ?? '', 'base64url')[0]
  const first = await app.inject({ url: '/' })
  const cookie = sessionCookie(first) as string
  t.equal(versionOf(cookie), 2, 'a version 2 seal, no HMAC over it')
  const second = await app.inject({ url: '/', headers: { cookie } })
  t.equal(second.json().visits, 2)

  const old = withoutSodium().save(stamped({ counter: 41 }))
  const carried = await app.inject({ url: '/', headers: { cookie: `sid=${old}` } })
  t.equal(carried.json().visits, 42, 'the AES-GCM seal opened')
  t.equal(versionOf(sessionCookie(carried)), 2, 'and its change went out as version 2')

  // A rotation: a seal of the old key opens, and is resealed with the new one though nothing changed.
  const rotated = await buildApp({ factory: withSodium([OTHER, KEY]) })
  t.teardown(() => rotated.close())
  const read = await rotated.inject({ url: '/read', headers: { cookie } })
  t.same(read.json().data, { counter: 1 })
  const resealed = sessionCookie(read) as string
  t.equal(withSodium(OTHER).load(resealed.slice('sid='.length))?.get('counter'), 1, 'resealed with the first key')
})

const make = (): SealedCookieFactory => new SealedCookieFactory({ keys: randomBytes(32), sodium })
runFactorySuite('SealedCookieFactory (sodium)', make, { test: tapRunner(), stateless: true, groups: { userIndex: false } })
runPluginSuite('SealedCookieFactory (sodium)', make, { test: tapRunner(), stateless: true })
