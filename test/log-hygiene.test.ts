// Log hygiene: with every log line captured at `trace`, no session id, cookie value or session
// value appears, whatever happens: normal use, forged and stale cookies, expiry, factory faults
// whose own messages name the id, values JSON cannot hold.
import fc from 'fast-check'
import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import sessionPlugin, { type Session, type SessionFactory } from '../src/index.js'
import { OLD_SECRET, SECRET } from './helpers/app.js'
import { fakeClock } from './helpers/clock.js'
import { factoriesUnderTest, useFactory, wrapFactory } from './helpers/factories-under-test.js'
import { checkProperty } from './helpers/fuzz.js'
import { LogTrap, cookieValueIn, signId } from './helpers/log-trap.js'

type Method = 'load' | 'save' | 'destroy' | 'touch'

/**
 * A factory written carelessly, as many are: its errors name the session they failed on, in the
 * message and in a nested cause.
 */
function careless (inner: SessionFactory<any>, failing: Set<Method>): SessionFactory<any> {
  const fail = (method: Method, id: unknown): Error =>
    new Error(`${method} failed for session ${String(id)}`, { cause: new Error(`socket closed while handling ${String(id)}`) })
  const idOf = (arg: string | Session): unknown => typeof arg === 'string' ? arg : arg.id
  const wrapped = wrapFactory(inner)
  for (const method of ['load', 'save', 'destroy', 'touch'] as const) {
    const original = wrapped[method] as ((arg: any) => Promise<any>) | undefined
    if (original === undefined) continue
    wrapped[method] = (arg: any) => failing.has(method) ? Promise.reject(fail(method, idOf(arg))) : original(arg)
  }
  return wrapped
}

async function hygieneApp (factory: SessionFactory<any>, trap: LogTrap, storeTimeout?: number): Promise<FastifyInstance> {
  const app = Fastify({ logger: trap.logger })
  await app.register(sessionPlugin, { factory, secret: [SECRET, OLD_SECRET], idleTimeout: 600, ...(storeTimeout === undefined ? {} : { storeTimeout }) })
  app.get('/read', async (request) => ({ user: request.session.get('user') ?? null }))
  app.post<{ Body: Record<string, string> }>('/set', async (request) => {
    for (const [key, value] of Object.entries(request.body)) request.session.set(key, value)
    return 'ok'
  })
  app.post<{ Body: { user: string } }>('/login', async (request) => {
    request.session.regenerate()
    request.session.set('user', request.body.user)
    return 'ok'
  })
  app.post('/logout', async (request) => {
    request.session.destroy()
    return 'ok'
  })
  app.post<{ Body: { key: string, inner: string } }>('/unstorable', async (request) => {
    // A map keyed by data (an email), with a value JSON cannot hold deep inside.
    request.session.set(request.body.key, { [request.body.inner]: { nested: [1, () => 'not json'] } })
    return 'ok'
  })
  return app
}

const SECRET_USER = 'grace.hopper@example.com'

for (const under of factoriesUnderTest) {
  t.test(`${under.name}: normal use, forged, stale and expired cookies log nothing secret`, { skip: under.skip ?? false }, async (t) => {
    const clock = fakeClock(t)
    const { factory, dispose } = await useFactory(under)
    const trap = new LogTrap()
    const app = await hygieneApp(factory, trap)
    t.teardown(async () => { await app.close(); await dispose() })
    const remember = (value: string | undefined): string => {
      if (value) trap.rememberCookie(value)
      return `sid=${encodeURIComponent(value ?? '')}`
    }
    trap.remember(SECRET_USER, 'a-note-nobody-else-may-read', SECRET, OLD_SECRET)

    const first = remember(cookieValueIn((await app.inject({ method: 'POST', url: '/set', payload: { note: 'a-note-nobody-else-may-read' } })).headers['set-cookie']))
    const login = await app.inject({ method: 'POST', url: '/login', headers: { cookie: first }, payload: { user: SECRET_USER } })
    const value = cookieValueIn(login.headers['set-cookie']) as string
    const cookie = remember(value)
    await app.inject({ method: 'GET', url: '/read', headers: { cookie } })
    await app.inject({ method: 'GET', url: '/read', headers: { cookie: first } }) // stale
    await app.inject({ method: 'GET', url: '/read', headers: { cookie: `sid=${value}x` } }) // forged
    // A self-authenticating id (a seal) goes unsigned: the value is the id.
    const id = value.includes('.') ? value.slice(0, value.lastIndexOf('.')) : value
    await app.inject({ method: 'GET', url: '/read', headers: { cookie: remember(signId(id, OLD_SECRET)) } })
    clock.advance(601_000)
    await app.inject({ method: 'GET', url: '/read', headers: { cookie } }) // expired
    const again = remember(cookieValueIn((await app.inject({ method: 'POST', url: '/login', payload: { user: SECRET_USER } })).headers['set-cookie']))
    await app.inject({ method: 'POST', url: '/logout', headers: { cookie: again } })

    t.ok(trap.lines.some((line) => line.includes('"level":20')), 'debug lines were logged (the fallbacks say why)')
    // An unsigned cookie (a seal) is one string where a signed one is three: value, encoded, id.
    t.ok(trap.secretCount >= 8, `${trap.secretCount} secrets watched`)
    t.same(trap.leaks(), [], 'no session id, cookie value or session value reached the log')
  })

  t.test(`${under.name}: factory faults whose errors name the session are logged without the id`, { skip: under.skip ?? false }, async (t) => {
    const { factory, dispose } = await useFactory(under)
    t.teardown(dispose)
    const clock = fakeClock(t)
    for (const method of ['load', 'save', 'destroy', 'touch'] as const) {
      const trap = new LogTrap()
      const healthy = await hygieneApp(wrapFactory(factory, { keepOpen: true }), trap)
      const value = cookieValueIn((await healthy.inject({ method: 'POST', url: '/login', payload: { user: SECRET_USER } })).headers['set-cookie']) as string
      trap.rememberCookie(value)
      trap.remember(SECRET_USER)
      await healthy.close()
      const faulty = careless(factory, new Set([method]))
      if (faulty[method] === undefined) continue
      const app = await hygieneApp(faulty, trap)
      const cookie = `sid=${encodeURIComponent(value)}`
      clock.advance(61_000) // a read is now due a touch
      const response = method === 'destroy'
        ? await app.inject({ method: 'POST', url: '/logout', headers: { cookie } })
        : method === 'save'
          ? await app.inject({ method: 'POST', url: '/set', headers: { cookie }, payload: { more: 'x' } })
          : await app.inject({ method: 'GET', url: '/read', headers: { cookie } })
      await app.close()
      t.equal(response.statusCode, 503, `${method} fault: 503`)
      t.equal(trap.errors().length, 1, `${method} fault: logged once`)
      t.match(trap.errors()[0], /failed for session/, `${method} fault: the cause is in the log`)
      t.same(trap.leaks(), [], `${method} fault: the cause's own mention of the id is not in the log`)
    }
  })

  t.test(`${under.name}: a value JSON cannot hold is reported without the data around it`, { skip: under.skip ?? false }, async (t) => {
    const { factory, dispose } = await useFactory(under)
    const trap = new LogTrap()
    const app = await hygieneApp(factory, trap)
    t.teardown(async () => { await app.close(); await dispose() })
    await checkProperty(fc.asyncProperty(fc.emailAddress().filter((e) => e.length >= 12), async (email) => {
      trap.remember(email)
      const response = await app.inject({ method: 'POST', url: '/unstorable', payload: { key: 'contacts', inner: email } })
      if (response.statusCode !== 500 || response.json().code !== 'FST_SESSION_NOT_SERIALIZABLE') throw new Error(`got ${response.statusCode}`)
    }), 20)
    t.match(trap.errors()[0], /contacts/, 'the top-level key, chosen by the developer, names the culprit')
    t.same(trap.leaks(), [], 'keys inside the value (data, such as an email) are not in the log')
  })
}
