// @fastify/passport 4 + passport-local on our session, as its README wires them: login, protected
// routes, logout, returnTo, a user deleted while signed in, and what happens to pre-login data.
// Each scenario runs on MemoryFactory and on a factory that round-trips JSON (SeedStyleFactory),
// so nothing here leans on MemoryFactory keeping objects. @fastify/session 11 was run through
// the same scenarios for comparison; where it differs, the test says so.
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import fastifyFormbody from '@fastify/formbody'
import fastifyPassport from '@fastify/passport'
import { Strategy as LocalStrategy } from 'passport-local'
import t from 'tap'
import sessionPlugin, { MemoryFactory, type SessionFactory } from '../../src/index.js'
import { SECRET, sessionCookie, sessionIdOf } from '../helpers/app.js'
import { ChildServer } from '../helpers/child-server.js'
import { SeedStyleFactory } from '../helpers/factories.js'

const { Authenticator } = fastifyPassport
type AuthenticatorOptions = ConstructorParameters<typeof Authenticator>[0]

interface User { id: string, name: string }

/** The users an app knows: a test deletes one to see a signed-in user vanish. */
class Users {
  readonly byId = new Map<string, User>([['1', { id: '1', name: 'ada' }]])
  readonly passwords = new Map([['ada', 'lovelace']])
  deserialized = 0
}

async function buildPassportApp (factory: SessionFactory<any>, users = new Users(), options: AuthenticatorOptions = {}): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(fastifyFormbody)
  // The session plugin first: @fastify/passport registers @fastify/flash, which needs `request.session`.
  await app.register(sessionPlugin, { factory, secret: SECRET })
  const passport = new Authenticator(options)
  passport.use('local', new LocalStrategy((username, password, done) => {
    const user = [...users.byId.values()].find((u) => u.name === username)
    done(null, user !== undefined && users.passwords.get(username) === password ? user : false)
  }))
  passport.registerUserSerializer(async (user: User) => user.id)
  passport.registerUserDeserializer(async (id: string) => {
    users.deserialized++
    return users.byId.get(id) ?? null
  })
  await app.register(passport.initialize())
  await app.register(passport.secureSession())

  app.post('/login', { preValidation: passport.authenticate('local', { successRedirect: '/me', authInfo: false }) }, () => {})
  app.post('/login-return', { preValidation: passport.authenticate('local', { successReturnToOrRedirect: '/me', authInfo: false }) }, () => {})
  app.post('/login-keep', { preValidation: passport.authenticate('local', { successRedirect: '/me', authInfo: false, keepSessionInfo: true }) }, () => {})
  app.get('/me', async (request, reply) => request.isAuthenticated() ? { user: request.user } : reply.code(401).send({ user: null }))
  app.get('/whoami', async (request) => ({ user: request.user ?? null }))
  app.get('/account', async (request, reply) => {
    if (request.isAuthenticated()) return { page: 'account' }
    request.session.set('returnTo', '/account')
    return reply.redirect('/login-page')
  })
  app.post<{ Body: { cart: string[] } }>('/cart', async (request) => {
    request.session.set('cart', request.body.cart)
    return { cart: request.body.cart }
  })
  app.get('/read', async (request) => ({ data: request.session.data }))
  app.post('/logout-all', async (request, reply) => {
    await request.logout()
    await request.session.destroy()
    return reply.redirect('/')
  })
  app.post('/logout', async (request, reply) => {
    await request.logout()
    return reply.redirect('/')
  })
  return app
}

/** A browser in miniature that posts forms, as a login page does. */
class Browser {
  cookie: string | undefined
  constructor (readonly app: FastifyInstance) {}

  async request (method: 'GET' | 'POST', url: string, payload?: Record<string, unknown>, form = false): Promise<LightMyRequestResponse> {
    const headers: Record<string, string> = {}
    if (this.cookie !== undefined) headers.cookie = this.cookie
    let body: string | undefined
    if (payload !== undefined) {
      headers['content-type'] = form ? 'application/x-www-form-urlencoded' : 'application/json'
      body = form ? new URLSearchParams(payload as Record<string, string>).toString() : JSON.stringify(payload)
    }
    const response = await this.app.inject({ method, url, headers, ...(body === undefined ? {} : { payload: body }) })
    const cookie = response.cookies.find((c) => c.name === 'sid')
    if (cookie !== undefined) this.cookie = cookie.value === '' ? undefined : sessionCookie(response)
    return response
  }

  login (password = 'lovelace', url = '/login'): Promise<LightMyRequestResponse> {
    return this.request('POST', url, { username: 'ada', password }, true)
  }

  async data (): Promise<Record<string, unknown>> {
    return (await this.request('GET', '/read')).json().data
  }
}

const FACTORIES: Array<{ name: string, make: () => SessionFactory<any> }> = [
  { name: 'MemoryFactory', make: () => new MemoryFactory() },
  { name: 'SeedStyleFactory (JSON round trip)', make: () => new SeedStyleFactory() }
]

for (const { name, make } of FACTORIES) {
  t.test(`${name}: login redirects with a new session id; the pre-login cookie and its data are gone`, async (t) => {
    const factory = make()
    const app = await buildPassportApp(factory)
    t.teardown(() => app.close())
    const browser = new Browser(app)
    await browser.request('POST', '/cart', { cart: ['apple'] })
    const before = browser.cookie as string
    t.ok(before, 'a pre-login session')

    const login = await browser.login()
    t.equal(login.statusCode, 302)
    t.equal(login.headers.location, '/me')
    const after = browser.cookie as string
    t.ok(after, 'a session cookie')
    t.not(sessionIdOf(after), sessionIdOf(before), 'with a new id (session fixation defence)')
    t.same(await browser.data(), { passport: '1' }, 'the cart set before login is gone; passport keeps the user id')
    t.same((await browser.request('GET', '/me')).json(), { user: { id: '1', name: 'ada' } })

    const old = await app.inject({ url: '/read', headers: { cookie: before } })
    t.same(old.json().data, {}, 'the pre-login cookie is dead: its record was destroyed')
    const oldMe = await app.inject({ url: '/me', headers: { cookie: before } })
    t.equal(oldMe.statusCode, 401, 'and it does not carry the login')
  })

  t.test(`${name}: a protected route answers 200 with the user, 401 without; a wrong password starts no session`, async (t) => {
    const app = await buildPassportApp(make())
    t.teardown(() => app.close())
    const anonymous = await app.inject({ url: '/me' })
    t.equal(anonymous.statusCode, 401)
    t.equal(anonymous.headers['set-cookie'], undefined, 'an anonymous visit stores nothing')

    const browser = new Browser(app)
    const wrong = await browser.login('wrong')
    t.equal(wrong.statusCode, 401)
    t.equal(browser.cookie, undefined, 'a failed login stores nothing')

    await browser.login()
    const me = await browser.request('GET', '/me')
    t.equal(me.statusCode, 200)
    t.same(me.json(), { user: { id: '1', name: 'ada' } })
  })

  t.test(`${name}: logout redirects, the user is gone, and the signed-in id is dead`, async (t) => {
    const app = await buildPassportApp(make())
    t.teardown(() => app.close())
    const browser = new Browser(app)
    await browser.login()
    const signedIn = browser.cookie as string

    const logout = await browser.request('POST', '/logout')
    t.equal(logout.statusCode, 302)
    t.equal(logout.headers.location, '/')
    t.equal((await browser.request('GET', '/me')).statusCode, 401, 'the browser is signed out')
    t.notOk('passport' in await browser.data(), 'the session holds no user')
    const replay = await app.inject({ url: '/me', headers: { cookie: signedIn } })
    t.equal(replay.statusCode, 401, 'the signed-in cookie no longer signs anyone in')
  })

  t.test(`${name}: successReturnToOrRedirect`, async (t) => {
    t.test('by default passport clears returnTo at login (as with @fastify/session): the fallback is used', async (t) => {
      const app = await buildPassportApp(make())
      t.teardown(() => app.close())
      const browser = new Browser(app)
      const account = await browser.request('GET', '/account')
      t.equal(account.headers.location, '/login-page')
      const login = await browser.login(undefined, '/login-return')
      t.equal(login.statusCode, 302)
      t.equal(login.headers.location, '/me')
    })

    t.test('kept through login (clearSessionIgnoreFields), returnTo is used, then deleted', async (t) => {
      const app = await buildPassportApp(make(), new Users(), { clearSessionIgnoreFields: ['returnTo'] })
      t.teardown(() => app.close())
      const browser = new Browser(app)
      await browser.request('GET', '/account')
      t.equal((await browser.data()).returnTo, '/account', 'returnTo waits in the session')
      const login = await browser.login(undefined, '/login-return')
      t.equal(login.statusCode, 302)
      t.equal(login.headers.location, '/account')
      t.same(await browser.data(), { passport: '1' }, 'returnTo was deleted (set to undefined) after use')
      t.same((await browser.request('GET', '/account')).json(), { page: 'account' })
    })
  })

  t.test(`${name}: a user deleted while signed in makes the request anonymous (200, not 500), once`, async (t) => {
    const users = new Users()
    const app = await buildPassportApp(make(), users)
    t.teardown(() => app.close())
    const browser = new Browser(app)
    await browser.login()
    users.byId.delete('1')

    const whoami = await browser.request('GET', '/whoami')
    t.equal(whoami.statusCode, 200, 'as with @fastify/session 11')
    t.same(whoami.json(), { user: null })
    t.equal((await browser.request('GET', '/me')).statusCode, 401)
    // The deserializer answered null, so passport logged the session out (its user id removed).
    const seen = users.deserialized
    t.notOk('passport' in await browser.data(), 'passport dropped the user id from the session')
    t.equal(users.deserialized, seen, 'so the deserializer is not asked again')
  })

  // passport's logOut() calls regenerate() with no keys. Both peers clear the session there; our
  // regenerate() keeps the data unless told which keys to keep (DESIGN §4), so a logout that must
  // leave nothing behind calls destroy() after it, as the recipe in docs/passport.md does.
  t.test(`${name}: logout empties the session, as on the peers: the next visitor of a shared computer inherits nothing`, async (t) => {
    const app = await buildPassportApp(make())
    t.teardown(() => app.close())
    const browser = new Browser(app)
    await browser.login()
    await browser.request('POST', '/cart', { cart: ['pear'] })
    const signedIn = browser.cookie
    await browser.request('POST', '/logout')
    t.same(await browser.data(), {}, 'the user and the cart are gone')
    t.not(browser.cookie, signedIn, 'under a new id')
    await browser.login()
    const cookie = browser.cookie
    t.equal((await browser.request('POST', '/logout-all')).statusCode, 302)
    t.same(await browser.data(), {}, 'logout then destroy(): nothing is left')
    browser.cookie = cookie
    t.equal((await browser.request('GET', '/me')).statusCode, 401, 'the signed-in cookie is dead')
  })

  t.test(`${name}: authenticate({ keepSessionInfo: true }) keeps the pre-login data, as with @fastify/session`, async (t) => {
    const app = await buildPassportApp(make())
    t.teardown(() => app.close())
    const browser = new Browser(app)
    await browser.request('POST', '/cart', { cart: ['apple'] })
    const before = browser.cookie
    await browser.login(undefined, '/login-keep')
    t.same(await browser.data(), { passport: '1', cart: ['apple'] }, 'the cart survives login')
    t.not(browser.cookie, before, 'with a new id all the same')
  })
}

t.test('@fastify/passport must be registered after the session plugin', async (t) => {
  const app = Fastify()
  app.register(new Authenticator().initialize())
  app.register(sessionPlugin, { factory: new MemoryFactory(), secret: SECRET })
  await t.rejects(async () => { await app.ready() }, { code: 'FST_ERR_PLUGIN_NOT_PRESENT_IN_INSTANCE' }, 'its @fastify/flash needs request.session')
})

// @fastify/passport's initialize() registers @fastify/flash itself. Registering @fastify/flash
// as well (before or after) throws FST_ERR_DEC_ALREADY_PRESENT as an uncaught exception, not as
// a rejected ready(): the process ends at startup. So it runs in a child process.
t.test('registering @fastify/flash next to @fastify/passport crashes the process at startup', async (t) => {
  const outcome = await ChildServer.start('test/integrations/fixtures/passport-flash-twice.ts').then(
    async (server) => { await server.stop(); return null },
    (error: Error) => error.message
  )
  t.type(outcome, 'string', 'the app never listened')
  t.match(outcome, /exited \(1\) before listening/, 'the process exited with an error')
  t.match(outcome, /FST_ERR_DEC_ALREADY_PRESENT/, 'because the flash decorator was added twice')
})
