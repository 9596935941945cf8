// Code written for @fastify/session, run on our plugin: what keeps working (property writes, the
// peers' regenerate), and what fails loudly instead of losing data (milliseconds where we take seconds).
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify'
import fastifyCsrf from '@fastify/csrf-protection'
import t from 'tap'
import sessionPlugin, { MemoryFactory, type SessionFactory } from '../../src/index.js'
import { Client, SECRET } from '../helpers/app.js'
import { SeedStyleFactory } from '../helpers/factories.js'
import { factoriesUnderTest, useFactory } from '../helpers/factories-under-test.js'

/** An app whose errors are kept, to look at what a 500 was made of. */
async function buildApp (factory: SessionFactory<any> = new MemoryFactory()): Promise<{ app: FastifyInstance, errors: FastifyError[] }> {
  const app = Fastify()
  const errors: FastifyError[] = []
  app.addHook('onError', async (_request, _reply, error) => { errors.push(error) })
  await app.register(sessionPlugin, { factory, secret: SECRET })
  app.get('/read', async (request) => ({ data: request.session.data }))
  app.post<{ Body: Record<string, unknown> }>('/set', async (request) => {
    for (const [key, value] of Object.entries(request.body)) request.session.set(key, value)
    return { ok: true }
  })
  return { app, errors }
}

t.test('request.session.user = x is stored like set(), delete request.session.user deletes, and a member name is a TypeError naming set()', async (t) => {
  const { app, errors } = await buildApp()
  app.post('/assign', async (request) => {
    // @fastify/session's style.
    request.session.profile = { name: 'ada' }
    return { ok: true }
  })
  app.post('/unassign', async (request) => {
    delete request.session.profile
    return { had: 'profile' in request.session }
  })
  app.post('/member', async (request) => {
    ;(request.session as unknown as Record<string, unknown>).regenerate = 'x'
    return { ok: true }
  })
  t.teardown(() => app.close())
  const user = new Client(app)
  await user.post('/set', { visits: 1 })

  t.equal((await user.post('/assign')).statusCode, 200)
  t.same((await user.get('/read')).json().data, { visits: 1, profile: { name: 'ada' } }, 'the property write was saved')
  t.same((await user.post('/unassign')).json(), { had: false })
  t.same((await user.get('/read')).json().data, { visits: 1 }, 'the delete was saved')

  const member = await user.post('/member')
  t.equal(member.statusCode, 500)
  t.type(errors[0], TypeError)
  // The one message we read: it must tell the developer what to write instead.
  t.match(errors[0]?.message, /session\.set\('regenerate', value\)/, 'the error says what to write')
  t.same((await user.get('/read')).json().data, { visits: 1 }, 'the session is as it was')
})

for (const [name, make] of [['MemoryFactory', () => new MemoryFactory()], ['SeedStyleFactory', () => new SeedStyleFactory()]] as const) {
  t.test(`${name}: destroy(cb) and regenerate(cb) call back after the handler's own code, and the request completes`, async (t) => {
    const { app } = await buildApp(make())
    const order: string[] = []
    app.post('/logout', (request, reply) => {
      request.session.destroy((err) => {
        order.push('destroy callback')
        reply.send(err ?? { ok: 'destroyed' })
      })
      order.push('after destroy()')
    })
    app.post('/login', (request, reply) => {
      request.session.regenerate((err) => {
        order.push('regenerate callback')
        if (err !== undefined) return reply.send(err)
        request.session.set('user', 'ada')
        reply.send({ ok: 'regenerated' })
      })
      order.push('after regenerate()')
    })
    // An async handler with a callback returns the reply, as Fastify asks.
    app.post('/logout-async', async (request, reply) => {
      request.session.destroy((err) => { reply.send(err ?? { ok: 'destroyed-async' }) })
      return reply
    })
    app.post('/logout-await', async (request) => {
      await request.session.destroy()
      return { ok: 'awaited' }
    })
    t.teardown(() => app.close())

    const user = new Client(app)
    await user.post('/set', { cart: ['apple'] })
    const before = user.cookie
    const login = await user.post('/login')
    t.equal(login.statusCode, 200)
    t.same(login.json(), { ok: 'regenerated' })
    t.not(user.cookie, before, 'a new cookie')
    t.same((await user.get('/read')).json().data, { user: 'ada' }, 'regenerate() emptied the session: the cart is gone')

    const logout = await user.post('/logout')
    t.equal(logout.statusCode, 200)
    t.same(logout.json(), { ok: 'destroyed' })
    t.equal(user.cookie, undefined, 'the cookie is cleared')
    t.same(order, ['after regenerate()', 'regenerate callback', 'after destroy()', 'destroy callback'])

    await user.post('/set', { n: 1 })
    const viaAsync = await user.post('/logout-async')
    t.same(viaAsync.json(), { ok: 'destroyed-async' })
    t.equal(user.cookie, undefined, 'cleared')

    await user.post('/set', { n: 2 })
    const awaited = await user.post('/logout-await')
    t.same(awaited.json(), { ok: 'awaited' }, 'the promise form resolves')
    t.equal(user.cookie, undefined, 'cleared')
  })
}

t.test('cookie.maxAge in milliseconds, as @fastify/session takes it, fails registration', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => {
    await app.register(sessionPlugin, { factory: new MemoryFactory(), secret: SECRET, cookie: { maxAge: 86_400_000 } })
  }, { code: 'FST_SESSION_INVALID_OPTIONS' })
})

t.test('session.options({ maxAge }) gives this session a persistent cookie, in seconds', async (t) => {
  const { app, errors } = await buildApp()
  app.post<{ Body: { maxAge: number } }>('/remember', async (request) => {
    request.session.set('user', 'ada')
    request.session.options({ maxAge: request.body.maxAge })
    return { ok: true }
  })
  app.post('/forget', async (request) => {
    request.session.options({ maxAge: null })
    return { ok: true }
  })
  t.teardown(() => app.close())

  const user = new Client(app)
  const remembered = await user.post('/remember', { maxAge: 3600 })
  t.equal(remembered.statusCode, 200)
  const line = remembered.headers['set-cookie'] as string
  t.match(line, /; Max-Age=3600(;|$)/, 'the cookie lives an hour')

  const later = await user.post('/set', { cart: ['apple'] })
  t.match(later.headers['set-cookie'], /; Max-Age=3600(;|$)/, 'and keeps that lifetime when the session is saved again')

  const forgotten = await user.post('/forget')
  t.notMatch(forgotten.headers['set-cookie'], /Max-Age|Expires/, 'options({ maxAge: null }): back to a browser-session cookie')
  t.notMatch((await user.post('/set', { cart: ['fig'] })).headers['set-cookie'] ?? '', /Max-Age/, 'and so it stays')

  const others = new Client(app)
  const plain = await others.post('/set', { cart: ['pear'] })
  t.notMatch(plain.headers['set-cookie'], /Max-Age/, 'other sessions keep a browser-session cookie')

  const inMs = await new Client(app).post('/remember', { maxAge: 86_400_000 })
  t.equal(inMs.statusCode, 500, 'a day in milliseconds (1000 days in seconds, over the 400 browsers keep) fails loudly')
  t.equal(errors.at(-1)?.code, 'FST_SESSION_INVALID_OPTIONS')
})

t.test('@fastify/csrf-protection in its secure-session mode, with generateCsrf({ userInfo })', async (t) => {
  const app = Fastify()
  await app.register(sessionPlugin, { factory: new MemoryFactory(), secret: SECRET })
  await app.register(fastifyCsrf, {
    sessionPlugin: '@fastify/secure-session',
    getUserInfo: (request) => request.session.get('user') ?? ''
  })
  app.post<{ Body: { user: string } }>('/login', async (request) => {
    request.session.set('user', request.body.user)
    return { ok: true }
  })
  // csrf-protection hands these options to session.options(), which keeps only maxAge.
  app.get('/form', async (request, reply) => ({ token: reply.generateCsrf({ userInfo: request.session.get('user') }) }))
  app.post('/transfer', { preHandler: app.csrfProtection }, async () => ({ done: true }))
  t.teardown(() => app.close())

  const user = new Client(app)
  await user.post('/login', { user: 'ada' })
  const form = await user.get('/form')
  t.equal(form.statusCode, 200, 'generateCsrf with options works')
  const { token } = form.json()
  t.equal((await user.post('/transfer', { _csrf: token })).statusCode, 200, 'the token passes for its user')
  t.notMatch(form.headers['set-cookie'] ?? '', /Max-Age/, 'userInfo did not reach the cookie')

  await user.post('/login', { user: 'bob' })
  const other = await user.post('/transfer', { _csrf: token })
  t.equal(other.statusCode, 403, 'and fails once the session belongs to someone else')
  t.equal(other.json().code, 'FST_CSRF_INVALID_TOKEN')
})

t.test('@fastify/csrf-protection in its @fastify/session mode keeps its secret as a property: a token checks out, a missing one is a 403', async (t) => {
  const app = Fastify()
  await app.register(sessionPlugin, { factory: new MemoryFactory(), secret: SECRET })
  await app.register(fastifyCsrf, { sessionPlugin: '@fastify/session' })
  app.get('/form', async (_request, reply) => ({ token: reply.generateCsrf() }))
  app.post('/transfer', { preHandler: app.csrfProtection }, async () => ({ ok: true }))
  t.teardown(() => app.close())
  const user = new Client(app)
  const form = await user.get('/form')
  t.equal(form.statusCode, 200)
  const token = form.json().token as string
  t.equal((await user.post('/transfer', { _csrf: token })).statusCode, 200, 'the token checks out against the secret kept in request.session._csrf')
  t.equal((await user.post('/transfer', {})).statusCode, 403, 'no token, no transfer')
  t.equal((await app.inject({ method: 'POST', url: '/transfer', payload: { _csrf: token } })).statusCode, 403, 'the token without its session is refused')
})

const stores: Array<{ name: string, skip?: string, open: () => Promise<{ factory: SessionFactory<any>, dispose: () => Promise<void> }> }> = [
  { name: 'MemoryFactory', open: async () => ({ factory: new MemoryFactory(), dispose: async () => {} }) },
  { name: 'SeedStyleFactory', open: async () => ({ factory: new SeedStyleFactory(), dispose: async () => {} }) },
  ...factoriesUnderTest.filter((f) => f.name === 'RedisFactory').map((under) => ({
    name: under.name,
    ...(under.skip === undefined ? {} : { skip: under.skip }),
    open: () => useFactory(under)
  }))
]

for (const store of stores) {
  t.test(`${store.name}: a value read with get() and changed in place is saved`, { skip: store.skip ?? false }, async (t) => {
    const { factory, dispose } = await store.open()
    const { app } = await buildApp(factory)
    app.post<{ Body: { item: string } }>('/cart/add', async (request) => {
      request.session.get('cart').push(request.body.item)
      return { ok: true }
    })
    app.post<{ Body: { city: string } }>('/move', async (request) => {
      request.session.get('profile').address.city = request.body.city
      return { ok: true }
    })
    t.teardown(async () => { await app.close(); await dispose() })

    const user = new Client(app)
    await user.post('/set', { cart: ['apple'], profile: { address: { city: 'Paris' } } })
    const added = await user.post('/cart/add', { item: 'pear' })
    t.equal(added.statusCode, 200)
    await user.post('/move', { city: 'Lyon' })
    t.same((await user.get('/read')).json().data, { cart: ['apple', 'pear'], profile: { address: { city: 'Lyon' } } }, 'both changes were stored')
  })
}

t.test('a cycle made in place in a value read with get() fails loudly (FST_SESSION_NOT_SERIALIZABLE), and the stored data stays', async (t) => {
  const { app, errors } = await buildApp()
  app.post('/loop', async (request) => {
    const profile = request.session.get('profile')
    profile.self = profile
    return { ok: true }
  })
  app.post('/loop-save', async (request) => {
    const profile = request.session.get('profile')
    profile.self = profile
    try {
      await request.session.save()
      return { saved: true }
    } catch (error) {
      delete profile.self
      return { code: (error as { code?: string }).code }
    }
  })
  t.teardown(() => app.close())

  const user = new Client(app)
  await user.post('/set', { profile: { name: 'ada' } })
  const looped = await user.post('/loop')
  t.equal(looped.statusCode, 500)
  t.equal(errors.at(-1)?.code, 'FST_SESSION_NOT_SERIALIZABLE')
  t.same((await user.get('/read')).json().data, { profile: { name: 'ada' } }, 'nothing was lost or half-written')
  t.same((await user.post('/loop-save')).json(), { code: 'FST_SESSION_NOT_SERIALIZABLE' }, 'save() rejects with the same code')
})
