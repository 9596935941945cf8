// The cookie rules as the peers (@fastify/session, express-session) have them: saveUninitialized
// covers every request in scope, cookie.path is a scope, SameSite=None falls back to Lax over
// plain http with secure 'auto', secure: true over plain http is sent and warned about once, and
// the skip option keeps chosen requests out of session work.
import Fastify, { type FastifyHttpOptions, type FastifyInstance } from 'fastify'
import type { Server } from 'node:http'
import t from 'tap'
import sessionPlugin, { MemoryFactory, type SessionPluginOptions } from '../src/index.js'
import { Client, SECRET, attributesOf, sessionCookie, setCookies } from './helpers/app.js'
import { CountingFactory } from './helpers/factories.js'
import { LogTrap, cookieValueIn } from './helpers/log-trap.js'

type Tap = Parameters<Parameters<typeof t.test>[0]>[0]
type Extra = Omit<SessionPluginOptions, 'factory' | 'secret'>

/**
 * Routes: GET /set and /foo/set write a key, GET <path>/read reads, GET <path>/untouched never
 * looks, POST /logout destroys; every one also under /foo, /foo/x and /foobar.
 */
async function rulesApp (t: Tap, options: Extra, factory = new CountingFactory(), fastifyOptions: FastifyHttpOptions<Server> = {}): Promise<FastifyInstance> {
  const app = Fastify(fastifyOptions)
  await app.register(sessionPlugin, { factory, secret: SECRET, ...options })
  for (const base of ['', '/foo', '/foo/x', '/foobar']) {
    app.get(`${base}/set`, async (request) => {
      request.session.set('user', 'ada')
      return 'set'
    })
    app.get(`${base}/read`, async (request) => ({ data: request.session.data }))
    app.get(`${base}/untouched`, async () => 'ok')
    app.post(`${base}/logout`, async (request) => {
      await request.session.destroy()
      return 'bye'
    })
  }
  app.get('/foo', async (request) => ({ data: request.session.data }))
  t.teardown(() => app.close())
  return app
}

t.test('saveUninitialized true: every request in scope that reaches a handler gets a stored session and a cookie, read or not', async (t) => {
  const factory = new CountingFactory()
  const app = await rulesApp(t, { saveUninitialized: true }, factory)
  for (const url of ['/untouched', '/read']) {
    factory.calls.length = 0
    const response = await app.inject(url)
    const cookie = sessionCookie(response)
    t.ok(cookie !== undefined && cookie !== 'sid=', `${url}: a cookie`)
    t.same(factory.calls, ['save'], `${url}: a stored session`)
    factory.calls.length = 0
    const again = await app.inject({ url, headers: { cookie: cookie as string } })
    t.same(setCookies(again), [], `${url}: the stored session is found the next time, no new cookie`)
    t.same(factory.calls, ['load'])
  }
})

t.test('saveUninitialized true: a request rejected before its handler (a 404 from a scanner, a 400 for a bad JSON body) stores nothing and gets no cookie', async (t) => {
  const factory = new CountingFactory()
  const app = await rulesApp(t, { saveUninitialized: true }, factory)
  const notFound = await app.inject('/no-such-route')
  t.equal(notFound.statusCode, 404)
  const badBody = await app.inject({ method: 'POST', url: '/logout', headers: { 'content-type': 'application/json' }, payload: '{"oops' })
  t.equal(badBody.statusCode, 400)
  for (const response of [notFound, badBody]) t.same(setCookies(response), [], 'no Set-Cookie')
  t.same(factory.calls, [], 'nothing stored')
})

t.test('saveUninitialized false (the default): a route that never reads the session stores nothing', async (t) => {
  const factory = new CountingFactory()
  const app = await rulesApp(t, {}, factory)
  const response = await app.inject('/untouched')
  t.same(setCookies(response), [])
  t.same(factory.calls, [])
})

t.test('cookie.path is a scope: outside it no load, no save, no Set-Cookie; inside it as usual', async (t) => {
  const factory = new CountingFactory()
  const app = await rulesApp(t, { cookie: { path: '/foo' } }, factory)
  const client = new Client(app)
  const first = await client.get('/foo/set')
  t.equal(attributesOf(setCookies(first)[0] as string).Path, '/foo')
  const cookie = client.cookie as string
  t.ok(cookie)

  for (const url of ['/untouched', '/foobar/untouched', '/set', '/foobar/set', '/logout', '/foobar/logout']) {
    factory.calls.length = 0
    const method = url.endsWith('logout') ? 'POST' : 'GET'
    const response = await app.inject({ method, url, headers: { cookie } })
    t.same(factory.calls, [], `${url}: the factory is not asked`)
    t.same(setCookies(response), [], `${url}: no Set-Cookie`)
    if (url.endsWith('untouched')) t.equal(response.statusCode, 200)
    else t.equal(response.json().code, 'FST_SESSION_NOT_LOADED', `${url}: reading request.session there throws FST_SESSION_NOT_LOADED`)
    t.notMatch(String(response.headers.vary ?? ''), /cookie/i, `${url}: no Vary: Cookie`)
  }

  for (const url of ['/foo', '/foo/read', '/foo/x/read', '/foo?x=1', '/foo/read?next=/']) {
    factory.calls.length = 0
    const response = await app.inject({ url, headers: { cookie } })
    t.same(response.json().data, { user: 'ada' }, `${url}: the session is loaded`)
    t.same(factory.calls, ['load'])
  }
  const inside = await app.inject({ url: '/foo/x/set' })
  t.equal(attributesOf(setCookies(inside)[0] as string).Path, '/foo', '/foo/x: a new session is saved and sent')
  const logout = await app.inject({ method: 'POST', url: '/foo/logout', headers: { cookie } })
  t.equal(cookieValueIn(logout.headers['set-cookie']), '', 'logout inside the scope clears the cookie')
})

t.test('a stale cookie is not cleared outside the cookie\'s path, even with saveUninitialized', async (t) => {
  const factory = new CountingFactory(new MemoryFactory())
  const app = await rulesApp(t, { cookie: { path: '/foo' }, saveUninitialized: true }, factory)
  const cookie = sessionCookie(await app.inject('/foo/set')) as string
  await app.inject({ method: 'POST', url: '/foo/logout', headers: { cookie } })
  factory.calls.length = 0
  for (const url of ['/untouched', '/foobar/untouched']) {
    const response = await app.inject({ url, headers: { cookie } })
    t.same(setCookies(response), [], `${url}: nothing`)
  }
  t.same(factory.calls, [])
})

t.test('sameSite none with secure auto: SameSite=Lax and no Secure over plain http, None; Secure over https', async (t) => {
  const app = await rulesApp(t, { cookie: { sameSite: 'none' } }, new CountingFactory(), { trustProxy: true })
  const plain = attributesOf(setCookies(await app.inject('/set'))[0] as string)
  t.equal(plain.SameSite, 'Lax')
  t.equal(plain.Secure, undefined)
  const https = attributesOf(setCookies(await app.inject({ url: '/set', headers: { 'x-forwarded-proto': 'https' } }))[0] as string)
  t.equal(https.SameSite, 'None')
  t.equal(https.Secure, true)

  const cookie = sessionCookie(await app.inject('/set')) as string
  const cleared = setCookies(await app.inject({ method: 'POST', url: '/logout', headers: { cookie } }))[0] as string
  t.equal(cookieValueIn(cleared), '')
  t.equal(attributesOf(cleared).SameSite, 'Lax', 'the clearing cookie over http too')
  t.equal(attributesOf(cleared).Secure, undefined)
})

t.test('secure: true over plain http: the cookie keeps Secure, and one warn line names trustProxy', async (t) => {
  const trap = new LogTrap()
  const app = await rulesApp(t, { cookie: { secure: true } }, new CountingFactory(), { logger: trap.logger })
  const cookies: string[] = []
  for (let i = 0; i < 4; i++) {
    const response = await app.inject('/set')
    const line = setCookies(response)[0] as string
    t.equal(attributesOf(line).Secure, true, `request ${i + 1}: Secure`)
    cookies.push(sessionCookie(response) as string)
  }
  const cleared = setCookies(await app.inject({ method: 'POST', url: '/logout', headers: { cookie: cookies[0] as string } }))[0] as string
  t.equal(attributesOf(cleared).Secure, true, 'the clearing cookie too')
  const warnings = trap.lines.filter((line) => (JSON.parse(line) as { level: number }).level === 40)
  t.equal(warnings.length, 1, 'one warn line over five requests')
  t.match(warnings[0], 'trustProxy')
  t.same(trap.errors(), [])
})

t.test('secure: true over https (trustProxy) does not warn', async (t) => {
  const trap = new LogTrap()
  const app = await rulesApp(t, { cookie: { secure: true } }, new CountingFactory(), { logger: trap.logger, trustProxy: true })
  const response = await app.inject({ url: '/set', headers: { 'x-forwarded-proto': 'https' } })
  t.equal(attributesOf(setCookies(response)[0] as string).Secure, true)
  t.same(trap.lines.filter((line) => (JSON.parse(line) as { level: number }).level === 40), [])
})

t.test('skip: a plain route it matches gets no session work; others do', async (t) => {
  const factory = new CountingFactory(new MemoryFactory())
  const app = await rulesApp(t, { skip: (request) => request.url.startsWith('/foobar/'), saveUninitialized: true }, factory)
  const cookie = sessionCookie(await app.inject('/set')) as string
  factory.calls.length = 0

  const skipped = await app.inject({ url: '/foobar/untouched', headers: { cookie } })
  t.equal(skipped.statusCode, 200)
  t.same(setCookies(skipped), [], 'no Set-Cookie, even with saveUninitialized')
  const fresh = await app.inject('/foobar/untouched')
  t.same(setCookies(fresh), [], 'nor for a visitor without a cookie')
  const reading = await app.inject({ url: '/foobar/read', headers: { cookie } })
  t.equal(reading.statusCode, 200)
  t.same(reading.json().data, {}, 'request.session reads like a visitor\'s there')
  t.notMatch(String(reading.headers.vary ?? ''), /cookie/i, 'and the read sends no Vary: Cookie')
  const writing = await app.inject({ url: '/foobar/set', headers: { cookie } })
  t.equal(writing.json().code, 'FST_SESSION_NOT_LOADED', 'changing it throws FST_SESSION_NOT_LOADED')
  t.same(factory.calls, [], 'the factory is not asked')

  const page = await app.inject({ url: '/read', headers: { cookie } })
  t.same(page.json().data, { user: 'ada' }, 'a route skip does not match has its session')
  t.same(factory.calls, ['load'])
})
