import t from 'tap'
import Fastify from 'fastify'
import crypto from 'node:crypto'
import fastifyCookie, { Signer } from '@fastify/cookie'
import sessionPlugin, { MemoryFactory, Session, type SessionFactory } from '../src/index.js'
import { attributesOf, buildApp, Client, OLD_SECRET, SECRET, setCookies } from './helpers/app.js'
import { CountingFactory } from './helpers/factories.js'

t.test('the cookie is read through @fastify/cookie: first of its name, trimmed and decoded', async (t) => {
  const factory = new MemoryFactory()
  const app = await buildApp({ factory })
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.get('/')
  const value = (client.cookie as string).slice('sid='.length)
  const headers = [
    `sid=${value}`,
    `a=1; sid=${value}; b=2`,
    `a=1;sid=${value};b=2`,
    `sid=${value}; sid=other`,
    `sid=${encodeURIComponent(value)}`
  ]
  for (const cookie of headers) {
    t.same((await app.inject({ url: '/read', headers: { cookie } })).json().data, { counter: 1 }, cookie.replace(value, '<value>'))
  }
  for (const cookie of ['xsid=no; sidx=no', 'sid=', 'sid=%E0%A4%A']) {
    t.same((await app.inject({ url: '/read', headers: { cookie } })).json().data, {}, `${cookie}: a fresh session`)
  }
})

t.test('an app that registered @fastify/cookie with hook: false (or a later hook) still gets its session', async (t) => {
  for (const hook of [false, 'preHandler'] as const) {
    const app = Fastify()
    await app.register(fastifyCookie, { hook })
    await app.register(sessionPlugin, { factory: new MemoryFactory(), secret: SECRET })
    app.get('/', async (request) => {
      const visits = request.session.get('visits', 0) + 1
      request.session.set('visits', visits)
      return { visits }
    })
    const client = new Client(app)
    await client.get('/')
    t.same((await client.get('/')).json(), { visits: 2 }, `hook: ${String(hook)}`)
    await app.close()
  }
})

t.test('an id from idGenerator that cannot go in a cookie fails before anything is stored', async (t) => {
  const unsafe = ['with space', 'semi;colon', 'quo"te', 'ünï', '\ud800', '']
  for (const id of unsafe) {
    const factory = new CountingFactory()
    const app = await buildApp({ factory, idGenerator: () => id })
    const response = await app.inject('/')
    t.equal(response.statusCode, 500, JSON.stringify(id))
    t.equal(response.json().code, 'FST_SESSION_INVALID_OPTIONS')
    t.equal(factory.count('save'), 0, 'nothing was stored')
    t.same(setCookies(response), [])
    await app.close()
  }
  const app = await buildApp({ idGenerator: () => 'plain-id_1.with:odd+chars/=' })
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.get('/')
  t.ok(client.cookie?.startsWith('sid=plain-id_1.with:odd+chars/=.'), 'a cookie-safe id goes out as it is')
  t.same((await client.get('/')).json(), { visits: 2 })
})

t.test('cookie attributes follow the options', async (t) => {
  const app = await buildApp({
    cookie: { name: 'app', path: '/x', domain: 'example.com', httpOnly: false, secure: true, sameSite: 'strict', partitioned: true, priority: 'high' }
  })
  app.get('/x', async (request) => {
    request.session.set('a', 1)
    return 'x'
  })
  t.teardown(() => app.close())
  const [line] = setCookies(await app.inject('/x'))
  t.match(line, /^app=[^;]+;/)
  t.same(attributesOf(line as string), { Path: '/x', Domain: 'example.com', SameSite: 'Strict', Partitioned: true, Priority: 'High', Secure: true })
})

t.test('secure auto: Secure only over https, honouring trustProxy', async (t) => {
  const app = Fastify({ trustProxy: true })
  await app.register(sessionPlugin, { factory: new MemoryFactory(), secret: SECRET })
  app.get('/', async (request) => {
    request.session.set('a', 1)
    return 'x'
  })
  t.teardown(() => app.close())
  const plain = setCookies(await app.inject('/'))[0]
  t.notMatch(plain, /Secure/)
  const proxied = setCookies(await app.inject({ url: '/', headers: { 'x-forwarded-proto': 'https' } }))[0]
  t.equal(attributesOf(proxied as string).Secure, true)

  const untrusting = Fastify()
  await untrusting.register(sessionPlugin, { factory: new MemoryFactory(), secret: SECRET })
  untrusting.get('/', async (request) => {
    request.session.set('a', 1)
    return 'x'
  })
  t.teardown(() => untrusting.close())
  const spoofed = setCookies(await untrusting.inject({ url: '/', headers: { 'x-forwarded-proto': 'https' } }))[0]
  t.notMatch(spoofed, /Secure/, 'a client cannot claim https without trustProxy')
})

t.test('secure false never sets Secure; cleared cookies carry Secure over https', async (t) => {
  const app = Fastify({ trustProxy: true })
  await app.register(sessionPlugin, { factory: new MemoryFactory(), secret: SECRET, cookie: { secure: false } })
  app.get('/', async (request) => {
    request.session.set('a', 1)
    return 'x'
  })
  t.teardown(() => app.close())
  t.notMatch(setCookies(await app.inject({ url: '/', headers: { 'x-forwarded-proto': 'https' } }))[0], /Secure/)

  const auto = await buildApp()
  t.teardown(() => auto.close())
  const client = new Client(auto)
  await client.post('/login', { user: 'a' })
  const logout = await auto.inject({ method: 'POST', url: '/logout', headers: { cookie: client.cookie as string } })
  t.notMatch(setCookies(logout)[0], /Secure/)

  const proxied = Fastify({ trustProxy: true })
  await proxied.register(sessionPlugin, { factory: new MemoryFactory(), secret: SECRET })
  proxied.post('/login', async (request) => {
    request.session.set('user', 'ada')
    return 'in'
  })
  proxied.post('/logout', async (request) => {
    request.session.destroy()
    return 'out'
  })
  t.teardown(() => proxied.close())
  const https = { 'x-forwarded-proto': 'https' }
  const login = await proxied.inject({ method: 'POST', url: '/login', headers: https })
  const cookie = setCookies(login)[0]!.split(';')[0] as string
  const out = await proxied.inject({ method: 'POST', url: '/logout', headers: { ...https, cookie } })
  t.equal(setCookies(out).length, 1)
  t.match(attributesOf(setCookies(out)[0] as string), { 'Max-Age': '0', Secure: true }, 'the clearing cookie matches a Secure one')
})

t.test('a cookie signed with an older secret is accepted and re-issued signed with the first', async (t) => {
  const factory = new CountingFactory()
  const before = await buildApp({ factory, secret: OLD_SECRET })
  const client = new Client(before)
  await client.get('/')
  const oldCookie = client.cookie as string
  await before.close()

  const after = await buildApp({ factory, secret: [SECRET, OLD_SECRET] })
  t.teardown(() => after.close())
  factory.calls = []
  const read = await after.inject({ url: '/read', headers: { cookie: oldCookie } })
  t.same(read.json().data, { counter: 1 }, 'the session survives the rotation')
  t.same(factory.calls, ['load', 'load'], 're-signing needs no write (the second load checks the record is still there)')
  const [line] = setCookies(read)
  t.ok(line, 'the cookie is re-issued although the session did not change')
  const reissued = line!.split(';')[0] as string
  t.not(reissued, oldCookie)
  t.equal(reissued.split('.')[0], oldCookie.split('.')[0], 'same id, new signature')
  t.equal(read.headers['cache-control'], 'private')

  const next = await after.inject({ url: '/read', headers: { cookie: reissued } })
  t.same(setCookies(next), [], 'a cookie signed with the first secret is not re-issued')

  const written = await after.inject({ url: '/', headers: { cookie: oldCookie } })
  t.same(written.json(), { visits: 2 })
  t.equal(setCookies(written)[0]!.split(';')[0], reissued, 'a write re-signs with the first secret too')

  const dropped = await buildApp({ factory, secret: SECRET })
  t.teardown(() => dropped.close())
  factory.calls = []
  const gone = await dropped.inject({ url: '/read', headers: { cookie: oldCookie } })
  t.same(gone.json().data, {}, 'once the old secret is removed its cookies are ignored')
  t.same(factory.calls, [])
})

t.test('a persistent cookie (maxAge) carries Max-Age and Expires, and is refreshed with each touch', async (t) => {
  const factory = new CountingFactory()
  const app = await buildApp({ factory, cookie: { maxAge: 3600 }, idleTimeout: 10 })
  t.teardown(() => app.close())
  const client = new Client(app)
  const first = await client.get('/')
  const [line] = setCookies(first)
  t.match(attributesOf(line as string), { 'Max-Age': '3600', Expires: /^[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT$/ })
  const expires = Date.parse(/Expires=([^;]+)/.exec(line as string)![1] as string)
  t.ok(Math.abs(expires - (Date.now() + 3_600_000)) < 5000)

  t.same(setCookies(await client.get('/read')), [], 'no refresh before a touch is due')
  await new Promise((resolve) => setTimeout(resolve, 1100))
  factory.calls = []
  const touched = await client.get('/read')
  t.same(factory.calls, ['load', 'touch', 'load'], 'a touch, and a load that checks the record is still there before its cookie is re-sent')
  t.match(setCookies(touched), [/Max-Age=3600/], 'the touch re-sends the persistent cookie')
})

t.test('a Set-Cookie line over 4096 bytes fails the save with FST_SESSION_COOKIE_TOO_LARGE', async (t) => {
  // A factory whose ids are as long as the caller asks: the id is the data (as a stateless one).
  const factory: SessionFactory<any> = {
    async load (id) { return new Session({ size: id.length }, id) },
    async save (session) { return 'x'.repeat(session.get('size')) }
  }
  const app = await buildApp({ factory })
  t.teardown(() => app.close())
  // sid=<id>.<43-byte signature>; Path=/; HttpOnly; SameSite=Lax
  const signer = new Signer(SECRET)
  const lineLength = (size: number): number =>
    `sid=${signer.sign('x'.repeat(size))}; Path=/; HttpOnly; SameSite=Lax`.length
  const exact = 4096 - lineLength(0)
  const over = exact + 1
  t.equal(lineLength(over), 4097, 'the signature adds a constant length')

  const fits = await app.inject({ method: 'POST', url: '/set', payload: { size: exact } })
  t.equal(fits.statusCode, 200)
  t.equal(setCookies(fits)[0]!.length, 4096)
  const tooLarge = await app.inject({ method: 'POST', url: '/set', payload: { size: over } })
  t.equal(tooLarge.statusCode, 500)
  t.equal(tooLarge.json().code, 'FST_SESSION_COOKIE_TOO_LARGE')
  t.match(tooLarge.json().message, `${lineLength(over)} bytes, over the 4096-byte limit`)
  t.same(setCookies(tooLarge), [], 'no cookie is sent rather than a cookie the browser drops')
})

t.test('@fastify/cookie registered after the plugin fails with a message that says to register it first', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(sessionPlugin, { factory: new MemoryFactory(), secret: SECRET })
  await t.rejects(async () => {
    await app.register(fastifyCookie)
    await app.ready()
  }, { code: 'FST_ERR_DEC_ALREADY_PRESENT' }, 'Fastify\'s own error: the plugin no longer wraps fastify.decorate to say it')

  const first = Fastify()
  t.teardown(() => first.close())
  await first.register(fastifyCookie, { parseOptions: { path: '/' } })
  await first.register(sessionPlugin, { factory: new MemoryFactory(), secret: SECRET })
  first.get('/', async (request, reply) => {
    reply.setCookie('theme', 'dark')
    request.session.set('a', 1)
    return 'ok'
  })
  const names = setCookies(await first.inject('/')).map((line) => line.split('=')[0])
  t.same(names.sort(), ['sid', 'theme'], 'registered first, the app\'s own @fastify/cookie serves both')
})

t.test('a cookie\'s signature is checked in constant time (@fastify/cookie\'s Signer, crypto.timingSafeEqual)', async (t) => {
  const app = await buildApp({ factory: new MemoryFactory() })
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.get('/')
  const cookie = client.cookie as string
  const compared: number[] = []
  const original = crypto.timingSafeEqual
  crypto.timingSafeEqual = (a, b) => {
    compared.push(a.byteLength)
    return original(a, b)
  }
  t.teardown(() => { crypto.timingSafeEqual = original })
  // A value the verified-value cache has not seen, as it would be on a fresh instance.
  const forged = cookie.slice(0, -2) + (cookie.endsWith('AA') ? 'AB' : 'AA')
  t.same((await app.inject({ url: '/read', headers: { cookie: forged } })).json().data, {}, 'a forged signature is refused')
  t.ok(compared.length > 0 && compared.every((length) => length === 43), 'by a constant-time comparison of the two base64 HMACs')
})

t.test('a self-authenticating factory of your own: its ids go out as they are, escaped; one that cannot go in a cookie fails the save', async (t) => {
  const stored = new Map<string, Session>()
  const factory: SessionFactory = {
    capabilities: { selfAuthenticatingIds: true },
    load: (id) => stored.get(id) ?? null,
    save (session) {
      const id = String(session.get('id'))
      stored.set(id, Session.fromJSON({ id, data: { ...session.data }, createdAt: session.createdAt, touchedAt: session.touchedAt, expiresAt: session.expiresAt }))
      return id
    }
  }
  const app = await buildApp({ factory })
  t.teardown(() => app.close())
  const escaped = await app.inject({ method: 'POST', url: '/set', payload: { id: '50%.off' } })
  t.equal(escaped.statusCode, 200)
  t.match(setCookies(escaped)[0], /^sid=50%25\.off; Path=\/; HttpOnly; SameSite=Lax$/, 'no signature; % escaped as @fastify/cookie reads it back')
  const back = await app.inject({ url: '/read', headers: { cookie: 'sid=50%25.off' } })
  t.same(back.json().data, { id: '50%.off' }, 'the id with a dot opens as it is (no secret signed it)')
  const refused = await app.inject({ method: 'POST', url: '/set', payload: { id: 'semi;colon' } })
  t.equal(refused.statusCode, 500, 'the serializer refuses it')
  t.same(setCookies(refused), [])
})
