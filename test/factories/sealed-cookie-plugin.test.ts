// SealedCookieFactory behind the plugin: the session lives in the signed cookie and nowhere else.
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { Signer } from '@fastify/cookie'
import type { LightMyRequestResponse } from 'fastify'
import t from 'tap'
import { SealedCookieFactory, Session } from '../../src/index.js'
import { Client, SECRET, buildApp, setCookies, type Options } from '../helpers/app.js'

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
const signer = new Signer(SECRET)

function sealedApp (keys: Buffer | Buffer[], options: Options = {}): ReturnType<typeof buildApp> {
  return buildApp({ factory: new SealedCookieFactory({ keys }), ...options })
}

/** The sealed value inside the response's signed session cookie. */
function sealedOf (response: LightMyRequestResponse, name = 'sid'): string {
  const cookie = response.cookies.find((c) => c.name === name)
  const result = signer.unsign(cookie?.value ?? '')
  if (!result.valid) throw new Error('no validly signed session cookie in the response')
  return result.value as string
}

/** A Cookie header that carries `sealed`, signed as the plugin would. */
function cookieFor (sealed: string): string {
  return `sid=${signer.sign(sealed)}`
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

t.test('tampering with any character of the seal, under a valid signature, gives a fresh session', async (t) => {
  const keys = randomBytes(32)
  const app = await sealedApp(keys)
  t.teardown(() => app.close())
  const sealed = sealedOf(await app.inject({ method: 'POST', url: '/set', payload: { user: 'ada' } }))
  const statuses = new Set<number>()
  let leaked = 0
  for (let i = 0; i < sealed.length; i++) {
    const next = ALPHABET[(ALPHABET.indexOf(sealed[i]!) + 1) % ALPHABET.length]
    const tampered = sealed.slice(0, i) + next + sealed.slice(i + 1)
    const response = await app.inject({ url: '/read', headers: { cookie: cookieFor(tampered) } })
    statuses.add(response.statusCode)
    if (response.json().data.user !== undefined) leaked++
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
