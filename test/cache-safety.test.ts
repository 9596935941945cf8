// Cache safety (DESIGN §4; the Flask CVE-2023-30861 class): every response that sets or clears the
// session cookie says `Vary: Cookie` and, unless the app chose its own, `Cache-Control: private`,
// so no shared cache hands one user's cookie, or page, to another.
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import sessionPlugin from '../src/index.js'
import { OLD_SECRET, SECRET } from './helpers/app.js'
import { fakeClock } from './helpers/clock.js'
import { factoriesUnderTest, useFactory } from './helpers/factories-under-test.js'
import { LogTrap, cookieValueIn, signId } from './helpers/log-trap.js'

async function cacheApp (factory: Parameters<typeof sessionPlugin>[1]['factory'], trap: LogTrap, maxAge?: number): Promise<FastifyInstance> {
  const app = Fastify({ logger: trap.logger })
  await app.register(sessionPlugin, {
    factory,
    secret: [SECRET, OLD_SECRET],
    idleTimeout: 600,
    ...(maxAge === undefined ? {} : { cookie: { maxAge } })
  })
  app.get('/read', async (request) => ({ user: request.session.get('user') ?? null }))
  app.get('/untouched', async () => 'ok')
  app.post('/set', async (request) => {
    request.session.set('user', 'ada-lovelace')
    return 'ok'
  })
  app.post('/login', async (request) => {
    request.session.regenerate()
    request.session.set('user', 'grace-hopper')
    return 'ok'
  })
  app.post('/logout', async (request) => {
    request.session.destroy()
    return 'ok'
  })
  app.post('/set-then-throw', async (request) => {
    request.session.set('user', 'ada-lovelace')
    throw new Error('the handler failed after writing the session')
  })
  app.post('/set-then-404', async (request, reply) => {
    request.session.set('user', 'ada-lovelace')
    return reply.code(404).send({ missing: true })
  })
  app.post('/logout-then-throw', async (request) => {
    request.session.destroy()
    throw Object.assign(new Error('bad request after logout'), { statusCode: 400 })
  })
  app.post('/hijacked', async (request, reply) => {
    reply.hijack()
    request.session.set('user', 'ada-lovelace')
    await request.session.save()
    reply.raw.writeHead(200, { 'content-type': 'text/plain' })
    reply.raw.end('ok')
  })
  app.post<{ Querystring: { cc?: string, vary?: string } }>('/own-headers', async (request, reply) => {
    if (request.query.cc !== undefined) reply.header('cache-control', request.query.cc)
    if (request.query.vary !== undefined) reply.header('vary', request.query.vary)
    request.session.set('user', 'ada-lovelace')
    return 'ok'
  })
  app.post<{ Querystring: { cc: string } }>('/hijacked-own-cc', async (request, reply) => {
    reply.hijack()
    reply.raw.setHeader('cache-control', request.query.cc)
    request.session.set('user', 'ada-lovelace')
    await request.session.save()
    reply.raw.writeHead(200, { 'content-type': 'text/plain' })
    reply.raw.end('ok')
  })
  return app
}

function varyHasCookie (response: LightMyRequestResponse): boolean {
  return String(response.headers.vary ?? '').split(',').some((token) => token.trim().toLowerCase() === 'cookie')
}

/** The response sets or clears the session cookie and no shared cache may keep it. */
function assertPrivate (t: Test, response: LightMyRequestResponse, what: string, expect: 'set' | 'clear'): string {
  const value = cookieValueIn(response.headers['set-cookie'])
  if (expect === 'set') t.ok(value, `${what}: sets the cookie`)
  else t.equal(value, '', `${what}: clears the cookie`)
  t.ok(varyHasCookie(response), `${what}: Vary: Cookie (got ${String(response.headers.vary)})`)
  t.equal(response.headers['cache-control'], 'private', `${what}: Cache-Control: private`)
  return value as string
}

for (const under of factoriesUnderTest) {
  t.test(`${under.name}: every response that sets or clears the cookie is private to its user`, { skip: under.skip ?? false }, async (t) => {
    const clock = fakeClock(t)
    const { factory, dispose } = await useFactory(under)
    const trap = new LogTrap()
    const app = await cacheApp(factory, trap)
    const persistent = await cacheApp(factory, trap, 3_600)
    t.teardown(async () => {
      await app.close()
      await persistent.close()
      await dispose()
    })
    const post = (url: string, value?: string): Promise<LightMyRequestResponse> =>
      app.inject({ method: 'POST', url, headers: value === undefined ? {} : { cookie: `sid=${encodeURIComponent(value)}` } })
    const get = (url: string, value?: string, on = app): Promise<LightMyRequestResponse> =>
      on.inject({ method: 'GET', url, headers: value === undefined ? {} : { cookie: `sid=${encodeURIComponent(value)}` } })
    // A self-authenticating id (a seal) goes unsigned: the value is the id.
    const idOf = (value: string): string => value.includes('.') ? value.slice(0, value.lastIndexOf('.')) : value

    const created = assertPrivate(t, await post('/set'), 'a new session', 'set')
    trap.rememberCookie(created)
    const regenerated = assertPrivate(t, await post('/login', created), 'a regenerated session', 'set')
    trap.rememberCookie(regenerated)
    t.not(idOf(regenerated), idOf(created))

    const old = signId(idOf(regenerated), OLD_SECRET)
    const renewed = assertPrivate(t, await get('/read', old), 'a cookie signed with the older secret, re-signed on a read', 'set')
    t.equal(renewed, regenerated, 're-signed with the first secret')
    assertPrivate(t, await get('/untouched', old), 'a cookie signed with the older secret, on a route that never reads the session', 'set')

    clock.advance(61_000) // past a tenth of idleTimeout: the next request touches
    assertPrivate(t, await get('/read', regenerated, persistent), 'a rolling refresh of a persistent (maxAge) cookie', 'set')
    clock.advance(61_000)
    assertPrivate(t, await get('/untouched', regenerated, persistent), 'a rolling refresh on a route that never reads the session', 'set')

    assertPrivate(t, await post('/logout', regenerated), 'a destroyed session', 'clear')
    if (under.stateless !== true) {
      assertPrivate(t, await get('/read', regenerated), 'a cookie for a destroyed session, on a read', 'clear')
      assertPrivate(t, await get('/untouched', regenerated), 'a cookie for a destroyed session, on a route that never reads it', 'clear')
    }
    const expiring = cookieValueIn((await post('/set')).headers['set-cookie']) as string
    trap.rememberCookie(expiring)
    clock.advance(601_000) // past idleTimeout
    assertPrivate(t, await get('/read', expiring), 'a cookie for an expired session, on a read', 'clear')
    assertPrivate(t, await get('/untouched', expiring), 'a cookie for an expired session, on a route that never reads it', 'clear')

    const failed = await post('/set-then-throw')
    t.equal(failed.statusCode, 500)
    trap.rememberCookie(assertPrivate(t, failed, 'a 500 error reply that saved the session', 'set'))
    const missing = await post('/set-then-404')
    t.equal(missing.statusCode, 404)
    trap.rememberCookie(assertPrivate(t, missing, 'a 404 reply that saved the session', 'set'))
    const another = cookieValueIn((await post('/set')).headers['set-cookie']) as string
    trap.rememberCookie(another)
    const badRequest = await post('/logout-then-throw', another)
    t.equal(badRequest.statusCode, 400)
    assertPrivate(t, badRequest, 'a 400 error reply that destroyed the session', 'clear')

    const hijacked = await post('/hijacked')
    t.equal(hijacked.body, 'ok')
    trap.rememberCookie(assertPrivate(t, hijacked, 'a hijacked reply saved with session.save()', 'set'))
    t.same(trap.leaks(), [], 'no session id, cookie value or session value reached the log')
  })

  t.test(`${under.name}: the app's own Cache-Control and Vary win, with Cookie added to Vary`, { skip: under.skip ?? false }, async (t) => {
    const { factory, dispose } = await useFactory(under)
    const app = await cacheApp(factory, new LogTrap())
    t.teardown(async () => { await app.close(); await dispose() })
    const own = (query: string): Promise<LightMyRequestResponse> => app.inject({ method: 'POST', url: `/own-headers?${query}` })

    for (const cc of ['no-store', 'public, max-age=60', 'private, max-age=0', 'no-cache']) {
      const response = await own(`cc=${encodeURIComponent(cc)}`)
      t.ok(cookieValueIn(response.headers['set-cookie']), `${cc}: the cookie is set`)
      t.equal(response.headers['cache-control'], cc, `the app's "${cc}" is kept`)
      t.equal(response.headers.vary, 'Cookie')
    }
    for (const [vary, expected] of [['Accept-Encoding', 'Accept-Encoding, Cookie'], ['Origin, Accept', 'Origin, Accept, Cookie'], ['cookie', 'cookie'], ['Accept, COOKIE', 'Accept, COOKIE'], ['*', '*'], ['X-Cookie-Flavour', 'X-Cookie-Flavour, Cookie']]) {
      const response = await own(`vary=${encodeURIComponent(vary as string)}`)
      t.equal(response.headers.vary, expected, `Vary "${vary}" becomes "${expected}"`)
      t.equal(response.headers['cache-control'], 'private')
    }
    const hijacked = await app.inject({ method: 'POST', url: '/hijacked-own-cc?cc=no-store' })
    t.ok(cookieValueIn(hijacked.headers['set-cookie']), 'a hijacked reply still gets its cookie')
    t.equal(hijacked.headers['cache-control'], 'no-store', 'and keeps its own Cache-Control')
    t.ok(varyHasCookie(hijacked), 'and gets Vary: Cookie')
  })

  t.test(`${under.name}: a response that only reads the session varies on Cookie; one that never looks is left alone`, { skip: under.skip ?? false }, async (t) => {
    const { factory, dispose } = await useFactory(under)
    const app = await cacheApp(factory, new LogTrap())
    t.teardown(async () => { await app.close(); await dispose() })
    const value = cookieValueIn((await app.inject({ method: 'POST', url: '/set' })).headers['set-cookie']) as string
    const cookie = `sid=${encodeURIComponent(value)}`

    const read = await app.inject({ method: 'GET', url: '/read', headers: { cookie } })
    t.equal(read.json().user, 'ada-lovelace')
    t.equal(read.headers['set-cookie'], undefined, 'a read sets no cookie')
    t.ok(varyHasCookie(read), 'a page built from the session varies on Cookie')
    t.equal(read.headers['cache-control'], undefined, 'no Cache-Control is forced on a response that sets no cookie')

    const anonymous = await app.inject({ method: 'GET', url: '/read' })
    t.ok(varyHasCookie(anonymous), 'an anonymous read varies on Cookie too (the page differs once logged in)')

    for (const headers of [{}, { cookie }]) {
      const untouched = await app.inject({ method: 'GET', url: '/untouched', headers })
      t.equal(untouched.headers.vary, undefined, 'a route that never reads the session keeps its cacheability')
      t.equal(untouched.headers['cache-control'], undefined)
      t.equal(untouched.headers['set-cookie'], undefined)
    }
  })
}
