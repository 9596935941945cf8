// OAuth logins through @fastify/passport 4 on our session: passport-oauth2 with `state: true,
// pkce: true` (what most "Sign in with ..." strategies use) and openid-client's passport strategy.
// Both keep their state with `req.session[key] = {...}`, read it back and `delete` it, so the
// session's data keys must work as properties (DESIGN §5). The provider is a real HTTP server on
// loopback (fixtures/oauth-provider.ts): the strategies fetch its token endpoint themselves.
import { createHash } from 'node:crypto'
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import fastifyPassport from '@fastify/passport'
import { Strategy as OAuth2Strategy, type StrategyOptions } from 'passport-oauth2'
import * as oidc from 'openid-client'
import { Strategy as OidcStrategy } from 'openid-client/passport'
import t from 'tap'
import sessionPlugin, { MemoryFactory, RedisFactory, type SessionFactory } from '../../src/index.js'
import { Client, SECRET, sessionIdOf } from '../helpers/app.js'
import { cleaningClient, keysUnder, randomPrefix, sharedRedisSkipReason, type TapTest } from '../helpers/redis.js'
import { CLIENT_ID, CLIENT_SECRET, Provider, authorize, type Profile } from './fixtures/oauth-provider.js'

const { Authenticator } = fastifyPassport
const redisSkip = await sharedRedisSkipReason() ?? false

const GRACE: Profile = { sub: 'u-42', name: 'grace' }
const APP_ORIGIN = 'http://app.test'
/** passport-oauth2's default session key: 'oauth2:' + the authorization URL's hostname. */
const OAUTH2_KEY = 'oauth2:127.0.0.1'

interface User { id: string, name: string }

/** passport-oauth2 with the profile fetched from the provider's /userinfo, as provider strategies do. */
class ProviderStrategy extends OAuth2Strategy {
  constructor (options: StrategyOptions, readonly userinfoURL: string) {
    super(options, (_access: string, _refresh: string, profile: Profile, done: (err: unknown, user?: User) => void) => {
      done(null, { id: profile.sub, name: profile.name })
    })
    this._oauth2.useAuthorizationHeaderforGET(true)
  }

  override userProfile (accessToken: string, done: (err?: unknown, profile?: unknown) => void): void {
    this._oauth2.get(this.userinfoURL, accessToken, (err, body) => {
      if (err !== null && err !== undefined) return done(err)
      done(null, JSON.parse(String(body)))
    })
  }
}

/** Our session plugin, @fastify/passport as its README wires it, and the routes of an OAuth login. */
async function buildOAuthApp (factory: SessionFactory<any>, provider: Provider): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(sessionPlugin, { factory, secret: SECRET })
  const passport = new Authenticator()
  passport.use('provider', new ProviderStrategy({
    authorizationURL: `${provider.url}/authorize`,
    tokenURL: `${provider.url}/token`,
    clientID: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    callbackURL: `${APP_ORIGIN}/callback`,
    state: true,
    pkce: true
  }, `${provider.url}/userinfo`))
  passport.registerUserSerializer(async (user: User) => JSON.stringify(user))
  passport.registerUserDeserializer(async (stored: string) => JSON.parse(stored) as User)
  await app.register(passport.initialize())
  await app.register(passport.secureSession())

  app.get('/login', { preValidation: passport.authenticate('provider', { authInfo: false }) }, () => {})
  app.get('/callback', {
    preValidation: passport.authenticate('provider', { successRedirect: '/me', failureRedirect: '/login-failed', authInfo: false })
  }, () => {})
  app.get('/me', async (request, reply) => request.isAuthenticated() ? { user: request.user } : reply.code(401).send({ user: null }))
  // Reads the session the ways the strategies do: a property, `in`, Object.keys.
  app.get('/read', async (request) => {
    const session = request.session as unknown as Record<string, unknown>
    return { keys: Object.keys(request.session), hasState: OAUTH2_KEY in request.session, state: session[OAUTH2_KEY] ?? null }
  })
  return app
}

function redirectTo (response: LightMyRequestResponse): URL {
  return new URL(response.headers.location as string)
}

/** The whole round trip on one factory; `stored` lists what the store holds, where the test can see it. */
async function roundTrip (t: TapTest, factory: SessionFactory<any>, stored?: () => Promise<string[]>): Promise<void> {
  const provider = await Provider.start(GRACE)
  t.teardown(() => provider.close())
  const app = await buildOAuthApp(factory, provider)
  t.teardown(() => app.close())
  const browser = new Client(app)

  const login = await browser.get('/login')
  t.equal(login.statusCode, 302, 'GET /login redirects (not a 500: the state write went through)')
  const to = redirectTo(login)
  t.equal(`${to.origin}${to.pathname}`, `${provider.url}/authorize`, 'to the provider\'s authorization endpoint')
  t.equal(to.searchParams.get('response_type'), 'code')
  t.equal(to.searchParams.get('client_id'), CLIENT_ID)
  t.equal(to.searchParams.get('redirect_uri'), `${APP_ORIGIN}/callback`)
  t.equal(to.searchParams.get('code_challenge_method'), 'S256')
  const state = to.searchParams.get('state')
  const challenge = to.searchParams.get('code_challenge')
  t.ok(state, 'with a state')
  t.ok(challenge, 'and a PKCE code challenge')
  t.ok(browser.cookie, 'the state lives in a session: a cookie was set')
  const loginCookie = browser.cookie as string

  const pending = (await browser.get('/read')).json()
  t.equal(pending.hasState, true, `'${OAUTH2_KEY}' in session`)
  t.same(pending.keys, [OAUTH2_KEY], 'Object.keys(session) lists the state key')
  t.equal(pending.state.state.handle, state, 'the stored handle is the state sent to the provider (nested write saved)')
  t.equal(createHash('sha256').update(pending.state.state.code_verifier).digest('base64url'), challenge,
    'the stored code verifier is the one behind the challenge')

  // The user signs in at the provider, which sends the browser back with a code and the state.
  const callback = await authorize(to.href)
  t.equal(`${callback.origin}${callback.pathname}`, `${APP_ORIGIN}/callback`)
  t.equal(callback.searchParams.get('state'), state)

  const back = await browser.get(`${callback.pathname}${callback.search}`)
  t.equal(back.statusCode, 302, 'the callback completes')
  t.equal(back.headers.location, '/me', 'to the success redirect')
  t.same(provider.tokenRequests.map((r) => r.status), [200], 'one token request, accepted by the provider')
  t.equal(provider.tokenRequests[0]?.form.code_verifier, pending.state.state.code_verifier, 'with the verifier kept in the session')
  t.not(sessionIdOf(browser.cookie as string), sessionIdOf(loginCookie), 'login gave the session a new id')

  const me = await browser.get('/me')
  t.equal(me.statusCode, 200, 'the protected route answers')
  t.same(me.json(), { user: { id: GRACE.sub, name: GRACE.name } }, 'with the provider\'s user')

  const after = (await browser.get('/read')).json()
  t.equal(after.hasState, false, `'${OAUTH2_KEY}' in session is false: the state was deleted after use`)
  t.same(after.keys, ['passport'], 'only the login is left')

  // The same callback again (a replayed URL) with the signed-in cookie: the state is gone, so it is refused.
  const replay = await browser.get(`${callback.pathname}${callback.search}`)
  t.equal(replay.statusCode, 302)
  t.equal(replay.headers.location, '/login-failed', 'a replayed callback is refused')
  t.equal(provider.tokenRequests.length, 1, 'without asking the provider for a token')
  // With the pre-login cookie: its session was destroyed at login.
  const old = await app.inject({ url: `${callback.pathname}${callback.search}`, headers: { cookie: loginCookie } })
  t.equal(old.headers.location, '/login-failed', 'the pre-login cookie carries no state any more')

  if (stored !== undefined) {
    const keys = await stored()
    t.equal(keys.length, 1, 'one record in the store: the pre-login session was destroyed')
    t.ok(keys[0]?.endsWith(sessionIdOf(browser.cookie as string)), 'and the one left is the signed-in session')
  }
}

t.test('passport-oauth2 (state + PKCE) completes a round trip through @fastify/passport: MemoryFactory', async (t) => {
  await roundTrip(t, new MemoryFactory())
})

t.test('passport-oauth2 (state + PKCE) completes a round trip through @fastify/passport: RedisFactory', { skip: redisSkip }, async (t) => {
  const prefix = randomPrefix()
  const client = await cleaningClient(t, prefix)
  await roundTrip(t, new RedisFactory({ client, prefix }), () => keysUnder(client, prefix))
})

t.test('passport-oauth2: a callback with a wrong state is refused, and the state entry is gone', async (t) => {
  const provider = await Provider.start(GRACE)
  t.teardown(() => provider.close())
  const app = await buildOAuthApp(new MemoryFactory(), provider)
  t.teardown(() => app.close())
  const browser = new Client(app)

  const to = redirectTo(await browser.get('/login'))
  const callback = await authorize(to.href)
  t.equal((await browser.get('/read')).json().hasState, true, 'the state waits in the session')

  callback.searchParams.set('state', 'not-the-state-we-sent')
  const refused = await browser.get(`${callback.pathname}${callback.search}`)
  t.equal(refused.statusCode, 302)
  t.equal(refused.headers.location, '/login-failed', 'refused')
  t.same(provider.tokenRequests, [], 'no token was requested for it')
  t.equal((await browser.get('/me')).statusCode, 401, 'nobody is signed in')
  const read = (await browser.get('/read')).json()
  t.equal(read.hasState, false, 'passport-oauth2 deleted the state on the mismatch (one try per state), and that delete was saved')
  t.same(read.keys, [])

  const stranger = await app.inject({ url: `${callback.pathname}?code=${callback.searchParams.get('code')}&state=${to.searchParams.get('state')}` })
  t.equal(stranger.headers.location, '/login-failed', 'a callback from a browser without the session is refused too')
  t.same(provider.tokenRequests, [], 'still no token request')
})

t.test('passport-oauth2: a second /login replaces the stored state, so the first provider redirect is refused', async (t) => {
  const provider = await Provider.start(GRACE)
  t.teardown(() => provider.close())
  const app = await buildOAuthApp(new MemoryFactory(), provider)
  t.teardown(() => app.close())
  const browser = new Client(app)
  const first = await authorize(redirectTo(await browser.get('/login')).href)
  const second = await authorize(redirectTo(await browser.get('/login')).href)
  t.not(first.searchParams.get('state'), second.searchParams.get('state'))
  // The second login overwrote the nested state (req.session[key].state = ...): the first one no longer matches.
  const stale = await browser.get(`${first.pathname}${first.search}`)
  t.equal(stale.headers.location, '/login-failed', 'the overwritten state is refused')
  t.equal((await browser.get('/me')).statusCode, 401)
  t.same(provider.tokenRequests, [], 'no token was requested for it')
})

// openid-client 6's passport strategy stores { code_verifier, state } at req.session[<issuer host>].
t.test('openid-client\'s passport strategy: /login redirects and its state is stored in the session; the round trip completes', async (t) => {
  const provider = await Provider.start(GRACE, { discovery: true })
  t.teardown(() => provider.close())
  const config = await oidc.discovery(new URL(provider.url), CLIENT_ID, CLIENT_SECRET, undefined, { execute: [oidc.allowInsecureRequests] })
  const sessionKey = new URL(provider.url).host

  const app = Fastify()
  await app.register(sessionPlugin, { factory: new MemoryFactory(), secret: SECRET })
  const passport = new Authenticator()
  const strategy = new OidcStrategy({ config, scope: 'profile', callbackURL: `${APP_ORIGIN}/oidc/callback` }, (tokens, verified) => {
    oidc.fetchUserInfo(config, tokens.access_token, oidc.skipSubjectCheck)
      .then((info) => verified(null, { id: info.sub, name: info.name }))
      .catch((error: unknown) => verified(error))
  })
  // Its declared `this` of authenticate() is its own class, which passport's Strategy type does not carry; at run time it is a plain passport strategy.
  passport.use('oidc', strategy as unknown as Parameters<typeof passport.use>[1])
  passport.registerUserSerializer(async (user: User) => JSON.stringify(user))
  passport.registerUserDeserializer(async (stored: string) => JSON.parse(stored) as User)
  await app.register(passport.initialize())
  await app.register(passport.secureSession())
  app.get('/oidc/login', { preValidation: passport.authenticate('oidc', { authInfo: false }) }, () => {})
  app.get('/oidc/callback', {
    preValidation: passport.authenticate('oidc', { successRedirect: '/me', failureRedirect: '/login-failed', authInfo: false })
  }, () => {})
  app.get('/me', async (request, reply) => request.isAuthenticated() ? { user: request.user } : reply.code(401).send({ user: null }))
  app.get('/read', async (request) => ({
    keys: Object.keys(request.session),
    has: sessionKey in request.session,
    stored: (request.session as unknown as Record<string, unknown>)[sessionKey] ?? null
  }))
  t.teardown(() => app.close())
  const browser = new Client(app)

  const login = await browser.get('/oidc/login')
  t.equal(login.statusCode, 302, 'GET /oidc/login redirects, no 500')
  const to = redirectTo(login)
  t.equal(`${to.origin}${to.pathname}`, `${provider.url}/authorize`, 'to the discovered authorization endpoint')
  const state = to.searchParams.get('state')
  t.ok(state, 'with a state (the provider does not advertise PKCE support)')
  t.equal(to.searchParams.get('code_challenge_method'), 'S256')

  const read = (await browser.get('/read')).json()
  t.equal(read.has, true, `the session holds the strategy's state under '${sessionKey}'`)
  t.same(read.keys, [sessionKey])
  t.equal(read.stored.state, state, 'the state sent to the provider')
  t.equal(createHash('sha256').update(read.stored.code_verifier).digest('base64url'), to.searchParams.get('code_challenge'),
    'and the code verifier behind the challenge')

  // Beyond the state write: the callback reads and deletes it, and the login completes.
  const callback = await authorize(to.href)
  const back = await browser.get(`${callback.pathname}${callback.search}`)
  t.equal(back.statusCode, 302)
  t.equal(back.headers.location, '/me', 'the callback completes')
  t.same(provider.tokenRequests.map((r) => r.status), [200], 'the token request was accepted (PKCE checked by the provider)')
  t.same((await browser.get('/me')).json(), { user: { id: GRACE.sub, name: GRACE.name } })
  const after = (await browser.get('/read')).json()
  t.equal(after.has, false, 'the state was deleted after use')
  t.same(after.keys, ['passport'])

  const replay = await browser.get(`${callback.pathname}${callback.search}`)
  t.equal(replay.headers.location, '/login-failed', 'a replayed callback is refused')
  t.equal(provider.tokenRequests.length, 1)
})
