import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto'
import t from 'tap'
import { SealedCookieFactory, Session, errors } from '../../src/index.js'

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
const KEY = randomBytes(32)
const OTHER = randomBytes(32)

/** A session as the plugin hands it to `save`: stamped, with an expiry. */
function stamped (data: Record<string, unknown> = {}, times: Partial<Record<'createdAt' | 'touchedAt' | 'expiresAt', number | null>> = {}): Session {
  const session = new Session(data)
  const now = Date.now()
  session.createdAt = times.createdAt ?? now
  session.touchedAt = times.touchedAt ?? now
  session.expiresAt = times.expiresAt === undefined ? now + 60_000 : times.expiresAt
  return session
}

function reencode (bytes: Buffer): string {
  return bytes.toString('base64url')
}

t.test('options: keys are 32 bytes, as a Buffer, Uint8Array, base64 or base64url string', async (t) => {
  const key = randomBytes(32)
  const forms = [
    key,
    new Uint8Array(key),
    key.toString('base64'),
    key.toString('base64url'),
    [key.toString('base64'), randomBytes(32)]
  ]
  const sealed = await new SealedCookieFactory({ keys: key }).save(stamped({ n: 1 }))
  for (const keys of forms) {
    const loaded = await new SealedCookieFactory({ keys }).load(sealed)
    t.equal(loaded?.get('n'), 1, 'every spelling of one key opens what the others sealed')
  }
})

t.test('options: a missing, short, long, malformed or repeated key fails with FST_SESSION_INVALID_OPTIONS', async (t) => {
  const good = randomBytes(32)
  const bad: unknown[] = [
    undefined,
    null,
    {},
    { keys: [] },
    { keys: null },
    { keys: 42 },
    { keys: randomBytes(31) },
    { keys: randomBytes(33) },
    { keys: 'a passphrase is not a key' },
    { keys: 'c2hvcnQ=' },
    { keys: randomBytes(32).toString('hex') },
    { keys: [good, 'not base64 !'] },
    { keys: [good, good.toString('base64url')] }
  ]
  for (const options of bad) {
    t.throws(() => new SealedCookieFactory(options as never), { code: 'FST_SESSION_INVALID_OPTIONS' }, JSON.stringify(options))
  }
  t.throws(() => new SealedCookieFactory({ keys: [good, randomBytes(16)] }), /keys\[1\]/, 'the message names the bad key by position')
  t.throws(() => new SealedCookieFactory({ keys: good.toString('hex') }), /Buffer\.from\(key, 'hex'\)/, 'a hex key gets a hint')
  t.ok(errors.FST_SESSION_INVALID_OPTIONS)
})

t.test('format: base64url(version 1 | key id | 96-bit iv | ciphertext | tag), a fresh iv per seal', async (t) => {
  const factory = new SealedCookieFactory({ keys: KEY })
  const session = stamped({ user: 'ada' })
  const plaintext = JSON.stringify([session.createdAt, session.touchedAt, session.expiresAt, session.data])
  const a = await factory.save(session)
  const b = await factory.save(session)
  t.match(a, /^[A-Za-z0-9_-]+$/, 'cookie-safe without encoding')
  const bytesA = Buffer.from(a, 'base64url')
  const bytesB = Buffer.from(b, 'base64url')
  t.equal(bytesA[0], 1, 'version')
  t.equal(bytesA.length, 1 + 4 + 12 + Buffer.byteLength(plaintext) + 16, 'no padding, no other overhead')
  t.same(bytesA.subarray(1, 5), bytesB.subarray(1, 5), 'one key, one key id')
  t.notSame(bytesA.subarray(5, 17), bytesB.subarray(5, 17), 'every seal gets its own iv')
  t.not(a, b)
  const otherId = Buffer.from(await new SealedCookieFactory({ keys: OTHER }).save(session), 'base64url').subarray(1, 5)
  t.notSame(otherId, bytesA.subarray(1, 5), 'another key, another key id')
  t.notOk(bytesA.includes(KEY.subarray(0, 4)), 'the key id is not the start of the key')
})

/** The v1 derivation, as documented in sealed-cookie.ts: HKDF-SHA256, empty salt, one label per use. */
function v1KeyOf (raw: Buffer): { id: Buffer, cipherKey: Buffer } {
  return {
    id: Buffer.from(hkdfSync('sha256', raw, '', 'fastify-session-factory sealed-cookie v1 key id', 4)),
    cipherKey: Buffer.from(hkdfSync('sha256', raw, '', 'fastify-session-factory sealed-cookie v1 aes-256-gcm', 32))
  }
}

/** A v1 seal built here with node:crypto alone; `aad: false` leaves out the authenticated header. */
function sealV1 (raw: Buffer, iv: Buffer, plaintext: string, { aad = true } = {}): string {
  const { id, cipherKey } = v1KeyOf(raw)
  const header = Buffer.concat([Buffer.of(1), id])
  const cipher = createCipheriv('aes-256-gcm', cipherKey, iv)
  if (aad) cipher.setAAD(header)
  return Buffer.concat([header, iv, cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]).toString('base64url')
}

// A known answer: this key, iv and plaintext seal to exactly this value, so a change to the v1
// layout, the key derivation or the additional data cannot go unnoticed. v1 cookies must open forever.
const KAT_KEY = Buffer.from(Array.from({ length: 32 }, (_, i) => i))
const KAT_IV = Buffer.from('000102030405060708090a0b', 'hex')
const KAT_TIMES = { createdAt: 1_767_225_600_000, touchedAt: 1_767_225_660_000, expiresAt: 4_102_444_800_000 }
const KAT_DATA = { user: 'ada', roles: ['admin'] }
const KAT_PLAINTEXT = JSON.stringify([KAT_TIMES.createdAt, KAT_TIMES.touchedAt, KAT_TIMES.expiresAt, KAT_DATA])
const KAT_SEALED = 'AXYYymYAAQIDBAUGBwgJCgtdSvWc00XlRZ_h094fxwjCoNkCq5cwHg3DVhsHsN2meGlQPRrJfjJumvXUfYntd8Ne_qKUzIbWnjiAcqDhOr4RPm7AX9C4vRRgn1kJ7Q5uosoHcZw_A5zrivxTbQ'

t.test('v1 known answer: a fixed key, iv and plaintext seal to a fixed value, which opens to its data and timestamps', async (t) => {
  t.equal(sealV1(KAT_KEY, KAT_IV, KAT_PLAINTEXT), KAT_SEALED, 'the test\'s own v1 sealer gives the known answer')
  const loaded = await new SealedCookieFactory({ keys: KAT_KEY }).load(KAT_SEALED)
  t.ok(loaded instanceof Session, 'the factory opens it')
  t.same({ ...loaded?.data }, KAT_DATA)
  t.same({ createdAt: loaded?.createdAt, touchedAt: loaded?.touchedAt, expiresAt: loaded?.expiresAt }, KAT_TIMES)
  t.equal(loaded?.id, KAT_SEALED)
  t.equal(loaded?.isModified, false)
})

t.test('v1: the version and key id are authenticated as AES-GCM additional data', async (t) => {
  const factory = new SealedCookieFactory({ keys: KAT_KEY })
  const withoutAad = sealV1(KAT_KEY, KAT_IV, KAT_PLAINTEXT, { aad: false })
  t.not(withoutAad, KAT_SEALED)
  t.equal(await factory.load(withoutAad), null, 'a seal made without the header as additional data does not open')

  // What the factory seals opens here only with the first 5 bytes (version | key id) as additional data.
  const session = stamped(KAT_DATA, KAT_TIMES)
  const bytes = Buffer.from(await factory.save(session), 'base64url')
  const { id, cipherKey } = v1KeyOf(KAT_KEY)
  t.same(bytes.subarray(0, 5), Buffer.concat([Buffer.of(1), id]), 'version 1, then the key id')
  const open = (aad: Buffer | null): string => {
    const decipher = createDecipheriv('aes-256-gcm', cipherKey, bytes.subarray(5, 17))
    if (aad !== null) decipher.setAAD(aad)
    decipher.setAuthTag(bytes.subarray(bytes.length - 16))
    return decipher.update(bytes.subarray(17, bytes.length - 16), undefined, 'utf8') + decipher.final('utf8')
  }
  t.equal(open(bytes.subarray(0, 5)), KAT_PLAINTEXT, 'opens with the header as additional data')
  t.throws(() => open(null), 'does not open without it')
  t.throws(() => open(Buffer.concat([Buffer.of(2), id])), 'nor with another version in it')
})

t.test('load() gives back the data and timestamps, as a session that is not new and not modified', async (t) => {
  const factory = new SealedCookieFactory({ keys: KEY })
  const session = stamped({ user: 'ada', roles: ['admin'] }, { createdAt: 1_000, touchedAt: 2_000 })
  const sealed = await factory.save(session)
  const loaded = await factory.load(sealed)
  t.ok(loaded instanceof Session)
  t.equal(loaded!.id, sealed, 'the sealed value is the id')
  t.equal(loaded!.isNew, false)
  t.equal(loaded!.isModified, false)
  t.same({ ...loaded!.data }, { user: 'ada', roles: ['admin'] })
  t.equal(loaded!.createdAt, 1_000)
  t.equal(loaded!.touchedAt, 2_000)
  t.equal(loaded!.expiresAt, session.expiresAt)
})

t.test('save() ignores the session id: the seal is the id', async (t) => {
  const factory = new SealedCookieFactory({ keys: KEY })
  const session = stamped({ a: 1 })
  session.id = 'chosen-by-someone'
  const sealed = await factory.save(session)
  t.not(sealed, 'chosen-by-someone')
  t.equal((await factory.load(sealed))?.get('a'), 1)
})

t.test('a seal past its expiresAt does not open; one saved without expiresAt has none', async (t) => {
  const factory = new SealedCookieFactory({ keys: KEY })
  t.equal(await factory.load(await factory.save(stamped({ a: 1 }, { expiresAt: Date.now() - 1 }))), null)
  const forever = await factory.load(await factory.save(stamped({ a: 1 }, { expiresAt: null })))
  t.equal(forever?.get('a'), 1)
  t.equal(forever?.expiresAt, null)
})

t.test('tampering with any bit of any byte gives null', async (t) => {
  const factory = new SealedCookieFactory({ keys: KEY })
  const bytes = Buffer.from(await factory.save(stamped({ user: 'ada' })), 'base64url')
  let opened = 0
  let tried = 0
  for (let i = 0; i < bytes.length; i++) {
    for (let bit = 0; bit < 8; bit++) {
      const copy = Buffer.from(bytes)
      copy[i]! ^= 1 << bit
      tried++
      if (await factory.load(reencode(copy)) !== null) opened++
    }
  }
  t.equal(tried, bytes.length * 8)
  t.equal(opened, 0, 'no variant opens')
})

t.test('changing any character of the sealed value to any other gives null', async (t) => {
  const factory = new SealedCookieFactory({ keys: KEY })
  const sealed = await factory.save(stamped({ user: 'ada' }))
  let opened = 0
  for (let i = 0; i < sealed.length; i++) {
    for (const char of ALPHABET + '.=+/ %') {
      if (char === sealed[i]) continue
      const variant = sealed.slice(0, i) + char + sealed.slice(i + 1)
      if (await factory.load(variant) !== null) opened++
    }
  }
  t.equal(opened, 0)
})

t.test('a non-canonical spelling of a genuine seal does not open', async (t) => {
  const factory = new SealedCookieFactory({ keys: KEY })
  // Find a seal whose last character carries unused bits (its length is not a multiple of 4).
  let sealed = ''
  for (let pad = ''; sealed.length % 4 === 0; pad += 'x') sealed = await factory.save(stamped({ pad }))
  const last = ALPHABET.indexOf(sealed[sealed.length - 1]!)
  const variant = sealed.slice(0, -1) + ALPHABET[last ^ 1]
  t.same(Buffer.from(variant, 'base64url'), Buffer.from(sealed, 'base64url'), 'the same bytes, spelled differently')
  t.equal(await factory.load(variant), null)
  t.ok(await factory.load(sealed))
})

t.test('truncated, empty, non-base64url, wrong-version, huge and random values give null', async (t) => {
  const factory = new SealedCookieFactory({ keys: KEY })
  const sealed = await factory.save(stamped({ user: 'ada' }))
  for (let length = 0; length < sealed.length; length++) {
    t.equal(await factory.load(sealed.slice(0, length)), null, `truncated to ${length}`)
  }
  t.equal(await factory.load(sealed + 'A'), null, 'extended')
  const bytes = Buffer.from(sealed, 'base64url')
  const header = bytes.subarray(0, 1 + 4 + 12 + 16)
  t.equal(await factory.load(reencode(header)), null, 'header, iv and tag without a ciphertext')
  const unknown = Buffer.from(bytes)
  unknown[0] = 3
  t.equal(await factory.load(reencode(unknown)), null, 'a version there is none of')
  unknown[0] = 2
  t.equal(await factory.load(reencode(unknown)), null, 'version 2 (XChaCha20-Poly1305) over an AES-GCM body')
  for (const garbage of [
    // base64 where base64url belongs: at least one '+', whatever characters this seal happened to get.
    '', ' ', '.', '=', sealed + '=', `${sealed}.${sealed}`, ` ${sealed}`, `+${sealed.slice(1).replace(/-|_/g, '+')}`,
    'null', '{"user":"ada"}', 'A'.repeat(1_000_000), randomBytes(3_000).toString('base64url'),
    '\u0000'.repeat(64), '🍪'.repeat(40)
  ]) {
    t.equal(await factory.load(garbage), null, `garbage of length ${garbage.length}`)
  }
})

t.test('key rotation: the first key seals, every key opens, in both directions', async (t) => {
  const oldKey = randomBytes(32)
  const newKey = randomBytes(32)
  const before = new SealedCookieFactory({ keys: oldKey })
  const during = new SealedCookieFactory({ keys: [newKey, oldKey] })
  const rolledBack = new SealedCookieFactory({ keys: [oldKey, newKey] })
  const after = new SealedCookieFactory({ keys: newKey })

  const sealedOld = await before.save(stamped({ user: 'ada' }))
  const opened = await during.load(sealedOld)
  t.equal(opened?.get('user'), 'ada', 'a new deployment opens what the old one sealed')
  const resealed = await during.save(opened!)
  t.equal((await after.load(resealed))?.get('user'), 'ada', 'and reseals it with the new key')
  t.equal(await before.load(resealed), null, 'which the old key alone cannot open')
  t.equal(await after.load(sealedOld), null, 'once the old key is dropped, its seals are dead')

  t.equal((await rolledBack.load(resealed))?.get('user'), 'ada', 'a rollback opens what the new key sealed')
  t.equal((await before.load(await rolledBack.save(opened!)))?.get('user'), 'ada')
})

t.test('a wrong key opens nothing', async (t) => {
  const sealed = await new SealedCookieFactory({ keys: KEY }).save(stamped({ user: 'ada' }))
  t.equal(await new SealedCookieFactory({ keys: OTHER }).load(sealed), null)
  t.equal(await new SealedCookieFactory({ keys: [OTHER, randomBytes(32)] }).load(sealed), null)
})

t.test('the plaintext of a stored secret never appears in the sealed value', async (t) => {
  const factory = new SealedCookieFactory({ keys: KEY })
  const secret = 'correct horse battery staple 4f9a'
  const sealed = await factory.save(stamped({ secret }))
  const bytes = Buffer.from(sealed, 'base64url')
  t.notOk(bytes.includes(secret), 'not in the bytes')
  t.notOk(sealed.includes(secret))
  // base64 of the secret at each of the three alignments it could take inside the encoding.
  for (const prefix of ['', 'a', 'ab']) {
    const encoded = Buffer.from(prefix + secret).toString('base64url').slice(4, -4)
    t.notOk(sealed.includes(encoded), `not base64url-encoded (alignment ${prefix.length})`)
  }
})
