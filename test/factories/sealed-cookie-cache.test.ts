// SealedCookieFactory's cache of opened seals (`cacheBytes`): a returning cookie is not decrypted
// again, yet every load still gets a session of its own, expiry is checked on every hit, and the
// memory it holds stays under its bound in bytes.
import { randomBytes } from 'node:crypto'
import type { LightMyRequestResponse } from 'fastify'
import t from 'tap'
import { SealedCookieFactory, Session } from '../../src/index.js'
import { buildApp, setCookies } from '../helpers/app.js'
import { fakeClock } from '../helpers/clock.js'

/** A session as the plugin hands it to `save`: stamped, alive for `ttl` ms. */
function stamped (data: Record<string, unknown>, ttl: number | null = 60_000): Session {
  const session = new Session(data)
  session.expiresAt = ttl === null ? null : Date.now() + ttl
  return session
}

/** The sealed value as a cookie parser hands it: an equal string, not the very one `save` returned. */
function incoming (sealed: string): string {
  return (' ' + sealed).slice(1)
}

/** The sealed value in the response's session cookie: the seal itself, no HMAC over it. */
function sealedOf (response: LightMyRequestResponse): string {
  const value = response.cookies.find((c) => c.name === 'sid')?.value ?? ''
  if (value === '' || value.includes('.')) throw new Error('no unsigned sealed session cookie in the response')
  return value
}

const cookieFor = (sealed: string): string => `sid=${sealed}`

t.test('cacheBytes must be a whole number of bytes, 0 or more', async (t) => {
  for (const cacheBytes of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '1024', null, 2 ** 53]) {
    t.throws(() => new SealedCookieFactory({ keys: randomBytes(32), cacheBytes: cacheBytes as number }), { code: 'FST_SESSION_INVALID_OPTIONS' }, String(cacheBytes))
  }
  t.doesNotThrow(() => new SealedCookieFactory({ keys: randomBytes(32), cacheBytes: 0 }))
})

t.test('a second load of one seal is a hit: equal data and clocks, in a session and objects of its own', async (t) => {
  const factory = new SealedCookieFactory({ keys: randomBytes(32) })
  const sealed = factory.save(stamped({ user: 'ada', roles: ['admin'], prefs: { theme: 'dark' } }))
  const first = factory.load(incoming(sealed)) as Session
  t.same(factory.cache, { entries: 1, bytes: factory.cache.bytes, hits: 0, misses: 1 }, 'the first load opened it')
  const second = factory.load(incoming(sealed)) as Session
  t.equal(factory.cache.hits, 1, 'the second came from the cache')

  t.not(second, first, 'not the same session')
  t.same({ ...second.data }, { ...first.data }, 'equal data')
  t.same([second.createdAt, second.touchedAt, second.expiresAt], [first.createdAt, first.touchedAt, first.expiresAt], 'equal clocks')
  t.equal(second.id, sealed)
  t.equal(second.isNew, false)
  t.equal(second.isModified, false)
  t.not(second.get('roles'), first.get('roles'), 'no object is shared')
  t.not(second.get('prefs'), first.get('prefs'))

  // Requests change their sessions in place; the next load of the same seal sees none of it.
  for (const session of [first, second]) {
    ;(session.get('roles') as string[]).push('root')
    ;(session.get('prefs') as Record<string, string>).theme = 'light'
    session.set('user', 'mallory')
  }
  const third = factory.load(incoming(sealed)) as Session
  t.equal(factory.cache.hits, 2)
  t.same({ ...third.data }, { user: 'ada', roles: ['admin'], prefs: { theme: 'dark' } }, 'what was sealed, untouched')
})

t.test('an expired seal in the cache is not served, and leaves it', async (t) => {
  const clock = fakeClock(t)
  const factory = new SealedCookieFactory({ keys: randomBytes(32) })
  const sealed = factory.save(stamped({ user: 'ada' }, 1_000))
  t.equal(factory.load(sealed)?.get('user'), 'ada')
  t.equal(factory.load(sealed)?.get('user'), 'ada')
  t.same([factory.cache.entries, factory.cache.hits], [1, 1], 'cached, and served once')
  clock.advance(999)
  t.equal(factory.load(sealed)?.get('user'), 'ada', 'alive until its expiresAt')
  clock.advance(1)
  t.equal(factory.load(sealed), null, 'dead at its expiresAt')
  t.same([factory.cache.entries, factory.cache.bytes, factory.cache.hits], [0, 0, 2], 'dropped, and not counted as served')
  t.equal(factory.load(sealed), null, 'opened again, still dead')
  t.equal(factory.cache.entries, 0, 'an expired seal is not cached')

  const forever = factory.save(stamped({ user: 'ada' }, null))
  factory.load(forever)
  clock.advance(400 * 86_400_000)
  t.equal(factory.load(forever)?.get('user'), 'ada', 'a seal without expiresAt has none in the cache either')
})

t.test('the cache is bounded in bytes: a big seal counts for more, the least recently used go first', async (t) => {
  const small = (i: number): Session => stamped({ n: i })
  const probe = new SealedCookieFactory({ keys: randomBytes(32) })
  probe.load(probe.save(small(1)))
  const entryBytes = probe.cache.bytes
  const big = probe.save(stamped({ pad: 'x'.repeat(3_000) }))
  probe.load(big)
  t.ok(probe.cache.bytes - entryBytes >= big.length + 3_000, 'a 4 KB seal is counted for its size, not as one more entry')
  t.ok(entryBytes >= probe.save(small(1)).length, 'a small one for at least its own')
  const wide = stamped({ name: 'a'.repeat(2_000) + '€' })
  const wideJson = JSON.stringify([wide.createdAt, wide.touchedAt, wide.expiresAt, wide.data])
  const counted = probe.cache.bytes
  const wideSealed = probe.save(wide)
  probe.load(wideSealed)
  t.ok(probe.cache.bytes - counted >= wideSealed.length + 2 * wideJson.length, 'one character beyond Latin-1 makes JavaScript hold the whole text at two bytes a character: so it is counted')

  // Room for three small entries.
  const factory = new SealedCookieFactory({ keys: randomBytes(32), cacheBytes: entryBytes * 3 + 10 })
  const [a, b, c, d] = [1, 2, 3, 4].map((i) => factory.save(small(i))) as [string, string, string, string]
  for (const sealed of [a, b, c]) factory.load(sealed)
  t.equal(factory.cache.entries, 3)
  factory.load(a) // a is now the most recently used; b the least
  factory.load(d)
  t.equal(factory.cache.entries, 3, 'one went to make room')
  t.ok(factory.cache.bytes <= entryBytes * 3 + 10, 'never above the bound')
  const hits = factory.cache.hits
  t.equal(factory.load(a)?.get('n'), 1)
  t.equal(factory.load(c)?.get('n'), 3)
  t.equal(factory.load(d)?.get('n'), 4)
  t.equal(factory.cache.hits, hits + 3, 'the recently used stayed')
  t.equal(factory.load(b)?.get('n'), 2, 'the evicted one still opens')
  t.equal(factory.cache.hits, hits + 3, 'but from the cookie, not the cache')

  const before = { ...factory.cache }
  t.equal(factory.load(factory.save(stamped({ pad: 'x'.repeat(3_000) })))?.get('pad'), 'x'.repeat(3_000), 'a seal bigger than the whole cache opens')
  t.same([factory.cache.entries, factory.cache.bytes], [before.entries, before.bytes], 'without being cached or evicting anything')
})

t.test('the default bound is 1 MiB; 0 turns the cache off', async (t) => {
  const factory = new SealedCookieFactory({ keys: randomBytes(32) })
  const seals = Array.from({ length: 4_000 }, (_, i) => factory.save(stamped({ n: i, pad: 'x'.repeat(200) })))
  for (const sealed of seals) factory.load(sealed)
  t.ok(factory.cache.bytes <= 1024 * 1024, `${factory.cache.bytes} bytes held`)
  t.ok(factory.cache.bytes > 1024 * 1024 - 1_000, 'and it fills it')
  t.ok(factory.cache.entries < seals.length)

  const off = new SealedCookieFactory({ keys: randomBytes(32), cacheBytes: 0 })
  const sealed = off.save(stamped({ user: 'ada' }))
  t.equal(off.load(sealed)?.get('user'), 'ada')
  t.equal(off.load(sealed)?.get('user'), 'ada')
  t.same(off.cache, { entries: 0, bytes: 0, hits: 0, misses: 0 })
})

t.test('the cache keeps only the canonical spelling: a variant of a cached seal still does not open', async (t) => {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  const factory = new SealedCookieFactory({ keys: randomBytes(32) })
  let sealed = ''
  for (let pad = ''; sealed.length % 4 === 0; pad += 'x') sealed = factory.save(stamped({ pad }))
  t.ok(factory.load(sealed))
  const last = alphabet.indexOf(sealed[sealed.length - 1]!)
  const variant = sealed.slice(0, -1) + alphabet[last ^ 1]
  t.same(Buffer.from(variant, 'base64url'), Buffer.from(sealed, 'base64url'), 'the same bytes, spelled differently')
  t.equal(factory.load(variant), null)
  t.equal(factory.cache.entries, 1)
})

t.test('through the plugin: a replayed cookie whose session was changed in place gets what it sealed', async (t) => {
  const factory = new SealedCookieFactory({ keys: randomBytes(32) })
  const app = await buildApp({ factory })
  app.get('/add', async (request) => {
    const cart = request.session.get('cart') as number[]
    cart.push(cart.length + 1)
    return { cart }
  })
  t.teardown(() => app.close())
  const sealed = sealedOf(await app.inject({ method: 'POST', url: '/set', payload: { cart: [1] } }))
  t.same((await app.inject({ url: '/read', headers: { cookie: cookieFor(sealed) } })).json().data, { cart: [1] })
  for (let i = 0; i < 2; i++) {
    const added = await app.inject({ url: '/add', headers: { cookie: cookieFor(sealed) } })
    t.same(added.json().cart, [1, 2], 'each replay starts from what the cookie sealed')
    t.not(sealedOf(added), sealed, 'the change in place was saved, in a new seal')
  }
  const replayed = await app.inject({ url: '/read', headers: { cookie: cookieFor(sealed) } })
  t.equal(factory.cache.hits, 3, 'the replays came from the cache')
  t.same(replayed.json().data, { cart: [1] }, 'and hold what that cookie sealed')
})

t.test('through the plugin: a cached seal of an older key is resealed on every load, as an uncached one', async (t) => {
  const oldKey = randomBytes(32)
  const newKey = randomBytes(32)
  const sealedOld = new SealedCookieFactory({ keys: oldKey }).save(stamped({ user: 'ada' }))
  const factory = new SealedCookieFactory({ keys: [newKey, oldKey] })
  const app = await buildApp({ factory })
  t.teardown(() => app.close())
  for (const time of ['opened', 'cached']) {
    const response = await app.inject({ url: '/read', headers: { cookie: cookieFor(sealedOld) } })
    t.same(response.json().data, { user: 'ada' })
    t.equal(setCookies(response).length, 1, `${time}: resealed with the first key`)
  }
  t.equal(factory.cache.hits, 1)
})

t.test('through the plugin: past the idle timeout, a cached seal gives a fresh session', async (t) => {
  const clock = fakeClock(t)
  const factory = new SealedCookieFactory({ keys: randomBytes(32) })
  const app = await buildApp({ factory, idleTimeout: 60 })
  t.teardown(() => app.close())
  const sealed = sealedOf(await app.inject({ method: 'POST', url: '/set', payload: { user: 'ada' } }))
  t.same((await app.inject({ url: '/read', headers: { cookie: cookieFor(sealed) } })).json().data, { user: 'ada' })
  t.equal(factory.cache.entries, 1)
  clock.advance(60_001)
  const late = await app.inject({ url: '/read', headers: { cookie: cookieFor(sealed) } })
  t.same(late.json().data, {}, 'fresh session')
  t.equal(factory.cache.entries, 0, 'the dead seal left the cache')
})
