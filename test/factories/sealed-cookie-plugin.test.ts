// SealedCookieFactory behind the plugin: the session lives in the cookie, sealed, and nowhere else.
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { Signer } from '@fastify/cookie'
import type { LightMyRequestResponse } from 'fastify'
import t from 'tap'
import { SealedCookieFactory, Session } from '../../src/index.js'
import { Client, OLD_SECRET, SECRET, buildApp, sessionCookie, setCookies, type Options } from '../helpers/app.js'

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

function sealedApp (keys: Buffer | Buffer[], options: Options = {}): ReturnType<typeof buildApp> {
  return buildApp({ factory: new SealedCookieFactory({ keys }), ...options })
}

/** The sealed value in the response's session cookie: the seal itself, no HMAC over it. */
function sealedOf (response: LightMyRequestResponse, name = 'sid'): string {
  const value = response.cookies.find((c) => c.name === name)?.value ?? ''
  if (value === '' || value.includes('.')) throw new Error('no unsigned sealed session cookie in the response')
  return value
}

/** A Cookie header that carries `sealed` as the plugin writes it: unsigned. */
function cookieFor (sealed: string): string {
  return `sid=${sealed}`
}

/** A Cookie header that carries `sealed` as releases before 0.2 wrote it: signed as @fastify/cookie signs. */
function signedCookieFor (sealed: string, secret = SECRET): string {
  return `sid=${encodeURIComponent(new Signer(secret).sign(sealed))}`
}

/** A seal made directly, with timestamps the plugin would never write: the past, on demand. */
function sealDirectly (keys: Buffer, data: Record<string, unknown>, ago: { created: number, touched: number }): string {
  const session = new Session(data)
  session.createdAt = Date.now() - ago.created
  session.touchedAt = Date.now() - ago.touched
  session.expiresAt = Date.now() + 3_600_000
  return new SealedCookieFactory({ keys }).save(session)
}

t.test('the whole session travels in the cookie: a second instance with the same keys reads it', async (t) => {
  const keys = randomBytes(32)
  const one = await sealedApp(keys)
  const two = await sealedApp(keys)
  t.teardown(() => Promise.all([one.close(), two.close()]))
  const client = new Client(one)
  await client.get('/')
  await client.post('/set', { user: 'ada' })
  const other = new Client(two)
  other.cookie = client.cookie
  const read = await other.get('/read')
  t.same(read.json().data, { counter: 1, user: 'ada' })
  t.equal((await other.get('/')).json().visits, 2)
})

t.test('tampering with any character of the seal gives a fresh session, unsigned or under a valid signature', async (t) => {
  const keys = randomBytes(32)
  const app = await sealedApp(keys)
  t.teardown(() => app.close())
  const sealed = sealedOf(await app.inject({ method: 'POST', url: '/set', payload: { user: 'ada' } }))
  const statuses = new Set<number>()
  let leaked = 0
  for (let i = 0; i < sealed.length; i++) {
    const next = ALPHABET[(ALPHABET.indexOf(sealed[i]!) + 1) % ALPHABET.length]
    const tampered = sealed.slice(0, i) + next + sealed.slice(i + 1)
    for (const cookie of [cookieFor(tampered), signedCookieFor(tampered)]) {
      const response = await app.inject({ url: '/read', headers: { cookie } })
      statuses.add(response.statusCode)
      if (response.json().data.user !== undefined) leaked++
    }
  }
  t.same([...statuses], [200], 'never a 5xx')
  t.equal(leaked, 0, 'no variant opened')
  const genuine = await app.inject({ url: '/read', headers: { cookie: cookieFor(sealed) } })
  t.same(genuine.json().data, { user: 'ada' }, 'the untouched seal still opens')
})

t.test('a cookie sealed with a key no longer configured gives a fresh session and is cleared', async (t) => {
  const before = await sealedApp(randomBytes(32))
  const after = await sealedApp(randomBytes(32))
  t.teardown(() => Promise.all([before.close(), after.close()]))
  const sealed = sealedOf(await before.inject({ method: 'POST', url: '/set', payload: { user: 'ada' } }))
  const response = await after.inject({ url: '/read', headers: { cookie: cookieFor(sealed) } })
  t.equal(response.statusCode, 200)
  t.same(response.json().data, {})
  t.match(setCookies(response)[0], /^sid=;.*Max-Age=0/, 'the dead cookie is cleared')
  const untouched = await after.inject({ url: '/untouched', headers: { cookie: cookieFor(sealed) } })
  t.match(setCookies(untouched)[0], /^sid=;.*Max-Age=0/, 'even on a route that never reads the session')
})

t.test('key rotation: a session opened with an older key is resealed with the first and re-sent', async (t) => {
  const oldKey = randomBytes(32)
  const newKey = randomBytes(32)
  const before = await sealedApp(oldKey)
  const during = await sealedApp([newKey, oldKey])
  const rolledBack = await sealedApp([oldKey, newKey])
  t.teardown(() => Promise.all([before.close(), during.close(), rolledBack.close()]))
  const sealedOld = sealedOf(await before.inject({ method: 'POST', url: '/set', payload: { user: 'ada' } }))
  const onlyOld = new SealedCookieFactory({ keys: oldKey })
  const onlyNew = new SealedCookieFactory({ keys: newKey })

  const read = await during.inject({ url: '/read', headers: { cookie: cookieFor(sealedOld) } })
  t.same(read.json().data, { user: 'ada' })
  t.equal(setCookies(read).length, 1, 'an unchanged session sealed with an older key gets a new cookie')
  const resealed = sealedOf(read)
  t.equal((await onlyNew.load(resealed))?.get('user'), 'ada', 'sealed with the first key')
  t.equal(await onlyOld.load(resealed), null)

  const untouched = await during.inject({ url: '/untouched', headers: { cookie: cookieFor(sealedOld) } })
  t.equal(setCookies(untouched).length, 1, 'even when the handler never looks at the session')

  const again = await during.inject({ url: '/read', headers: { cookie: cookieFor(resealed) } })
  t.same(setCookies(again), [], 'a session sealed with the first key is not resealed for nothing')

  const back = await rolledBack.inject({ url: '/read', headers: { cookie: cookieFor(resealed) } })
  t.same(back.json().data, { user: 'ada' }, 'a rollback still opens what the new key sealed')
  t.equal((await onlyOld.load(sealedOf(back)))?.get('user'), 'ada', 'and reseals it with the old key, now first')
})

t.test('the stored secret never appears in the cookie', async (t) => {
  const app = await sealedApp(randomBytes(32))
  t.teardown(() => app.close())
  const secret = 'correct horse battery staple 4f9a'
  const response = await app.inject({ method: 'POST', url: '/set', payload: { secret } })
  const header = setCookies(response).join('\n')
  t.ok(header.length > 0)
  for (const form of [secret, encodeURIComponent(secret), Buffer.from(secret).toString('base64').slice(0, 20), Buffer.from(secret).toString('base64url').slice(0, 20)]) {
    t.notOk(header.includes(form), 'neither plain nor encoded')
  }
  t.same((await app.inject({ url: '/read', headers: { cookie: cookieFor(sealedOf(response)) } })).json().data, { secret })
})

t.test('a Set-Cookie line of exactly 4096 bytes passes; one byte more fails with FST_SESSION_COOKIE_TOO_LARGE', async (t) => {
  // A seal's base64url length never ends in some residues mod 4, so a single cookie name cannot
  // hit every line length: try a few name lengths until both 4096 and 4097 have been seen.
  const keys = randomBytes(32)
  const seen = new Map<number, number>() // line length -> status
  for (const name of ['s', 'sd', 'sid', 'sidx']) {
    if (seen.get(4096) === 200 && seen.get(4097) === 500) break
    const app = await sealedApp(keys, { cookie: { name } })
    const send = (size: number): Promise<LightMyRequestResponse> => app.inject({ method: 'POST', url: '/set', payload: { pad: 'x'.repeat(size) } })
    const probe = setCookies(await send(1000))[0]!
    const target = 1000 + Math.floor((4096 - probe.length) * 3 / 4)
    for (let size = target - 6; size <= target + 6; size++) {
      const response = await send(size)
      let length: number
      if (response.statusCode === 200) {
        length = Buffer.byteLength(setCookies(response)[0]!)
      } else {
        t.equal(response.json().code, 'FST_SESSION_COOKIE_TOO_LARGE')
        t.same(setCookies(response), [], 'no cookie is sent')
        const [size, limit] = (response.json().message as string).match(/\d+/g)!.map(Number)
        t.equal(limit, 4096, 'the message gives the limit')
        length = size!
      }
      if (seen.get(length) === undefined) {
        seen.set(length, response.statusCode)
        t.equal(response.statusCode, length <= 4096 ? 200 : 500, `a ${length}-byte line: ${response.statusCode}`)
      }
    }
    await app.close()
  }
  t.equal(seen.get(4096), 200, 'exactly 4096 bytes: saved')
  t.equal(seen.get(4097), 500, '4097 bytes: refused')
})

t.test('replay after the absolute timeout gives a fresh session, however recently it was rolled', async (t) => {
  const keys = randomBytes(32)
  const app = await sealedApp(keys, { absoluteTimeout: 60, idleTimeout: 30 })
  t.teardown(() => app.close())
  const dead = await sealDirectly(keys, { user: 'ada' }, { created: 61_000, touched: 1_000 })
  const response = await app.inject({ url: '/read', headers: { cookie: cookieFor(dead) } })
  t.same(response.json().data, {}, 'fresh session')
  t.match(setCookies(response)[0], /Max-Age=0/, 'the replayed cookie is cleared')
  const alive = await sealDirectly(keys, { user: 'ada' }, { created: 50_000, touched: 1_000 })
  t.same((await app.inject({ url: '/read', headers: { cookie: cookieFor(alive) } })).json().data, { user: 'ada' })
})

t.test('replay after the absolute timeout, for real: absoluteTimeout 1 s', async (t) => {
  const app = await sealedApp(randomBytes(32), { absoluteTimeout: 1 })
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.post('/set', { user: 'ada' })
  const captured = client.cookie
  t.same((await client.get('/read')).json().data, { user: 'ada' })
  await sleep(1_500)
  const replay = await app.inject({ url: '/read', headers: { cookie: captured as string } })
  t.same(replay.json().data, {}, 'the sealed cookie is dead: no server state needed')
})

t.test('past the idle timeout gives a fresh session', async (t) => {
  const keys = randomBytes(32)
  const app = await sealedApp(keys, { idleTimeout: 100 })
  t.teardown(() => app.close())
  const idle = await sealDirectly(keys, { user: 'ada' }, { created: 101_000, touched: 101_000 })
  t.same((await app.inject({ url: '/read', headers: { cookie: cookieFor(idle) } })).json().data, {})
})

t.test('rolling: activity reseals with a later touchedAt, at most once per tenth of idleTimeout', async (t) => {
  const keys = randomBytes(32)
  const factory = new SealedCookieFactory({ keys })
  const app = await sealedApp(keys, { idleTimeout: 100 })
  const fixed = await sealedApp(keys, { idleTimeout: 100, rolling: false })
  t.teardown(() => Promise.all([app.close(), fixed.close()]))

  const recent = await sealDirectly(keys, { user: 'ada' }, { created: 50_000, touched: 5_000 })
  const quiet = await app.inject({ url: '/read', headers: { cookie: cookieFor(recent) } })
  t.same(setCookies(quiet), [], 'touched 5 s ago, idle timeout 100 s: no new cookie yet')

  const old = await sealDirectly(keys, { user: 'ada' }, { created: 50_000, touched: 15_000 })
  const before = Date.now()
  const rolled = await app.inject({ url: '/read', headers: { cookie: cookieFor(old) } })
  t.equal(setCookies(rolled).length, 1, 'touched 15 s ago: rolled by a save and a new cookie')
  const session = await factory.load(sealedOf(rolled))
  t.ok(session!.touchedAt >= before, 'idle timeout extended')
  t.ok(session!.createdAt <= before - 50_000, 'the absolute timeout still counts from creation')
  t.same({ ...session!.data }, { user: 'ada' })

  const unrolled = await fixed.inject({ url: '/read', headers: { cookie: cookieFor(old) } })
  t.same(setCookies(unrolled), [], 'rolling: false never reseals an unchanged session')
})

t.test('logout clears the cookie; the old cookie stays valid until it expires (documented)', async (t) => {
  const app = await sealedApp(randomBytes(32))
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.post('/login', { user: 'ada' })
  const captured = client.cookie as string
  const logout = await client.post('/logout')
  t.match(setCookies(logout)[0], /^sid=;.*Max-Age=0/)
  t.same((await client.get('/read')).json().data, {}, 'the browser is logged out')
  const replay = await app.inject({ url: '/read', headers: { cookie: captured } })
  t.same(replay.json().data, { user: 'ada' }, 'a stolen copy still opens: use a store-backed factory to revoke')
})

t.test('login regenerates: a new seal; with data kept, the absolute timeout runs on (a rotation never extends a session)', async (t) => {
  const keys = randomBytes(32)
  const app = await sealedApp(keys)
  t.teardown(() => app.close())
  const old = await sealDirectly(keys, { cart: [1] }, { created: 3_600_000, touched: 1_000 })
  const response = await app.inject({ method: 'POST', url: '/login', payload: { user: 'ada' }, headers: { cookie: cookieFor(old) } })
  const session = await new SealedCookieFactory({ keys }).load(sealedOf(response))
  t.same({ ...session!.data }, { cart: [1], user: 'ada' })
  t.ok(session!.createdAt <= Date.now() - 3_600_000, 'createdAt (an hour ago) survives the rotation with the cart')
})

t.test('the cookie carries the seal without an HMAC: the seal authenticates itself', async (t) => {
  const keys = randomBytes(32)
  const app = await sealedApp(keys)
  t.teardown(() => app.close())
  const response = await app.inject({ method: 'POST', url: '/set', payload: { user: 'ada' } })
  const value = response.cookies.find((c) => c.name === 'sid')?.value as string
  t.notOk(value.includes('.'), 'no signature after the seal')
  t.equal((await new SealedCookieFactory({ keys }).load(value))?.get('user'), 'ada', 'the value is the seal itself')
  const again = await app.inject({ url: '/read', headers: { cookie: cookieFor(value) } })
  t.same(again.json().data, { user: 'ada' })
  t.same(setCookies(again), [], 'an unchanged session sends no cookie')
})

t.test('a sealed cookie signed as earlier releases did still opens, data intact, and is re-issued unsigned', async (t) => {
  const keys = randomBytes(32)
  const app = await sealedApp(keys, { secret: [SECRET, OLD_SECRET] })
  t.teardown(() => app.close())
  const sealed = sealedOf(await app.inject({ method: 'POST', url: '/set', payload: { user: 'ada', cart: [1, 2] } }))
  for (const secret of [SECRET, OLD_SECRET]) {
    const read = await app.inject({ url: '/read', headers: { cookie: signedCookieFor(sealed, secret) } })
    t.same(read.json().data, { user: 'ada', cart: [1, 2] }, 'opens, signed with any configured secret')
    t.equal(setCookies(read).length, 1, 'an unchanged session gets its cookie again')
    t.equal(sealedOf(read), sealed, 'the same seal, now unsigned')
    const untouched = await app.inject({ url: '/untouched', headers: { cookie: signedCookieFor(sealed, secret) } })
    t.equal(sealedOf(untouched), sealed, 'even on a route that never reads the session')
    const counted = await app.inject({ method: 'POST', url: '/set', payload: { visits: 3 }, headers: { cookie: signedCookieFor(sealed, secret) } })
    t.same((await new SealedCookieFactory({ keys }).load(sealedOf(counted)))?.data, { user: 'ada', cart: [1, 2], visits: 3 }, 'a change reseals, unsigned')
  }
  const unknown = await app.inject({ url: '/read', headers: { cookie: signedCookieFor(sealed, 'a-secret-this-app-never-had-0123456789abcdef') } })
  t.same(unknown.json().data, {}, 'signed with a secret the app does not have: the whole value is no seal, a fresh session')
})

t.test('garbage or a forged unsigned value gives a fresh session, never an error', async (t) => {
  const keys = randomBytes(32)
  const app = await sealedApp(keys)
  t.teardown(() => app.close())
  const sealed = sealedOf(await app.inject({ method: 'POST', url: '/set', payload: { user: 'ada' } }))
  const forged = new SealedCookieFactory({ keys: randomBytes(32) }).save(new Session({ user: 'eve' }))
  for (const value of ['', 'x', '.', 'a.b', `${sealed}.`, `.${sealed}`, `${sealed}.${sealed}`, sealed.slice(1), forged, '%25', encodeURIComponent('\u00e9')]) {
    const response = await app.inject({ url: '/read', headers: { cookie: `sid=${value}` } })
    t.equal(response.statusCode, 200, 'a fresh session')
    t.same(response.json().data, {})
  }
})

t.test('a factory whose ids do not authenticate themselves (memory) still refuses an unsigned id', async (t) => {
  const app = await buildApp()
  t.teardown(() => app.close())
  const cookie = sessionCookie(await app.inject({ method: 'POST', url: '/set', payload: { user: 'ada' } })) as string
  t.same((await app.inject({ url: '/read', headers: { cookie } })).json().data, { user: 'ada' }, 'signed: opens')
  const bare = decodeURIComponent(cookie).replace(/\.[^.]*$/, '')
  t.not(bare, decodeURIComponent(cookie))
  t.same((await app.inject({ url: '/read', headers: { cookie: bare } })).json().data, {}, 'the id without its signature: a fresh session')
  t.equal(await app.sessions.load(bare), null)
})

t.test('app.sessions: load() opens an unsigned or an old signed sealed cookie; cookieFor() answers it unsigned', async (t) => {
  const keys = randomBytes(32)
  const app = await sealedApp(keys)
  t.teardown(() => app.close())
  const header = await app.sessions.cookieFor({ user: 'ada' })
  const sealed = header.slice('sid='.length)
  t.notOk(sealed.includes('.'), 'no signature')
  t.equal((await app.inject({ url: '/read', headers: { cookie: header } })).json().data.user, 'ada', 'a route opens it')
  t.equal((await app.sessions.load(header))?.get('user'), 'ada')
  t.equal((await app.sessions.load(signedCookieFor(sealed)))?.get('user'), 'ada', 'the earlier signed form opens too')
  t.equal(await app.sessions.load('sid=garbage'), null)
  t.equal(await app.sessions.load(`sid=${sealed.slice(0, -2)}`), null)
})
