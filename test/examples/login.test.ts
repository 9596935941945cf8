// The login example through inject (and one real https request): runs where no browser is installed.
import { request as httpsRequest } from 'node:https'
import t, { type Test } from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { Redis } from 'ioredis'
import { buildLoginApp, type LoginAppOptions } from '../../examples/login/app.js'
import { configFromEnv } from '../../examples/login/config.js'
import { escapeHtml } from '../../examples/login/pages.js'
import { checkPassword } from '../../examples/login/users.js'
import { attributesOf, SECRET } from '../helpers/app.js'
import { FaultyFactory } from '../helpers/factories.js'
import { selfSignedCertificate } from '../helpers/tls.js'

/** Keeps cookies between requests the simple way a browser does for one host, and fills in forms. */
class Visitor {
  readonly jar = new Map<string, string>()
  constructor (readonly app: FastifyInstance) {}

  async request (method: 'GET' | 'POST', url: string, form?: Record<string, string>): Promise<LightMyRequestResponse> {
    const headers: Record<string, string> = {}
    if (this.jar.size > 0) headers.cookie = [...this.jar].map(([name, value]) => `${name}=${value}`).join('; ')
    if (form !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded'
    const response = await this.app.inject({
      method,
      url,
      headers,
      ...(form === undefined ? {} : { payload: new URLSearchParams(form).toString() })
    })
    for (const cookie of response.cookies as Array<{ name: string, value: string, maxAge?: number }>) {
      if (cookie.value === '' || cookie.maxAge === 0) this.jar.delete(cookie.name)
      else this.jar.set(cookie.name, cookie.value)
    }
    return response
  }

  get (url: string): Promise<LightMyRequestResponse> {
    return this.request('GET', url)
  }

  post (url: string, form: Record<string, string>): Promise<LightMyRequestResponse> {
    return this.request('POST', url, form)
  }

  /** The CSRF token of the form on the page. */
  static token (response: LightMyRequestResponse): string {
    const match = /name="_csrf" value="([^"]+)"/.exec(response.body)
    if (match === null) throw new Error('the page has no CSRF field')
    return match[1] as string
  }

  async signIn (password = 'wonderland'): Promise<LightMyRequestResponse> {
    const form = await this.get('/login')
    return this.post('/login', { _csrf: Visitor.token(form), username: 'alice', password })
  }
}

async function build (t: Test, options: Partial<LoginAppOptions> = {}): Promise<FastifyInstance> {
  const app = await buildLoginApp({ secret: SECRET, ...options })
  t.teardown(() => app.close())
  return app
}

function setCookieLines (response: LightMyRequestResponse): string[] {
  const header = response.headers['set-cookie']
  return header === undefined ? [] : Array.isArray(header) ? header : [header]
}

t.test('the anonymous home page stores nothing and links to the form', async (t) => {
  const visitor = new Visitor(await build(t))
  const response = await visitor.get('/')
  t.equal(response.statusCode, 200)
  t.match(response.body, 'You are not signed in.')
  t.match(response.body, 'href="/login"')
  t.same(setCookieLines(response), [], 'no cookie')
  t.equal(response.headers['cache-control'], 'no-store')
  t.match(response.headers['content-security-policy'], /default-src 'none'/)
  t.equal(response.headers['content-type'], 'text/html; charset=utf-8')
})

t.test('the form page starts an anonymous session that holds its CSRF secret', async (t) => {
  const visitor = new Visitor(await build(t))
  const response = await visitor.get('/login')
  t.equal(response.statusCode, 200)
  t.match(response.body, '<form method="post" action="/login">')
  t.ok(Visitor.token(response).length > 10, 'a CSRF token')
  const [line] = setCookieLines(response)
  t.match(line, /^sid=[^;]+;/)
  t.same(attributesOf(line as string), { Path: '/', HttpOnly: true, SameSite: 'Lax' })

  const again = await visitor.get('/login')
  t.same(setCookieLines(again), [], 'a second visit keeps the same session and secret')
})

t.test('signing in: CSRF checked, password checked, id regenerated, welcome shown once', async (t) => {
  const visitor = new Visitor(await build(t))
  const form = await visitor.get('/login')
  const anonymous = visitor.jar.get('sid')

  const forged = await visitor.post('/login', { _csrf: 'not-the-token', username: 'alice', password: 'wonderland' })
  t.equal(forged.statusCode, 403, 'a wrong CSRF token')
  t.match(forged.body, 'This form has expired')

  const wrong = await visitor.post('/login', { _csrf: Visitor.token(form), username: '<b>"alice"</b>', password: 'nope' })
  t.equal(wrong.statusCode, 401, 'a wrong password')
  t.match(wrong.body, 'Wrong user name or password.')
  t.match(wrong.body, 'value="&lt;b&gt;&quot;alice&quot;&lt;/b&gt;"', 'the name comes back escaped')
  t.notMatch(wrong.body, '<b>"alice"', 'never raw')
  t.equal(visitor.jar.get('sid'), anonymous, 'a failed sign-in keeps the anonymous session')

  const ok = await visitor.post('/login', { _csrf: Visitor.token(wrong), username: ' alice ', password: 'wonderland' })
  t.equal(ok.statusCode, 303)
  t.equal(ok.headers.location, '/')
  t.ok(visitor.jar.get('sid') !== undefined && visitor.jar.get('sid') !== anonymous, 'a new cookie value')

  const home = await visitor.get('/')
  t.match(home.body, 'Signed in as <strong id="user">alice</strong>')
  t.match(home.body, 'Welcome, alice.')
  t.match(home.body, 'action="/logout"')
  t.not(Visitor.token(home), Visitor.token(form), 'the signed-in form has a token from a fresh secret')
  t.notMatch((await visitor.get('/')).body, 'Welcome', 'the welcome is shown once')

  const formAgain = await visitor.get('/login')
  t.equal(formAgain.statusCode, 303, 'the form page sends a signed-in user home')

  const old = new Visitor(visitor.app)
  old.jar.set('sid', anonymous as string)
  t.match((await old.get('/')).body, 'You are not signed in.', 'the anonymous id died at sign-in')
})

t.test('signing in without a session (no cookie) is refused', async (t) => {
  const visitor = new Visitor(await build(t))
  const response = await visitor.post('/login', { _csrf: 'x', username: 'alice', password: 'wonderland' })
  t.equal(response.statusCode, 403)
  t.same(setCookieLines(response), [])
})

t.test('signing out: destroy, a one-time message in a new anonymous session, then no cookie', async (t) => {
  const visitor = new Visitor(await build(t))
  await visitor.signIn()
  const home = await visitor.get('/')
  const signedIn = visitor.jar.get('sid')

  const forged = await visitor.post('/logout', { _csrf: 'forged' })
  t.equal(forged.statusCode, 403, 'a wrong token does not sign out')
  t.match((await visitor.get('/')).body, 'Signed in as')

  const out = await visitor.post('/logout', { _csrf: Visitor.token(home) })
  t.equal(out.statusCode, 303)
  t.equal(out.headers.location, '/')
  const [line] = setCookieLines(out)
  t.match(line, /^sid=[^;]+;/)
  t.same(attributesOf(line as string), { Path: '/', HttpOnly: true, SameSite: 'Lax' }, 'a new anonymous session carries the message')
  t.ok(visitor.jar.get('sid') !== signedIn)

  const landing = await visitor.get('/')
  t.match(landing.body, 'You have signed out.')
  t.match(landing.body, 'You are not signed in.')
  t.match(setCookieLines(landing)[0], /^sid=; .*Max-Age=0/, 'the emptied session is dropped with its cookie')
  t.equal(visitor.jar.size, 0)

  const replay = new Visitor(visitor.app)
  replay.jar.set('sid', signedIn as string)
  t.match((await replay.get('/')).body, 'You are not signed in.', 'the old cookie is dead')

  const again = await visitor.post('/logout', {})
  t.equal(again.statusCode, 303, 'signing out of nothing just goes home')
  t.same(setCookieLines(again), [])
})

t.test('idleTimeout and cookieName reach the plugin; a __Host- name is always Secure', async (t) => {
  const visitor = new Visitor(await build(t, { cookieName: '__Host-sid', idleTimeout: 1 }))
  const form = await visitor.get('/login')
  t.match(setCookieLines(form)[0], /^__Host-sid=[^;]+;/)
  t.same(attributesOf(setCookieLines(form)[0] as string), { Path: '/', HttpOnly: true, SameSite: 'Lax', Secure: true })
  await visitor.signIn()
  t.match((await visitor.get('/')).body, 'Signed in as')
  await new Promise((resolve) => setTimeout(resolve, 1500))
  t.match((await visitor.get('/')).body, 'You are not signed in.', 'idle for longer than 1 s')
})

t.test('errors render as pages: 404, 415, and 503 when the store fails', async (t) => {
  const factory = new FaultyFactory()
  const app = await build(t, { factory })
  const visitor = new Visitor(app)

  const missing = await visitor.get('/nowhere<script>')
  t.equal(missing.statusCode, 404)
  t.match(missing.body, 'There is no page here.')
  t.equal(missing.headers['cache-control'], 'no-store')

  const favicon = await visitor.get('/favicon.ico')
  t.equal(favicon.statusCode, 204)
  t.equal(favicon.headers.vary, undefined, 'the favicon never looks at the session')

  const media = await app.inject({ method: 'POST', url: '/login', headers: { 'content-type': 'application/xml' }, payload: '<x/>' })
  t.equal(media.statusCode, 415)
  t.match(media.body, 'The request failed (415).')

  factory.faults.save = 'reject'
  const down = await visitor.get('/login')
  t.equal(down.statusCode, 503)
  t.match(down.body, 'Sessions are unavailable right now.')
  t.same(setCookieLines(down), [], 'no cookie from a failed save')
})

t.test('over https, secure: auto marks the cookie Secure', async (t) => {
  const https = await selfSignedCertificate(t)
  const app = await build(t, { https })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const setCookie = await new Promise<string[]>((resolve, reject) => {
    httpsRequest({ host: '127.0.0.1', port, path: '/login', rejectUnauthorized: false }, (response) => {
      response.resume()
      response.on('end', () => resolve(response.headers['set-cookie'] ?? []))
    }).on('error', reject).end()
  })
  t.match(setCookie[0], /^sid=[^;]+;/)
  t.same(attributesOf(setCookie[0] as string), { Path: '/', HttpOnly: true, SameSite: 'Lax', Secure: true })
})

t.test('REDIS_URL: sessions in Redis', async (t) => {
  const probe = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true, maxRetriesPerRequest: 0 })
  try {
    await probe.connect()
  } catch (error) {
    probe.disconnect()
    if (process.env.CI !== undefined && process.env.CI !== '') throw error
    t.comment(`SKIP: Redis is not reachable at 127.0.0.1:6379: ${(error as Error).message}`)
    return
  }
  const prefix = `login-example-test:${Math.random().toString(36).slice(2)}:`
  t.teardown(async () => {
    const keys = await probe.keys(`${prefix}*`)
    if (keys.length > 0) await probe.del(...keys)
    await probe.quit()
  })
  const visitor = new Visitor(await build(t, { redis: { url: 'redis://127.0.0.1:6379', prefix } }))
  await visitor.signIn()
  t.match((await visitor.get('/')).body, 'Signed in as')
  t.ok((await probe.keys(`${prefix}*`)).length > 0, 'the session lives in Redis')
})

t.test('configFromEnv', async (t) => {
  const defaults = configFromEnv({})
  t.same(defaults.listen, { port: 3000, host: '127.0.0.1' })
  t.equal(typeof defaults.app.secret, 'string')
  t.ok((defaults.app.secret as string).length >= 32, 'a generated secret long enough for the plugin')
  t.not(configFromEnv({}).app.secret, defaults.app.secret, 'random each time')
  t.match(defaults.warnings, [/SESSION_SECRET is not set/])
  t.same(Object.keys(defaults.app), ['secret'], 'nothing else set')

  const full = configFromEnv({
    PORT: '0',
    HOST: '0.0.0.0',
    SESSION_SECRET: SECRET,
    IDLE_TIMEOUT: '2',
    COOKIE_NAME: '__Host-sid',
    HTTPS_CERT: '/tmp/cert.pem',
    HTTPS_KEY: '/tmp/key.pem',
    REDIS_URL: 'redis://127.0.0.1:6379'
  })
  t.same(full, {
    app: {
      secret: SECRET,
      idleTimeout: 2,
      cookieName: '__Host-sid',
      https: { certFile: '/tmp/cert.pem', keyFile: '/tmp/key.pem' },
      redis: { url: 'redis://127.0.0.1:6379' }
    },
    listen: { port: 0, host: '0.0.0.0' },
    warnings: []
  })

  t.throws(() => configFromEnv({ PORT: 'http' }), { message: /PORT must be an integer from 0 to 65535/ })
  t.throws(() => configFromEnv({ PORT: '70000' }), { message: /PORT/ })
  t.throws(() => configFromEnv({ IDLE_TIMEOUT: '0' }), { message: /IDLE_TIMEOUT must be an integer from 1/ })
  t.throws(() => configFromEnv({ IDLE_TIMEOUT: '1.5' }), { message: /IDLE_TIMEOUT/ })
  t.throws(() => configFromEnv({ HTTPS_CERT: '/tmp/cert.pem' }), { message: /HTTPS_CERT and HTTPS_KEY go together/ })
})

t.test('escapeHtml and checkPassword', async (t) => {
  t.equal(escapeHtml('<a href="x" title=\'y\'>&</a>'), '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;')
  t.equal(checkPassword('alice', 'wonderland'), true)
  t.equal(checkPassword('alice', 'Wonderland'), false)
  t.equal(checkPassword('mallory', ''), false, 'an unknown name never passes, whatever the password')
  t.equal(checkPassword('', ''), false)
})
