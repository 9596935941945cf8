// The Session as the ecosystem's code expects it (DESIGN §3–5), through Fastify: a visitor's
// session where there is no session work, outages that stay with the routes that read the
// session, changes after the response that throw, touch() and reload(), the absolute timeout
// across a rotation, ids that round-trip whatever their characters.
import { createReadStream } from 'node:fs'
import Fastify from 'fastify'
import fastifyCookie from '@fastify/cookie'
import t from 'tap'
import sessionPlugin, { MemoryFactory, Session, type SessionFactory } from '../src/index.js'
import { Client, SECRET, buildApp, sessionCookie, sessionIdOf, setCookies } from './helpers/app.js'
import { CountingFactory, FaultyFactory } from './helpers/factories.js'
import { Gates } from './helpers/gated.js'

t.test('a route without session work reads as a visitor: get() answers undefined, isNew is true, any change throws FST_SESSION_NOT_LOADED', async (t) => {
  const factory = new CountingFactory()
  const app = await buildApp({ factory, skip: (request) => request.url.startsWith('/static/') })
  const attempts: Record<string, (session: Session) => unknown> = {
    set: (s) => s.set('x', 1),
    property: (s) => { s.x = 1 },
    delete: (s) => { delete s.counter },
    clear: (s) => s.clear(),
    regenerate: (s) => s.regenerate(),
    destroy: (s) => s.destroy(),
    touch: (s) => s.touch(),
    options: (s) => s.options({ maxAge: 60 })
  }
  const visitorRoute = async (request: { session: Session }): Promise<unknown> => {
    const outcome: Record<string, string> = {}
    for (const [name, attempt] of Object.entries(attempts)) {
      try {
        attempt(request.session)
        outcome[name] = 'changed'
      } catch (error) {
        outcome[name] = (error as { code: string }).code
      }
    }
    const saved = await request.session.save().then(() => 'saved', (error: { code: string }) => error.code)
    return { counter: request.session.get('counter') ?? null, isNew: request.session.isNew, keys: Object.keys(request.session), outcome, saved }
  }
  app.get('/static/app.js', visitorRoute)
  app.get('/health', { config: { session: false } }, visitorRoute)
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.get('/')
  factory.calls = []
  for (const url of ['/static/app.js', '/health']) {
    const response = await client.get(url)
    t.equal(response.statusCode, 200, url)
    const body = response.json()
    t.same({ counter: body.counter, isNew: body.isNew, keys: body.keys }, { counter: null, isNew: true, keys: [] }, `${url}: an empty anonymous session`)
    for (const [name, code] of Object.entries(body.outcome)) t.equal(code, 'FST_SESSION_NOT_LOADED', `${url}: ${name} throws`)
    t.equal(body.saved, 'FST_SESSION_NOT_LOADED', `${url}: save() rejects`)
    t.same(setCookies(response), [], `${url}: no Set-Cookie`)
    t.equal(response.headers.vary, undefined, `${url}: no Vary`)
  }
  t.same(factory.calls, [], 'no load, no save')
})

t.test('a failed load fails only the requests that read the session: a public page and a health check answer 200 with no Set-Cookie', async (t) => {
  for (const fault of ['reject', 'throw'] as const) {
    const factory = new FaultyFactory()
    const app = await buildApp({ factory })
    app.get('/health', { config: { session: false } }, async () => 'ok')
    t.teardown(() => app.close())
    const client = new Client(app)
    await client.get('/')
    const cookie = client.cookie as string
    factory.faults.load = fault
    for (const url of ['/untouched', '/health']) {
      const response = await client.get(url)
      t.equal(response.statusCode, 200, `${fault}: ${url} never reads the session`)
      t.same(setCookies(response), [], `${fault}: ${url}: no Set-Cookie`)
    }
    const reading = await client.get('/')
    t.equal(reading.statusCode, 503, `${fault}: a route that reads the session answers 503`)
    t.equal(reading.json().code, 'FST_SESSION_STORE_UNAVAILABLE')
    t.same(setCookies(reading), [], 'its cookie is left as it was')
    t.equal(client.cookie, cookie)
    factory.faults = {}
    t.same((await client.get('/')).json(), { visits: 2 }, `${fault}: nothing was lost: the session counts on once the store is back`)
  }
})

t.test('a change after the response went out throws FST_SESSION_AFTER_SEND instead of being lost', async (t) => {
  const factory = new CountingFactory()
  const app = await buildApp({ factory })
  const thrown: string[] = []
  const attempt = (run: () => unknown): void => {
    try {
      run()
      thrown.push('nothing')
    } catch (error) {
      thrown.push((error as { code: string }).code)
    }
  }
  app.get('/late', (request, reply) => {
    request.session.set('before', 1)
    reply.send({ ok: true })
    attempt(() => request.session.set('after', 1))
    attempt(() => { request.session.after = 1 })
    attempt(() => request.session.regenerate())
  })
  app.get('/late-hook', async () => 'ok')
  app.addHook('onResponse', async (request) => {
    if (request.url === '/late-hook') attempt(() => request.session.set('fromHook', 1))
  })
  t.teardown(() => app.close())
  const client = new Client(app)
  t.equal((await client.get('/late')).statusCode, 200)
  t.same(thrown, ['FST_SESSION_AFTER_SEND', 'FST_SESSION_AFTER_SEND', 'FST_SESSION_AFTER_SEND'])
  t.same((await client.get('/read')).json().data, { before: 1 }, 'what was set before the send is stored, nothing after')
  thrown.length = 0
  await client.get('/late-hook')
  t.same(thrown, ['FST_SESSION_AFTER_SEND'], 'a session first read after the response went out cannot be changed either')
})

t.test('a second send that drops a stream destroys it: no file handle leaks', async (t) => {
  const gates = new Gates(new MemoryFactory())
  const app = Fastify()
  await app.register(sessionPlugin, { factory: gates.factory, secret: SECRET })
  let stream: ReturnType<typeof createReadStream> | null = null
  app.get('/twice', async (request, reply) => {
    request.session.set('x', 1)
    reply.send('first')
    stream = createReadStream(new URL(import.meta.url))
    return stream
  })
  t.teardown(() => app.close())
  gates.hold('save')
  const answer = app.inject('/twice')
  const held = await gates.next('save')
  // The first send's save is held: the handler's returned stream is sent, and dropped, meanwhile.
  await new Promise((resolve) => setImmediate(resolve))
  await held.release()
  const response = await answer
  t.equal(response.body, 'first', 'the first response goes out whole')
  t.ok(stream !== null && (stream as ReturnType<typeof createReadStream>).destroyed, 'the dropped stream was destroyed')
})

t.test('touch() extends the session and re-sends a persistent cookie, even with rolling: false', async (t) => {
  const factory = new CountingFactory()
  const app = await buildApp({ factory, rolling: false, cookie: { maxAge: 3600 } })
  app.get('/touch', async (request) => {
    request.session.touch()
    return 'touched'
  })
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.get('/')
  factory.calls = []
  const idle = await client.get('/read')
  t.same(factory.calls, ['load'], 'rolling: false: a read alone touches nothing')
  t.same(setCookies(idle), [])
  factory.calls = []
  const touched = await client.get('/touch')
  t.same(factory.calls, ['load', 'touch', 'load'], 'touch(), then the cookie is re-sent for a record that is still there')
  t.equal(setCookies(touched).length, 1, 'a persistent cookie is re-sent with its new expiry')
})

t.test('reload() drops unsaved changes and sees other requests\' writes; an ended session comes back new and empty', async (t) => {
  const factory = new MemoryFactory()
  const app = await buildApp({ factory })
  app.get('/reload', async (request) => {
    request.session.set('unsaved', true)
    const stored = await factory.load(request.session.id as string) as Session
    stored.set('fromElsewhere', 'yes')
    await factory.save(stored)
    await request.session.reload()
    return { data: { ...request.session }, isNew: request.session.isNew }
  })
  app.get('/reload-ended', async (request) => {
    factory.destroy(request.session.id as string)
    await new Promise<void>((resolve, reject) => { request.session.reload((err) => { if (err === undefined) resolve(); else reject(err) }) })
    return { data: { ...request.session }, isNew: request.session.isNew }
  })
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.get('/')
  t.same((await client.get('/reload')).json(), { data: { counter: 1, fromElsewhere: 'yes' }, isNew: false })
  t.same((await client.get('/read')).json().data, { counter: 1, fromElsewhere: 'yes' }, 'the dropped change stays dropped')
  const ended = await client.get('/reload-ended')
  t.same(ended.json(), { data: {}, isNew: true })
  t.match(setCookies(ended)[0], /^sid=;/, 'the cookie of the ended session is cleared')
})

t.test('regenerate(keep) keeps createdAt (a rotation never extends a stolen session past absoluteTimeout); an emptied session starts anew', async (t) => {
  const app = await buildApp({ absoluteTimeout: 60 })
  app.post('/rotate', async (request) => {
    const before = request.session.createdAt
    await request.session.regenerate(Object.keys(request.session))
    return { before }
  })
  app.post('/rotate-empty', async (request) => {
    await request.session.regenerate()
    request.session.set('fresh', true)
    return 'ok'
  })
  app.get('/created', async (request) => ({ createdAt: request.session.createdAt }))
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.get('/')
  const { createdAt } = (await client.get('/created')).json()
  const first = client.cookie
  await new Promise((resolve) => setTimeout(resolve, 5))
  await client.post('/rotate')
  t.not(client.cookie, first, 'a new id')
  t.equal((await client.get('/created')).json().createdAt, createdAt, 'the same createdAt under the new id')
  await client.post('/rotate-empty')
  t.ok((await client.get('/created')).json().createdAt > createdAt, 'an emptied session starts its absolute timeout anew')
})

t.test('an id holding a valid percent escape round-trips through the cookie; old cookies without one still read', async (t) => {
  let n = 0
  const app = await buildApp({ idGenerator: () => `id%41x-${n++}-0123456789abcdefghijklmnopqrstuvwxyz` })
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.get('/')
  t.match(client.cookie, /%2541x/, 'the % is escaped in the cookie')
  t.same((await client.get('/')).json(), { visits: 2 }, 'the session is found again')
  t.match((await client.get('/read')).json().id, /^id%41x-0-/)

  const plain = await buildApp({ factory: new MemoryFactory() })
  t.teardown(() => plain.close())
  const browser = new Client(plain)
  await browser.get('/')
  t.notMatch(browser.cookie, /%25/, 'a generated id goes out as it always did')
  t.same((await browser.get('/')).json(), { visits: 2 })
})

t.test('idleTimeout greater than absoluteTimeout (milliseconds by mistake) is refused at registration', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => {
    await app.register(sessionPlugin, { factory: new MemoryFactory(), secret: SECRET, idleTimeout: 1_800_000 })
    await app.ready()
  }, { code: 'FST_SESSION_INVALID_OPTIONS' })
  const short = await buildApp({ absoluteTimeout: 60 })
  t.teardown(() => short.close())
  t.ok(short, 'a short absoluteTimeout given alone caps the default idle timeout instead')
})

t.test('a Date stored in the session comes back as its ISO string, as JSON gives it', async (t) => {
  const app = await buildApp()
  app.post('/date', async (request) => {
    request.session.when = new Date(0)
    return 'ok'
  })
  app.get('/date', async (request) => ({ type: typeof request.session.when, when: request.session.when }))
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.post('/date')
  t.same((await client.get('/date')).json(), { type: 'string', when: '1970-01-01T00:00:00.000Z' })
})

t.test('the plugin leaves Fastify\'s own methods alone; a @fastify/cookie registered after it fails with Fastify\'s own error; a sibling scope keeps its own', async (t) => {
  const app = Fastify()
  const decorate = app.decorate
  await app.register(sessionPlugin, { factory: new MemoryFactory(), secret: SECRET })
  t.equal(app.decorate, decorate, 'fastify.decorate is not wrapped')
  await t.rejects(async () => {
    await app.register(fastifyCookie)
    await app.ready()
  }, { code: 'FST_ERR_DEC_ALREADY_PRESENT' })

  const root = Fastify()
  t.teardown(() => root.close())
  root.register(async (scope) => {
    await scope.register(sessionPlugin, { factory: new MemoryFactory(), secret: SECRET })
    scope.get('/a', async (request) => { request.session.set('a', 1); return 'a' })
  })
  root.register(async (scope) => {
    await scope.register(fastifyCookie, { secret: SECRET })
    scope.get('/b', async (_request, reply) => reply.setCookie('own', 'b', { signed: true }).send('b'))
  })
  await root.ready()
  t.ok(sessionCookie(await root.inject('/a')))
  t.match(setCookies(await root.inject('/b'))[0], /^own=b\./, 'the sibling\'s own @fastify/cookie signs with its own secret')
})

t.test('sessions.load() hands out the session with its data keys as properties', async (t) => {
  const app = await buildApp()
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.get('/')
  const session = await app.sessions.load(`sid=${encodeURIComponent(client.cookie?.slice(4) ? decodeURIComponent(client.cookie.slice(4)) : '')}`)
  t.equal(session?.counter, 1)
  t.equal(sessionIdOf(client.cookie as string), session?.id)
})

t.test('reload(), save() and property deletes where they cannot work: each fails loudly', async (t) => {
  await t.rejects(new Session().reload(), { code: 'FST_SESSION_DETACHED' }, 'reload() of a session no request owns')
  const app = await buildApp({ skip: (request) => request.url === '/skipped' })
  app.get('/skipped', async (request) => {
    const reload = await request.session.reload().then(() => 'reloaded', (error: { code: string }) => error.code)
    return { reload }
  })
  app.post('/reload-new', async (request) => {
    request.session.set('unsaved', 1)
    await request.session.reload()
    return { data: { ...request.session }, isNew: request.session.isNew }
  })
  app.get('/delete-member', async (request) => {
    try {
      delete (request.session as unknown as Record<string, unknown>).get
      return { deleted: true }
    } catch (error) {
      return { thrown: (error as Error).name }
    }
  })
  t.teardown(() => app.close())
  t.same((await app.inject('/skipped')).json(), { reload: 'FST_SESSION_NOT_LOADED' }, 'reload() of a visitor\'s session')
  const fresh = await app.inject({ method: 'POST', url: '/reload-new' })
  t.same(fresh.json(), { data: {}, isNew: true }, 'reload() of a session never stored drops its changes')
  t.same(setCookies(fresh), [], 'and stores nothing')
  t.same((await app.inject('/delete-member')).json(), { thrown: 'TypeError' }, 'delete of a member is refused')
})

t.test('a factory whose load() answers something that is not a session (a number) is a store fault: 503', async (t) => {
  const factory = new MemoryFactory()
  const app = await buildApp({ factory: Object.assign(factory, { load: () => 42 }) as unknown as SessionFactory })
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.get('/')
  t.equal((await client.get('/')).statusCode, 503)
})

t.test('touch() on a stateless factory waits for a response shared caches may not store', async (t) => {
  const { SealedCookieFactory } = await import('../src/index.js')
  const app = await buildApp({ factory: new SealedCookieFactory({ keys: Buffer.alloc(32, 7) }) })
  app.get('/touch-public', async (request, reply) => {
    request.session.touch()
    reply.header('cache-control', 'public, max-age=60')
    return 'ok'
  })
  app.get('/touch', async (request) => {
    request.session.touch()
    return 'ok'
  })
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.get('/')
  t.same(setCookies(await client.get('/touch-public')), [], 'no reseal on a shared-cacheable response')
  t.equal(setCookies(await client.get('/touch')).length, 1, 'the reseal goes on a private one')
})

t.test('app.sessions: reload() of a session loaded outside a route sees other writes, and an ended one comes back new', async (t) => {
  const factory = new MemoryFactory()
  const app = await buildApp({ factory })
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.get('/')
  const header = `sid=${encodeURIComponent(decodeURIComponent((client.cookie as string).slice(4)))}`
  const session = await app.sessions.load(header) as Session
  session.set('unsaved', true)
  await client.get('/')
  await session.reload()
  t.same({ ...session }, { counter: 2 }, 'the other request\'s write, the unsaved change dropped')
  factory.destroy(session.id as string)
  await session.reload()
  t.same({ isNew: session.isNew, keys: Object.keys(session) }, { isNew: true, keys: [] })
  session.set('scratch', 1)
  await session.reload()
  t.same(Object.keys(session), [], 'reload() of a session never stored drops its changes')
  const fresh = await app.sessions.load(header)
  t.equal(fresh, null)
})

t.test('a factory\'s own symbol-keyed memo, written on the session its load() answers, is there when save() gets that session', async (t) => {
  // A user's factory may remember what it loaded (a version, an etag) on the session itself, as
  // LoadedUsers does: written through the property view load() makes, read on what save() is handed.
  const memo = Symbol('etag')
  const memory = new MemoryFactory()
  const seen: unknown[] = []
  const factory: SessionFactory = {
    load (id) {
      const session = memory.load(id)
      if (session !== null) (session as unknown as Record<symbol, string>)[memo] = `etag-of-${session.get('counter') as number}`
      return session
    },
    save (session) {
      seen.push((session as unknown as Record<symbol, unknown>)[memo])
      return memory.save(session)
    }
  }
  const app = await buildApp({ factory })
  // A symbol on request.session is the session's own member, not a data key: the same slot.
  app.get('/memo', async (request) => ({ memo: (request.session as unknown as Record<symbol, unknown>)[memo] ?? null, keys: Object.keys(request.session) }))
  t.teardown(() => app.close())
  const cookie = sessionCookie(await app.inject({ url: '/' })) as string
  await app.inject({ url: '/', headers: { cookie } })
  t.same(seen, [undefined, 'etag-of-1'], 'a new session has no memo; the loaded one carries its own to the save')
  t.same((await app.inject({ url: '/memo', headers: { cookie } })).json(), { memo: 'etag-of-2', keys: ['counter'] }, 'read through the view, and no data key')
})
