import t from 'tap'
import Fastify from 'fastify'
import sessionPlugin, { MemoryFactory } from '../src/index.js'
import { attributesOf, buildApp, Client, SECRET, sessionIdOf, setCookies } from './helpers/app.js'
import { CountingFactory, SeedStyleFactory } from './helpers/factories.js'
import { statefulFactories, useFactory, type FactoryUnderTest } from './helpers/factories-under-test.js'

t.test('a first visit that sets data gets a signed cookie; the next visit loads it', async (t) => {
  const factory = new CountingFactory()
  const app = await buildApp({ factory })
  t.teardown(() => app.close())
  const client = new Client(app)

  const first = await client.get('/')
  t.same(first.json(), { visits: 1 })
  const [line] = setCookies(first)
  t.match(line, /^sid=[A-Za-z0-9_-]{43}\.[A-Za-z0-9+/]{43};/)
  t.same(attributesOf(line as string), { Path: '/', HttpOnly: true, SameSite: 'Lax' })
  t.same(factory.calls, ['save'], 'a new visitor costs one save and no load')

  const second = await client.get('/')
  t.same(second.json(), { visits: 2 })
  t.same(factory.calls, ['save', 'load', 'save'])
  t.same(setCookies(second), [], 'the id did not change, so the cookie the browser holds is still right')
})

t.test('an unchanged session costs no write and no Set-Cookie', async (t) => {
  const factory = new CountingFactory()
  const app = await buildApp({ factory })
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.post('/set', { a: 1 })
  factory.calls = []
  const read = await client.get('/read')
  t.same(read.json().data, { a: 1 })
  t.same(factory.calls, ['load'])
  t.same(setCookies(read), [])
  t.equal(read.headers.vary, 'Cookie', 'a response that read the session varies on Cookie')
  t.equal(read.headers['cache-control'], undefined, 'no cookie set: caching is the app\'s call')
})

// A deleted key is a change like a set one: a merging store (Memory, Redis) and one that rewrites
// the whole record (a user's JSON factory) must both see it.
const storing: FactoryUnderTest[] = [...statefulFactories, { name: 'a JSON-rewriting factory', make: () => new SeedStyleFactory() }]
for (const under of storing) {
  t.test(`${under.name}: a request whose only change is a deleted key saves it`, { skip: under.skip ?? false }, async (t) => {
    const { factory, dispose } = await useFactory(under)
    const app = await buildApp({ factory })
    t.teardown(async () => {
      await app.close()
      await dispose()
    })
    const client = new Client(app)
    await client.post('/set', { a: 1, b: 2 })
    const id = sessionIdOf(client.cookie as string)
    t.same({ ...(await factory.load(id))?.data }, { a: 1, b: 2 }, 'stored with both keys')
    const deleted = await client.post('/delete', ['a'])
    t.same(deleted.json().data, { b: 2 })
    t.same({ ...(await factory.load(id))?.data }, { b: 2 }, 'the store no longer holds the deleted key')
    t.same((await client.get('/read')).json().data, { b: 2 }, 'nor does the next request see it')
  })
}

t.test('a route that never touches the session: no cookie, no Vary, no factory call', async (t) => {
  const factory = new CountingFactory()
  const app = await buildApp({ factory })
  t.teardown(() => app.close())
  const response = await app.inject('/untouched')
  t.same(setCookies(response), [])
  t.equal(response.headers.vary, undefined)
  t.same(factory.calls, [])
})

t.test('saveUninitialized false: an empty new session is neither stored nor sent', async (t) => {
  const factory = new CountingFactory()
  const app = await buildApp({ factory })
  t.teardown(() => app.close())
  const response = await app.inject('/read')
  t.same(response.json(), { data: {}, id: null })
  t.same(setCookies(response), [])
  t.same(factory.calls, [])
})

t.test('saveUninitialized true: an empty new session is stored and sent', async (t) => {
  const factory = new CountingFactory()
  const app = await buildApp({ factory, saveUninitialized: true })
  t.teardown(() => app.close())
  const client = new Client(app)
  const response = await client.get('/read')
  t.equal(setCookies(response).length, 1)
  t.same(factory.calls, ['save'])
  const again = await client.get('/read')
  t.same(setCookies(again), [], 'once stored, an unchanged session is not re-sent')
  t.same(factory.calls, ['save', 'load'])
})

t.test('an unknown id gives a fresh session with a new id, and the stale cookie is cleared', async (t) => {
  const factory = new CountingFactory()
  const app = await buildApp({ factory })
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.get('/')
  const oldCookie = client.cookie as string
  const oldId = sessionIdOf(oldCookie)
  await factory.inner.destroy!(oldId)

  const untouched = await app.inject({ url: '/read', headers: { cookie: oldCookie } })
  t.same(untouched.json().data, {})
  t.equal(setCookies(untouched).length, 1)
  t.match(setCookies(untouched)[0], /^sid=;/)
  t.same(attributesOf(setCookies(untouched)[0] as string), { Path: '/', HttpOnly: true, SameSite: 'Lax', Expires: 'Thu, 01 Jan 1970 00:00:00 GMT', 'Max-Age': '0' })

  const written = await client.get('/')
  t.same(written.json(), { visits: 1 })
  t.not(client.cookie, oldCookie, 'the client id is never adopted')
  t.notMatch(client.cookie, oldId)
})

t.test('a stale cookie is cleared even on a route that never reads the session', async (t) => {
  const factory = new CountingFactory()
  const app = await buildApp({ factory })
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.get('/')
  await factory.inner.destroy!(sessionIdOf(client.cookie as string))
  const response = await client.get('/untouched')
  t.match(setCookies(response), [/^sid=;.*Max-Age=0(;|$)/])
  t.equal(response.headers.vary, 'Cookie')
  t.equal(client.cookie, undefined)
})

t.test('a cookie with a bad signature never reaches the factory', async (t) => {
  const factory = new CountingFactory()
  const app = await buildApp({ factory })
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.get('/')
  factory.calls = []
  const [name, value] = (client.cookie as string).split('=') as [string, string]
  const forged = [
    `${name}=${value.slice(0, -2)}`,
    `${name}=${value.split('.')[0]}`,
    `${name}=${value.split('.')[0]}.`,
    `${name}=x${value}`,
    `${name}=`,
    `${name}=%E0%A4%A`,
    `${name}=${value.split('.')[0]}.${'A'.repeat(43)}`
  ]
  for (const cookie of forged) {
    const response = await app.inject({ url: '/', headers: { cookie } })
    t.equal(response.statusCode, 200)
    t.same(response.json(), { visits: 1 }, 'a fresh session')
  }
  t.notOk(factory.calls.includes('load'), 'load was never called for a forged value')
})

t.test('login regenerates: the old id is destroyed and the data moves to a new id', async (t) => {
  const factory = new CountingFactory()
  const app = await buildApp({ factory })
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.post('/set', { cart: ['book'] })
  const before = client.cookie as string
  factory.calls = []
  const login = await client.post('/login', { user: 'ada' })
  t.same(factory.calls, ['load', 'destroy', 'save'], 'destroy() is declared to say whether it removed a record: no load checks first')
  t.not(client.cookie, before, 'a new id after login')
  t.equal(login.headers['cache-control'], 'private')
  t.equal(login.headers.vary, 'Cookie')

  const read = await client.get('/read')
  t.same(read.json().data, { cart: ['book'], user: 'ada' })

  const replay = await app.inject({ url: '/read', headers: { cookie: before } })
  t.same(replay.json().data, {}, 'the pre-login cookie is dead')

  factory.calls = []
  await client.post('/login', { user: 'ada' })
  t.same(factory.calls, ['load', 'destroy', 'save'], 'once destroy() answered true, its answer alone decides')
})

t.test('regenerate on a new session just saves it under a fresh id', async (t) => {
  const factory = new CountingFactory()
  const app = await buildApp({ factory })
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.post('/login', { user: 'grace' })
  t.same(factory.calls, ['save'])
  t.same((await client.get('/read')).json().data, { user: 'grace' })
})

t.test('logout destroys the session and clears the cookie with the same path and domain', async (t) => {
  const factory = new CountingFactory()
  const app = await buildApp({ factory, cookie: { path: '/', domain: 'example.com' } })
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.post('/login', { user: 'ada' })
  const loggedIn = client.cookie as string
  factory.calls = []
  const logout = await client.post('/logout')
  t.same(factory.calls, ['load', 'destroy'])
  t.equal(setCookies(logout).length, 1)
  t.match(setCookies(logout)[0], /^sid=;/)
  t.same(attributesOf(setCookies(logout)[0] as string), { Path: '/', Domain: 'example.com', HttpOnly: true, SameSite: 'Lax', Expires: 'Thu, 01 Jan 1970 00:00:00 GMT', 'Max-Age': '0' })
  t.equal(logout.headers['cache-control'], 'private')
  t.equal(logout.headers.vary, 'Cookie')
  t.equal(client.cookie, undefined)
  const replay = await app.inject({ url: '/read', headers: { cookie: loggedIn } })
  t.same(replay.json().data, {})
})

t.test('destroy of a session that was never stored: nothing to destroy, no cookie', async (t) => {
  const factory = new CountingFactory()
  const app = await buildApp({ factory })
  t.teardown(() => app.close())
  const response = await app.inject({ method: 'POST', url: '/logout' })
  t.same(factory.calls, [])
  t.same(setCookies(response), [])
})

t.test('data set after destroy starts a new session under a new id (a flash after logout)', async (t) => {
  const factory = new CountingFactory()
  const app = await buildApp({ factory })
  app.post('/logout-with-flash', async (request) => {
    request.session.destroy()
    request.session.set('flash', 'Signed out')
    return 'bye'
  })
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.post('/login', { user: 'ada' })
  const loggedIn = client.cookie
  factory.calls = []
  await client.post('/logout-with-flash')
  t.same(factory.calls, ['load', 'destroy', 'save'])
  t.not(client.cookie, loggedIn)
  t.same((await client.get('/read')).json().data, { flash: 'Signed out' })
})

t.test('error replies save the session like any reply', async (t) => {
  const app = await buildApp()
  app.get('/fail', async (request) => {
    request.session.set('attempts', 1)
    throw Object.assign(new Error('nope'), { statusCode: 418 })
  })
  app.get('/crash', async (request) => {
    request.session.set('crashed', true)
    throw new Error('boom')
  })
  t.teardown(() => app.close())
  const client = new Client(app)
  t.equal((await client.get('/fail')).statusCode, 418)
  t.equal((await client.get('/crash')).statusCode, 500)
  t.same((await client.get('/read')).json().data, { attempts: 1, crashed: true })
})

t.test('a 404 from the not-found handler still works with sessions', async (t) => {
  const app = await buildApp()
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.get('/')
  const response = await client.get('/nope')
  t.equal(response.statusCode, 404)
  t.same((await client.get('/')).json(), { visits: 2 })
})

t.test('a route with config.session false skips load and save', async (t) => {
  const factory = new CountingFactory()
  const app = await buildApp({ factory })
  app.get('/health', { config: { session: false } }, async () => 'ok')
  app.get('/health-peek', { config: { session: false } }, async (request) => {
    try {
      return request.session.get('counter')
    } catch (error) {
      return { code: (error as { code: string }).code }
    }
  })
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.get('/')
  factory.calls = []
  const health = await client.get('/health')
  t.equal(health.body, 'ok')
  t.same(factory.calls, [])
  t.same(setCookies(health), [])
  const peek = await client.get('/health-peek')
  t.equal(peek.statusCode, 200, 'reading the session there reads like a visitor\'s')
  t.equal(peek.body, '')
  t.same(factory.calls, [])
})

t.test('the decorator option lets two sessions live in one scope', async (t) => {
  const app = Fastify()
  const userFactory = new CountingFactory()
  const adminFactory = new CountingFactory()
  await app.register(sessionPlugin, { factory: userFactory, secret: SECRET })
  await app.register(sessionPlugin, { factory: adminFactory, secret: SECRET, decorator: 'adminSession', cookie: { name: 'admin' } })
  app.get('/', async (request) => {
    const admin = (request as unknown as { adminSession: typeof request.session }).adminSession
    request.session.set('who', 'user')
    admin.set('who', 'admin')
    return { user: request.session.get('who'), admin: admin.get('who') }
  })
  t.teardown(() => app.close())
  const response = await app.inject('/')
  t.same(response.json(), { user: 'user', admin: 'admin' })
  const names = setCookies(response).map((line) => line.split('=')[0]).sort()
  t.same(names, ['admin', 'sid'])
  t.same(userFactory.calls, ['save'])
  t.same(adminFactory.calls, ['save'])
})

t.test('sibling scopes hold independent session setups', async (t) => {
  const app = Fastify()
  const a = new CountingFactory()
  const b = new CountingFactory()
  await app.register(async (scope) => {
    await scope.register(sessionPlugin, { factory: a, secret: SECRET, cookie: { name: 'a', path: '/a' } })
    scope.get('/a', async (request) => {
      request.session.set('scope', 'a')
      return 'a'
    })
  })
  await app.register(async (scope) => {
    await scope.register(sessionPlugin, { factory: b, secret: SECRET + 'b', cookie: { name: 'b', path: '/b' } })
    scope.get('/b', async (request) => {
      request.session.set('scope', 'b')
      return 'b'
    })
  })
  app.get('/outside', async (request) => String('session' in request && request.session !== undefined))
  t.teardown(() => app.close())
  t.match(setCookies(await app.inject('/a')), [/^a=.*Path=\/a;/])
  t.match(setCookies(await app.inject('/b')), [/^b=.*Path=\/b;/])
  t.equal((await app.inject('/outside')).body, 'false', 'the parent scope has no session')
  t.same(a.calls, ['save'])
  t.same(b.calls, ['save'])
})

t.test('@fastify/cookie is registered once: an app that registered it keeps its own', async (t) => {
  const { default: fastifyCookie } = await import('@fastify/cookie')
  const app = Fastify()
  await app.register(fastifyCookie, { secret: 'the-app-own-cookie-secret' })
  await app.register(sessionPlugin, { factory: new MemoryFactory(), secret: SECRET })
  app.get('/', async (request, reply) => {
    request.session.set('n', 1)
    reply.setCookie('theme', 'dark', { signed: true })
    return { cookies: request.cookies }
  })
  t.teardown(() => app.close())
  const response = await app.inject({ url: '/', headers: { cookie: 'lang=en' } })
  t.same(response.json().cookies, { lang: 'en' })
  const names = setCookies(response).map((line) => line.split('=')[0]).sort()
  t.same(names, ['sid', 'theme'])
})

t.test('the plugin registers @fastify/cookie when the app has not', async (t) => {
  const app = await buildApp()
  t.teardown(() => app.close())
  await app.ready()
  t.ok(app.hasPlugin('@fastify/cookie'))
  t.equal(typeof app.parseCookie, 'function')
})

t.test('the app\'s own Vary and Cache-Control are kept', async (t) => {
  const app = await buildApp()
  app.get('/cached', async (request, reply) => {
    reply.header('cache-control', 'no-store').header('vary', 'Accept-Encoding')
    request.session.set('n', 1)
    return 'x'
  })
  app.get('/vary-star', async (request, reply) => {
    reply.header('vary', '*')
    return request.session.get('n') ?? 0
  })
  app.get('/vary-has-cookie', async (request, reply) => {
    reply.header('vary', 'Origin, cookie')
    return request.session.get('n') ?? 0
  })
  t.teardown(() => app.close())
  const cached = await app.inject('/cached')
  t.equal(cached.headers['cache-control'], 'no-store')
  t.equal(cached.headers.vary, 'Accept-Encoding, Cookie')
  t.equal((await app.inject('/vary-star')).headers.vary, '*')
  t.equal((await app.inject('/vary-has-cookie')).headers.vary, 'Origin, cookie')
})

t.test('factory.close() runs on app.close()', async (t) => {
  let closed = 0
  const factory = new MemoryFactory()
  const close = factory.close.bind(factory)
  factory.close = async () => {
    closed++
    await close()
  }
  const app = await buildApp({ factory })
  await app.ready()
  await app.close()
  t.equal(closed, 1)
})

t.test('a factory without destroy or close still works', async (t) => {
  const inner = new MemoryFactory()
  const app = await buildApp({ factory: { load: (id) => inner.load(id), save: (s) => inner.save(s) } })
  const client = new Client(app)
  await client.post('/login', { user: 'ada' })
  const loggedIn = client.cookie
  await client.post('/login', { user: 'bob' })
  t.not(client.cookie, loggedIn)
  const logout = await client.post('/logout')
  t.match(setCookies(logout), [/Max-Age=0/])
  await app.close()
})

t.test('idGenerator names new and regenerated sessions just before their save', async (t) => {
  let n = 0
  const seen: Array<string | null> = []
  const inner = new MemoryFactory()
  const factory = {
    load: (id: string) => inner.load(id),
    save: (session: Parameters<typeof inner.save>[0]) => {
      seen.push(session.id)
      return inner.save(session)
    },
    destroy: (id: string) => inner.destroy(id)
  }
  const app = await buildApp({ factory, idGenerator: () => `generated-${++n}` })
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.get('/')
  t.match(client.cookie, /^sid=generated-1\./)
  await client.post('/login', { user: 'ada' })
  t.match(client.cookie, /^sid=generated-2\./)
  t.same(seen, ['generated-1', 'generated-2'])
  t.equal(n, 2, 'reads and unchanged sessions never call idGenerator')
  await client.get('/read')
  t.equal(n, 2)
})

t.test('after a save, session.id and the cookie hold whatever id the factory returned', async (t) => {
  const inner = new MemoryFactory()
  const factory = {
    load: (id: string) => inner.load(id.slice('v2:'.length)),
    save: async (session: Parameters<typeof inner.save>[0]) => `v2:${await inner.save(session)}`
  }
  const app = await buildApp({ factory, idGenerator: () => 'stored-key' })
  app.get('/id', async (request) => {
    request.session.set('x', 1)
    await request.session.save()
    return request.session.id
  })
  t.teardown(() => app.close())
  const client = new Client(app)
  const response = await client.get('/id')
  t.equal(response.body, 'v2:stored-key')
  t.match(client.cookie, /^sid=v2(:|%3A)stored-key\./)
  t.same((await client.get('/read')).json().data, { x: 1 })
})

t.test('a session id is taken from the cookie alone', async (t) => {
  const factory = new CountingFactory()
  const app = await buildApp({ factory })
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.get('/')
  const value = (client.cookie as string).slice('sid='.length)
  factory.calls = []
  for (const request of [
    { url: `/read?sid=${value}` },
    { url: '/read', headers: { 'x-session-id': value, authorization: `Bearer ${value}` } },
    { url: '/read', headers: { cookie: `other=${value}` } }
  ]) {
    t.same((await app.inject(request)).json().data, {})
  }
  t.same(factory.calls, [])
})
