// connect-redis behind the plugin, and the move from @fastify/session + connect-redis to us.
import { createRequire } from 'node:module'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import Fastify, { type FastifyPluginCallback } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import { RedisStore } from 'connect-redis'
import sessionPlugin, { fromExpressStore } from '../src/index.js'
import { SECRET, buildApp, Client, sessionCookie } from './helpers/app.js'
import { connectRedis, deleteKeys, uniqueName, type RedisClient } from './helpers/express-stores.js'

// Loaded without its types: they declare `request.session` as @fastify/session's own object.
const fastifySession = createRequire(import.meta.url)('@fastify/session') as FastifyPluginCallback<Record<string, unknown>>

const connected = await connectRedis()
if (typeof connected === 'string') {
  t.test('connect-redis behind the plugin', { skip: connected }, async () => {})
} else {
  const client: RedisClient = connected
  t.teardown(() => client.quit())

  /** A RedisStore under a prefix of its own, emptied when the test ends. */
  const storeFor = (t: { teardown (fn: () => unknown): void }): { store: RedisStore, prefix: string } => {
    const prefix = `${uniqueName('fsf-test')}:`
    t.teardown(() => deleteKeys(client, prefix))
    return { store: new RedisStore({ client, prefix }), prefix }
  }

  const idOf = (cookie: string): string =>
    decodeURIComponent(cookie.slice(cookie.indexOf('=') + 1)).replace(/\.[^.]*$/, '')

  t.test('a session round-trips through connect-redis; the key\'s TTL is the session\'s expiry', async (t) => {
    const { store, prefix } = storeFor(t)
    const app = await buildApp({ factory: fromExpressStore(store), idleTimeout: 3_600 })
    t.teardown(() => app.close())
    const user = new Client(app)
    t.same((await user.get('/')).json(), { visits: 1 })
    t.same((await user.get('/')).json(), { visits: 2 })

    const key = prefix + idOf(user.cookie as string)
    const record = JSON.parse(await client.get(key) as string)
    t.equal(record.counter, 2)
    const ttl = await client.ttl(key)
    const expected = Math.ceil((Date.parse(record.cookie.expires) - Date.now()) / 1000)
    t.ok(Math.abs(ttl - expected) <= 2 && ttl > 3_500, `TTL ${ttl}s follows cookie.expires (${expected}s)`)

    await user.post('/logout')
    t.equal(await client.exists(key), 0, 'logout deletes the key')
  })

  t.test('rolling: activity rewrites touchedAt and the TTL; idleness ends the session', { timeout: 60_000 }, async (t) => {
    const { store, prefix } = storeFor(t)
    // A touch is due after a tenth of the idle timeout: 0.5 s here.
    const app = await buildApp({ factory: fromExpressStore(store), idleTimeout: 5 })
    t.teardown(() => app.close())
    const user = new Client(app)
    await user.get('/')
    const key = prefix + idOf(user.cookie as string)
    const first = JSON.parse(await client.get(key) as string).cookie

    await sleep(800)
    t.equal((await user.get('/read')).json().data.counter, 1)
    const rolled = JSON.parse(await client.get(key) as string).cookie
    t.ok(rolled.touchedAt > first.touchedAt, 'a read after the touch interval moved touchedAt')
    t.ok(Date.parse(rolled.expires) > Date.parse(first.expires), 'and the expiry (the TTL) with it')
    t.equal(rolled.createdAt, first.createdAt)

    await sleep(5_500)
    t.same((await user.get('/read')).json().data, {}, 'idle past idleTimeout: a fresh session')
  })

  t.test('a Redis that went away: 503 FST_SESSION_STORE_UNAVAILABLE, the process lives on', async (t) => {
    const broken = await connectRedis() as RedisClient
    const prefix = `${uniqueName('fsf-test')}:`
    t.teardown(() => deleteKeys(client, prefix))
    const app = await buildApp({ factory: fromExpressStore(new RedisStore({ client: broken, prefix })) })
    t.teardown(() => app.close())
    const user = new Client(app)
    await user.get('/')
    broken.destroy()
    const response = await user.get('/')
    t.equal(response.statusCode, 503)
    t.equal(response.json().code, 'FST_SESSION_STORE_UNAVAILABLE')
  })

  t.test('a session written by @fastify/session + connect-redis is read by us: nobody is logged out', async (t) => {
    const { store, prefix } = storeFor(t)
    for (const maxAge of [undefined, 3_600_000]) {
      const legacy = Fastify()
      await legacy.register(fastifyCookie)
      await legacy.register(fastifySession, { secret: SECRET, store, saveUninitialized: false, cookie: { secure: false, ...(maxAge === undefined ? {} : { maxAge }) } })
      legacy.post('/login', async (request) => {
        const session = request.session as unknown as { set (key: string, value: unknown): void }
        session.set('user', 'ada')
        session.set('cart', [{ sku: 'A-1', qty: 2 }])
        return 'ok'
      })
      legacy.get('/whoami', async (request) => (request.session as unknown as { get (key: string): unknown }).get('user') ?? 'nobody')
      t.teardown(() => legacy.close())

      const login = await legacy.inject({ method: 'POST', url: '/login' })
      const cookie = sessionCookie(login, 'sessionId') as string
      t.ok(cookie, `@fastify/session set its cookie (maxAge ${maxAge})`)

      // The same store, secret and cookie name; everything else is ours.
      const app = Fastify()
      await app.register(sessionPlugin, { factory: fromExpressStore(store), secret: SECRET, cookie: { name: 'sessionId' } })
      app.get('/whoami', async (request) => ({ user: request.session.get('user'), cart: request.session.get('cart') }))
      app.post('/visit', async (request) => {
        request.session.set('visits', (request.session.get('visits') ?? 0) + 1)
        return 'ok'
      })
      t.teardown(() => app.close())

      const first = await app.inject({ url: '/whoami', headers: { cookie } })
      t.same(first.json(), { user: 'ada', cart: [{ sku: 'A-1', qty: 2 }] })
      const reissued = sessionCookie(first, 'sessionId')
      t.ok(reissued === undefined || reissued === cookie, 'the browser keeps the cookie it has')

      const key = prefix + idOf(cookie)
      const record = JSON.parse(await client.get(key) as string)
      t.equal(typeof record.cookie.createdAt, 'number', 'the first request rewrote the record with our timestamps')
      t.equal(record.user, 'ada')
      t.ok(await client.ttl(key) > 80_000, 'and a TTL from our idle timeout (a day)')

      t.equal((await app.inject({ method: 'POST', url: '/visit', headers: { cookie } })).statusCode, 200)
      t.same((await app.inject({ url: '/whoami', headers: { cookie } })).json().user, 'ada')
      // A rollback works too: @fastify/session reads what we wrote.
      t.equal((await legacy.inject({ url: '/whoami', headers: { cookie } })).body, 'ada')
    }
  })
}
