// The instance API (app.sessions): a user's sessions listed and ended by handle, "sign out
// everywhere" (but this device), the session behind a Cookie header outside a route, and the
// testing helper that stores a session for a test's Cookie header.
import t from 'tap'
import type { TapTest as Tap } from './helpers/redis.js'
import Fastify, { type FastifyInstance } from 'fastify'
import sessionPlugin, { MemoryFactory, SealedCookieFactory, Session, type SessionFactory } from '../src/index.js'
import { sessionCookie } from '../src/testing.js'
import { Client, SECRET, sessionIdOf } from './helpers/app.js'
import { SyncJsonFactory } from './helpers/factories.js'

/** An app whose /login stores `user` (the userKey), with routes that list and end sessions. */
async function buildUserApp (factory: SessionFactory<any> = new MemoryFactory()): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(sessionPlugin, { factory, secret: SECRET, userKey: 'user' })
  app.post<{ Body: { user: string } }>('/login', async (request) => {
    await request.session.regenerate()
    request.session.set('user', request.body.user)
    return { ok: true }
  })
  app.get('/me', async (request) => ({ user: request.session.get('user') ?? null }))
  app.get('/devices', async (request) => app.sessions.list(request.session.get('user') as string, { request }))
  app.post('/sign-out-others', async (request) => ({ ended: await app.sessions.endAll(request.session.get('user') as string, { except: request }) }))
  return app
}

/** An app whose GET / sets n = 1, torn down with the test. */
async function countingApp (t: Tap, factory: SessionFactory<any>, options: { idleTimeout?: number } = {}): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(sessionPlugin, { factory, secret: SECRET, ...options })
  app.get('/', async (request) => {
    request.session.set('n', 1)
    return 'ok'
  })
  t.teardown(() => app.close())
  return app
}

async function loginAs (app: FastifyInstance, user: string): Promise<Client> {
  const client = new Client(app)
  await client.post('/login', { user })
  return client
}

t.test('list() shows a user\'s live sessions by opaque handle, never their ids, and marks the current one', async (t) => {
  const app = await buildUserApp()
  t.teardown(() => app.close())
  const phone = await loginAs(app, 'ada')
  const laptop = await loginAs(app, 'ada')
  await loginAs(app, 'bob')

  const listed = (await laptop.get('/devices')).json() as Array<Record<string, unknown>>
  t.equal(listed.length, 2, 'ada\'s two sessions, not bob\'s')
  t.same(listed.map((entry) => entry.current), [false, true], 'oldest first; the laptop is the current one')
  for (const entry of listed) {
    t.match(entry, { handle: /^[A-Za-z0-9_-]{22}$/, createdAt: Number, lastSeenAt: Number, expiresAt: Number })
  }
  const ids = [phone, laptop].map((client) => sessionIdOf(client.cookie as string))
  const body = JSON.stringify(listed)
  for (const id of ids) t.notOk(body.includes(id), 'no session id in the listing')
  t.same(await app.sessions.list('nobody'), [])
})

t.test('end() ends one session by handle; endAll() ends the rest, but the current request\'s', async (t) => {
  const app = await buildUserApp()
  t.teardown(() => app.close())
  const phone = await loginAs(app, 'ada')
  const tablet = await loginAs(app, 'ada')
  const laptop = await loginAs(app, 'ada')
  const bob = await loginAs(app, 'bob')

  const [phoneEntry] = await app.sessions.list('ada')
  t.equal(await app.sessions.end('bob', phoneEntry!.handle), false, 'a handle of another user ends nothing')
  t.equal(await app.sessions.end('ada', phoneEntry!.handle), true)
  t.same((await phone.get('/me')).json(), { user: null }, 'the phone is signed out')
  t.equal(await app.sessions.end('ada', phoneEntry!.handle), false, 'a handle ends once')

  t.same((await laptop.post('/sign-out-others')).json(), { ended: 1 })
  t.same((await tablet.get('/me')).json(), { user: null }, 'the tablet is signed out')
  t.same((await laptop.get('/me')).json(), { user: 'ada' }, 'the device that asked stays signed in')
  t.same((await bob.get('/me')).json(), { user: 'bob' }, 'other users are untouched')

  t.equal(await app.sessions.endAll('ada'), 1)
  t.same((await laptop.get('/me')).json(), { user: null })
  t.same(await app.sessions.list('ada'), [])
})

t.test('the index follows the user key: logout, a changed user, and a deleted key', async (t) => {
  const app = await buildUserApp()
  app.post('/logout', async (request) => {
    await request.session.destroy()
    return { ok: true }
  })
  app.post('/forget', async (request) => {
    request.session.delete('user')
    return { ok: true }
  })
  t.teardown(() => app.close())
  const one = await loginAs(app, 'ada')
  const two = await loginAs(app, 'ada')
  await one.post('/logout')
  t.equal((await app.sessions.list('ada')).length, 1, 'a destroyed session leaves the index')
  await two.post('/login', { user: 'bob' })
  t.equal((await app.sessions.list('ada')).length, 0, 'a session whose user changed is listed under the new one')
  t.equal((await app.sessions.list('bob')).length, 1)
  await two.post('/forget')
  t.equal((await app.sessions.list('bob')).length, 0, 'deleting the user key takes the session out of the index')
})

t.test('a request in flight when its user is signed out everywhere does not bring the session back', async (t) => {
  const app = await buildUserApp()
  let release = (): void => {}
  const held = new Promise<void>((resolve) => { release = resolve })
  app.post('/slow-note', async (request) => {
    await held
    request.session.set('note', 'late')
    return { ok: true }
  })
  app.post('/slow-relogin', async (request) => {
    await held
    await request.session.regenerate()
    request.session.set('note', 'late')
    return { ok: true }
  })
  t.teardown(() => app.close())
  const client = await loginAs(app, 'ada')
  const slowSave = app.inject({ method: 'POST', url: '/slow-note', headers: { cookie: client.cookie as string } })
  const slowRegenerate = app.inject({ method: 'POST', url: '/slow-relogin', headers: { cookie: client.cookie as string } })
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(await app.sessions.endAll('ada'), 1)
  release()
  const [saved, regenerated] = await Promise.all([slowSave, slowRegenerate])
  t.equal(saved.statusCode, 200)
  t.equal(regenerated.statusCode, 200)
  t.same(await app.sessions.list('ada'), [], 'neither late write brought a session back')
  t.same((await client.get('/me')).json(), { user: null })
  const regeneratedCookie = regenerated.cookies.find((c) => c.name === 'sid')
  t.equal(regeneratedCookie?.value ?? '', '', 'the late regenerate cleared its cookie instead of issuing one')
})

t.test('a factory without a user index makes the API fail with FST_SESSION_NO_USER_INDEX', async (t) => {
  const app = Fastify()
  await app.register(sessionPlugin, { factory: new SealedCookieFactory({ keys: Buffer.alloc(32, 7) }), secret: SECRET, userKey: 'user' })
  t.teardown(() => app.close())
  await t.rejects(app.sessions.list('ada'), { code: 'FST_SESSION_NO_USER_INDEX' })
  await t.rejects(app.sessions.endAll('ada'), { code: 'FST_SESSION_NO_USER_INDEX' })
  await t.rejects(app.sessions.end('ada', 'handle'), { code: 'FST_SESSION_NO_USER_INDEX' })
  await t.rejects(app.sessions.list('ada'), { message: /^SealedCookieFactory has no user index/ }, 'the message names the factory')

  const bare = Fastify()
  const memory = new MemoryFactory()
  const plain = Object.assign(Object.create(null), { load: (id: string) => memory.load(id), save: (session: Session) => memory.save(session) })
  await bare.register(sessionPlugin, { factory: plain, secret: SECRET, userKey: 'user' })
  t.teardown(() => bare.close())
  await t.rejects(bare.sessions.list('ada'), { code: 'FST_SESSION_NO_USER_INDEX', message: /^the factory has no user index/ }, 'or says "the factory" when it has no class')
})

t.test('list({ request }) from a request without a session of its own marks none current; endAll({ except }) then ends all', async (t) => {
  const app = await buildUserApp()
  t.teardown(() => app.close())
  app.get('/admin/devices', async (request) => app.sessions.list('ada', { request }))
  app.post('/admin/sign-out-ada', async (request) => ({ ended: await app.sessions.endAll('ada', { except: request }) }))
  await loginAs(app, 'ada')
  await loginAs(app, 'ada')
  const listed = (await app.inject('/admin/devices')).json() as Array<{ current: boolean }>
  t.same(listed.map((entry) => entry.current), [false, false], 'an anonymous request is none of them')
  t.same((await app.inject({ method: 'POST', url: '/admin/sign-out-ada' })).json(), { ended: 2 })
})

t.test('a factory whose sessionsOf() answers no array fails the API with a 503 error, as any broken answer', async (t) => {
  const memory = new MemoryFactory()
  const factory: SessionFactory<any> = {
    capabilities: { userIndex: true },
    load: (id) => memory.load(id),
    save: (session) => memory.save(session),
    sessionsOf: () => ({ length: 0 }) as never
  }
  const app = await buildUserApp(factory)
  t.teardown(() => app.close())
  await t.rejects(app.sessions.list('ada'), { code: 'FST_SESSION_STORE_UNAVAILABLE' })
  await t.rejects(app.sessions.endAll('ada'), { code: 'FST_SESSION_STORE_UNAVAILABLE' })
})

t.test('load() gives the session behind a Cookie header outside a route, and save() writes it back', async (t) => {
  const app = await buildUserApp()
  t.teardown(() => app.close())
  const client = await loginAs(app, 'ada')
  const cookieHeader = `theme=dark; ${client.cookie as string}`

  const session = await app.sessions.load(cookieHeader) as Session
  t.ok(session instanceof Session)
  t.equal(session.get('user'), 'ada')
  session.set('socket', 'connected')
  await session.save()
  t.same((await client.get('/me')).json(), { user: 'ada' })
  const again = await app.sessions.load({ headers: { cookie: cookieHeader } }) as Session
  t.equal(again.get('socket'), 'connected', 'the change reached the store, under the same id')
  await again.save()
  t.equal(again.id, session.id, 'an unchanged save writes nothing and keeps the id')

  t.equal(await app.sessions.load(undefined), null)
  t.equal(await app.sessions.load(''), null)
  t.equal(await app.sessions.load('theme=dark'), null, 'no session cookie')
  t.equal(await app.sessions.load(`sid=${sessionIdOf(client.cookie as string)}.forged`), null, 'a forged signature')

  again.regenerate()
  await t.rejects(again.save(), { code: 'FST_SESSION_ID_CHANGED' }, 'no response could carry a new id')
  const last = await app.sessions.load(cookieHeader) as Session
  await last.destroy()
  await last.save()
  t.equal(await app.sessions.load(cookieHeader), null, 'destroy() and save() end it')
  t.same((await client.get('/me')).json(), { user: null })
})

t.test('load() fails closed like a route: an expired session is destroyed, a factory fault is a 503 error', async (t) => {
  // This factory keeps expired records (MemoryFactory drops them itself): the plugin's own check is seen.
  const factory = new SyncJsonFactory()
  const app = await countingApp(t, factory, { idleTimeout: 1 })
  const client = new Client(app)
  await client.get('/')
  t.ok(await app.sessions.load(client.cookie as string))
  await new Promise((resolve) => setTimeout(resolve, 1100))
  t.equal(factory.rows.size, 1, 'the factory still holds the idle session')
  t.equal(await app.sessions.load(client.cookie as string), null)
  t.equal(factory.rows.size, 0, 'load() destroyed it')

  const broken = Fastify()
  await broken.register(sessionPlugin, { factory: { load () { throw new Error('down') }, save: () => 'x' }, secret: SECRET })
  t.teardown(() => broken.close())
  await t.rejects(broken.sessions.load(client.cookie as string), { code: 'FST_SESSION_STORE_UNAVAILABLE' })
})

t.test('a stateless factory cannot save a session loaded outside a route: its id would change', async (t) => {
  const app = await countingApp(t, new SealedCookieFactory({ keys: Buffer.alloc(32, 7) }))
  const client = new Client(app)
  await client.get('/')
  const session = await app.sessions.load(client.cookie as string) as Session
  t.equal(session.get('n'), 1, 'reading works')
  session.set('n', 2)
  await t.rejects(session.save(), { code: 'FST_SESSION_ID_CHANGED' })
})

t.test('sessionCookie() from the testing kit starts an inject test logged in', async (t) => {
  const app = await buildUserApp()
  t.teardown(() => app.close())
  const cookie = await sessionCookie(app, { user: 'ada', cart: ['book'] })
  t.match(cookie, /^sid=[^;\s]+$/)
  t.same((await app.inject({ url: '/me', headers: { cookie } })).json(), { user: 'ada' })
  t.equal((await app.sessions.list('ada')).length, 1, 'stored like any session, user index included')

  const admin = Fastify()
  await admin.register(sessionPlugin, { factory: new MemoryFactory(), secret: SECRET, decorator: 'admin', cookie: { name: 'asid' } })
  admin.get('/', async (request) => ({ role: (request as unknown as { admin: Session }).admin.get('role') }))
  t.teardown(() => admin.close())
  const adminCookie = await sessionCookie(admin, { role: 'root' }, { decorator: 'admin' })
  t.match(adminCookie, /^asid=/)
  t.same((await admin.inject({ url: '/', headers: { cookie: adminCookie } })).json(), { role: 'root' })

  await t.rejects(sessionCookie(Fastify(), {}), TypeError, 'an app without the plugin says so')
})
