// @fastify/passport's secureSession() reads `request.session` on every route of its scope. Routes
// without session work (our `skip` option for @fastify/static's files, `config: { session: false }`
// for a health check) must still answer, reading as a visitor (DESIGN §3), also while Redis is
// down; routes that read the session fail with a 503 then, and a page that never reads it does not
// (DESIGN §4). And passport's logout/login meet the peers' regenerate(): logout leaves an empty
// session, `keepSessionInfo` keeps the data through Object.keys(session), with no heuristic (§5).
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import fastifyFormbody from '@fastify/formbody'
import fastifyPassport from '@fastify/passport'
import fastifyStatic from '@fastify/static'
import { Strategy as LocalStrategy } from 'passport-local'
import t from 'tap'
import sessionPlugin, { MemoryFactory, RedisFactory, type SessionFactory } from '../../src/index.js'
import { Client, SECRET, sessionIdOf } from '../helpers/app.js'
import { CountingFactory, SeedStyleFactory } from '../helpers/factories.js'
import { ownRedis, binariesSkipReason, randomPrefix, type TapTest } from '../helpers/redis.js'

const { Authenticator } = fastifyPassport
const serverSkip = binariesSkipReason('redis-server') ?? false

const root = fileURLToPath(new URL('./fixtures/public/', import.meta.url))
const css = readFileSync(new URL('./fixtures/public/app.css', import.meta.url), 'utf8')

interface User { id: string, name: string }
const ADA: User = { id: '1', name: 'ada' }

/** The session as the ecosystem's code sees it: data keys as properties (no module augmentation here, it would reach every test). */
type Props = Record<string, unknown> & { cart?: string[] }
/**
 * The session plugin with `skip` for the static files, a public page that never reads the session,
 * and @fastify/passport (initialize + secureSession, as its README wires them) in one scope with
 * @fastify/static, a `config: { session: false }` health check and the login routes.
 * The public page sits outside passport's scope: inside it, secureSession() reads every request's session.
 */
async function buildApp (factory: SessionFactory<any>): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(fastifyFormbody)
  await app.register(sessionPlugin, { factory, secret: SECRET, storeTimeout: 2000, skip: (request) => request.url.startsWith('/public/') })
  app.get('/about', async () => ({ page: 'about' }))

  await app.register(async (scope) => {
    const passport = new Authenticator()
    passport.use('local', new LocalStrategy((username, password, done) => {
      done(null, username === ADA.name && password === 'lovelace' ? ADA : false)
    }))
    passport.registerUserSerializer(async (user: User) => user.id)
    passport.registerUserDeserializer(async (id: string) => id === ADA.id ? ADA : null)
    await scope.register(passport.initialize())
    await scope.register(passport.secureSession())
    await scope.register(fastifyStatic, { root, prefix: '/public/' })

    scope.get('/health', { config: { session: false } }, async (request) => ({
      ok: true,
      authenticated: request.isAuthenticated(),
      isNew: request.session.isNew,
      passport: request.session.get('passport') ?? null,
      keys: Object.keys(request.session)
    }))
    // A change to the visitor's session of a route without session work throws; the code is answered.
    scope.post<{ Body: { how: string } }>('/health', { config: { session: false } }, async (request) => {
      const session = request.session
      const props = session as unknown as Props
      try {
        if (request.body.how === 'set') session.set('cart', ['x'])
        else if (request.body.how === 'property') props.cart = ['x']
        else if (request.body.how === 'delete') delete props.cart
        else if (request.body.how === 'regenerate') await session.regenerate()
        else if (request.body.how === 'destroy') await session.destroy()
        else await session.save()
        return { threw: null }
      } catch (error) {
        return { threw: (error as { code?: string }).code ?? 'no code' }
      }
    })

    scope.post('/login', { preValidation: passport.authenticate('local', { authInfo: false }) }, async (request) => ({ user: request.user }))
    // keepSessionInfo through the request decorator, as an app that logs users in itself would call it.
    scope.post('/login-keep', async (request) => {
      const keysAtLogin = Object.keys(request.session)
      await request.logIn(ADA, { keepSessionInfo: true })
      return { keysAtLogin }
    })
    scope.post('/logout', async (request) => {
      await request.logout()
      return { ok: true }
    })
    scope.post<{ Body: { cart: string[] } }>('/cart', async (request) => {
      const props = request.session as unknown as Props
      props.cart = request.body.cart
      return { cart: props.cart }
    })
    // The old keepSessionInfo heuristic: a keep list naming every own field of the Session kept all the data.
    scope.post('/regenerate-own-fields', async (request) => {
      await request.session.regenerate(['id', 'expiresAt', 'createdAt', 'touchedAt', 'userId'] as any)
      return { keys: Object.keys(request.session) }
    })
    scope.get('/read', async (request) => ({ keys: Object.keys(request.session), data: request.session.data }))
    scope.get('/me', async (request, reply) => request.isAuthenticated() ? { user: request.user } : reply.code(401).send({ user: null }))
  })
  return app
}

function setCookieOf (response: LightMyRequestResponse): unknown {
  return response.headers['set-cookie']
}

async function signIn (t: TapTest, browser: Client): Promise<string> {
  const login = await browser.request('POST', '/login', { username: 'ada', password: 'lovelace' })
  t.equal(login.statusCode, 200, 'signed in')
  t.ok(browser.cookie, 'with a session cookie')
  return browser.cookie as string
}

t.test('with @fastify/passport: a skipped static file and a session: false health check answer 200, as a visitor, with no session work', async (t) => {
  const factory = new CountingFactory()
  const app = await buildApp(factory)
  t.teardown(() => app.close())

  for (const cookie of [undefined, await signIn(t, new Client(app))]) {
    const label = cookie === undefined ? 'without a cookie' : 'with a signed-in cookie'
    const headers = cookie === undefined ? {} : { cookie }
    factory.calls.length = 0

    const asset = await app.inject({ url: '/public/app.css', headers })
    t.equal(asset.statusCode, 200, `static file ${label}: 200`)
    t.equal(asset.body, css, 'the file is served')
    t.equal(setCookieOf(asset), undefined, 'no Set-Cookie')
    t.equal((await app.inject({ url: '/public/missing.css', headers })).statusCode, 404, 'a missing file is a 404, not a 500')

    const health = await app.inject({ url: '/health', headers })
    t.equal(health.statusCode, 200, `health check ${label}: 200`)
    t.same(health.json(), { ok: true, authenticated: false, isNew: true, passport: null, keys: [] },
      'the session there reads like an empty visitor\'s, whoever the cookie belongs to')
    t.equal(setCookieOf(health), undefined, 'no Set-Cookie')
    t.notMatch(String(health.headers.vary ?? ''), /cookie/i, 'no Vary: Cookie')
    t.same(factory.calls, [], 'the factory was never asked')
  }
})

t.test('the visitor\'s session of a session: false route refuses every change with FST_SESSION_NOT_LOADED', async (t) => {
  const factory = new CountingFactory()
  const app = await buildApp(factory)
  t.teardown(() => app.close())
  const cookie = await signIn(t, new Client(app))
  factory.calls.length = 0
  for (const how of ['set', 'property', 'delete', 'regenerate', 'destroy', 'save']) {
    const response = await app.inject({ method: 'POST', url: '/health', headers: { cookie }, payload: { how } })
    t.equal(response.statusCode, 200)
    t.equal(response.json().threw, 'FST_SESSION_NOT_LOADED', `${how} throws FST_SESSION_NOT_LOADED`)
    t.equal(setCookieOf(response), undefined, 'no Set-Cookie')
  }
  t.same(factory.calls, [], 'nothing was loaded or written')
  t.equal((await app.inject({ url: '/me', headers: { cookie } })).statusCode, 200, 'the signed-in session is untouched')
})

t.test('Redis down: the static file, the health check and a public page answer 200; routes that read the session answer 503', { skip: serverSkip }, async (t) => {
  const { server, redis } = await ownRedis(t)
  const prefix = randomPrefix()
  const app = await buildApp(new RedisFactory({ client: redis, prefix }))
  t.teardown(() => app.close())

  const browser = new Client(app)
  const cookie = await signIn(t, browser)
  t.equal((await browser.get('/me')).statusCode, 200, 'Redis up: the protected route answers')
  t.equal((await browser.get('/about')).statusCode, 200)
  t.equal((await redis.keys(`${prefix}*`)).length, 1, 'the session is in this Redis')

  const ready = (): boolean => redis.status === 'ready'
  await server.kill()
  while (ready()) await sleep(10)

  const asset = await app.inject({ url: '/public/app.css', headers: { cookie } })
  t.equal(asset.statusCode, 200, 'the skipped static file: 200')
  t.equal(asset.body, css)
  t.equal(setCookieOf(asset), undefined, 'no Set-Cookie')

  const health = await app.inject({ url: '/health', headers: { cookie } })
  t.equal(health.statusCode, 200, 'the session: false health check: 200')
  t.same(health.json().authenticated, false, 'reading as a visitor')
  t.equal(setCookieOf(health), undefined, 'no Set-Cookie')

  const about = await app.inject({ url: '/about', headers: { cookie } })
  t.equal(about.statusCode, 200, 'a public page that never reads the session, with a session cookie: 200')
  t.same(about.json(), { page: 'about' })
  t.equal(setCookieOf(about), undefined, 'no Set-Cookie: the client\'s cookie is left as it was')

  for (const url of ['/me', '/read']) {
    const failed = await app.inject({ url, headers: { cookie } })
    t.equal(failed.statusCode, 503, `${url} reads the session: 503`)
    t.equal(failed.json().code, 'FST_SESSION_STORE_UNAVAILABLE')
    t.equal(setCookieOf(failed), undefined, 'no Set-Cookie on the 503')
  }
  const cart = await app.inject({ method: 'POST', url: '/cart', headers: { cookie }, payload: { cart: ['pear'] } })
  t.equal(cart.statusCode, 503, 'a write too')
  t.equal(cart.json().code, 'FST_SESSION_STORE_UNAVAILABLE')

  await server.restart()
  while (!ready()) await sleep(10)
  const me = await app.inject({ url: '/me', headers: { cookie } })
  t.equal(me.statusCode, 401, 'Redis back (without persistence): the app answers again, the session is gone')
})

const FACTORIES: Array<{ name: string, make: () => SessionFactory<any> }> = [
  { name: 'MemoryFactory', make: () => new MemoryFactory() },
  { name: 'SeedStyleFactory (JSON round trip)', make: () => new SeedStyleFactory() }
]

for (const { name, make } of FACTORIES) {
  t.test(`${name}: passport logout leaves an empty session`, async (t) => {
    const app = await buildApp(make())
    t.teardown(() => app.close())
    const browser = new Client(app)
    await browser.post('/cart', { cart: ['apple'] })
    t.same((await browser.post('/login-keep')).json(), { keysAtLogin: ['cart'] })
    await browser.post('/cart', { cart: ['apple', 'pear'] })
    t.same((await browser.get('/read')).json(), { keys: ['cart', 'passport'], data: { cart: ['apple', 'pear'], passport: '1' } })
    const signedIn = browser.cookie as string

    const logout = await browser.post('/logout')
    t.equal(logout.statusCode, 200)
    t.not(sessionIdOf(browser.cookie as string), sessionIdOf(signedIn), 'logout regenerated the id')
    t.same((await browser.get('/read')).json(), { keys: [], data: {} }, 'the cart set before login is gone: the session is empty')
    t.equal((await browser.get('/me')).statusCode, 401, 'signed out')

    const replay = await app.inject({ url: '/read', headers: { cookie: signedIn } })
    t.same(replay.json(), { keys: [], data: {} }, 'the signed-in cookie opens nothing')
    t.equal((await app.inject({ url: '/me', headers: { cookie: signedIn } })).statusCode, 401)
  })

  t.test(`${name}: logIn(user, { keepSessionInfo: true }) keeps the cart across login; without it the cart goes`, async (t) => {
    const app = await buildApp(make())
    t.teardown(() => app.close())

    const keeping = new Client(app)
    await keeping.post('/cart', { cart: ['apple'] })
    const before = keeping.cookie as string
    const login = await keeping.post('/login-keep')
    t.same(login.json(), { keysAtLogin: ['cart'] }, 'Object.keys(session) lists the data keys, no member of the Session')
    t.not(sessionIdOf(keeping.cookie as string), sessionIdOf(before), 'a new id all the same')
    t.same((await keeping.get('/read')).json(), { keys: ['cart', 'passport'], data: { cart: ['apple'], passport: '1' } }, 'the cart survives login')
    t.equal((await keeping.get('/me')).statusCode, 200)
    t.same((await app.inject({ url: '/read', headers: { cookie: before } })).json().data, {}, 'the pre-login id is dead')

    const plain = new Client(app)
    await plain.post('/cart', { cart: ['apple'] })
    await signIn(t, plain)
    t.same((await plain.get('/read')).json().data, { passport: '1' }, 'a login without keepSessionInfo clears the cart')
  })

  t.test(`${name}: regenerate() with the Session's own field names keeps nothing (the old keep-all heuristic is gone)`, async (t) => {
    const app = await buildApp(make())
    t.teardown(() => app.close())
    const browser = new Client(app)
    await browser.post('/cart', { cart: ['apple'] })
    t.same((await browser.post('/regenerate-own-fields')).json(), { keys: [] }, 'emptied at once')
    t.same((await browser.get('/read')).json().data, {}, 'and stored empty')
  })
}
