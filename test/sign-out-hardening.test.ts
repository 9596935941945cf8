// The smaller findings of issue 22 around sign out everywhere: a user-index error that names other
// sessions (ioredis keeps a failed command's arguments) reaches no log unredacted; sessions.load()
// answers null for anything that is not a Cookie header or a request carrying one; a session held
// outside a route (a socket) that was ended by endAll cannot be saved quietly.
import { inspect } from 'node:util'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { MemoryFactory, RedisFactory, type SessionFactory } from '../src/index.js'
import { Client, buildApp, sessionIdOf } from './helpers/app.js'
import { indexStores, stopCluster } from './helpers/index-stores.js'
import { cleaningClient, randomPrefix, sharedClient, sharedRedisSkipReason, type TapTest } from './helpers/redis.js'

t.teardown(stopCluster)

/** The shared test app (its /login files the user) with `userKey: 'user'`. */
async function userApp (t: TapTest, factory: SessionFactory<any>): Promise<FastifyInstance> {
  const app = await buildApp({ factory, userKey: 'user' })
  t.teardown(() => app.close())
  await app.ready()
  return app
}

/** Everything a logger could print of an error: its inspection, causes and properties included. */
function printed (error: unknown): string {
  return inspect(error, { depth: Infinity, showHidden: true })
}

t.test('a WRONGTYPE reply while listing a user names no session id, the user\'s other sessions included', { skip: await sharedRedisSkipReason() ?? false }, async (t) => {
  const prefix = randomPrefix()
  const redis = await cleaningClient(t, prefix)
  const client = await sharedClient()
  t.teardown(() => client.quit())
  const app = await userApp(t, new RedisFactory({ client, prefix }))
  const ids: string[] = []
  for (let i = 0; i < 3; i++) {
    const browser = new Client(app)
    await browser.post('/login', { user: 'ada' })
    ids.push(sessionIdOf(browser.cookie as string))
  }
  // Another writer on the prefix turned one session's hash into a string.
  await redis.set(prefix + (ids[1] as string), 'not a hash')
  const error = await app.sessions.list('ada').then(() => null, (error: unknown) => error)
  t.match(error, { code: 'FST_SESSION_STORE_UNAVAILABLE' })
  const text = printed(error)
  t.match(text, /WRONGTYPE/, 'the cause is kept')
  for (const id of ids) t.notOk(text.includes(id), 'no session id in the error')
})

t.test('sessions.load() answers null for anything but a Cookie header or a request with one', async (t) => {
  const app = await userApp(t, new MemoryFactory())
  const browser = new Client(app)
  await browser.post('/login', { user: 'ada' })
  const cookie = browser.cookie as string
  t.ok(await app.sessions.load(cookie), 'a Cookie header string')
  t.ok(await app.sessions.load({ headers: { cookie } }), 'a request carrying one')
  for (const source of [{}, 42, null, undefined, true, [], '', { headers: null }, { headers: {} }, { headers: { cookie: 42 } }, { headers: { cookie: '' } }, { headers: { cookie: [cookie] } }, { headers: 'cookie' }]) {
    t.equal(await app.sessions.load(source as never), null, inspect(source))
  }
})

t.test('a session held outside a route and ended by endAll: its save() rejects, nothing is written back', async (t) => {
  for (const store of indexStores) {
    t.test(store.name, { skip: store.skip }, async (t) => {
      const app = await userApp(t, await store.make(t))
      const browser = new Client(app)
      await browser.post('/login', { user: 'ada' })
      const socket = await app.sessions.load(browser.cookie as string)
      if (socket === null) throw new Error('the session did not load')
      socket.set('seen', 1)
      await socket.save()
      t.equal(await app.sessions.endAll('ada'), 1)
      socket.set('seen', 2)
      await t.rejects(socket.save(), { code: 'FST_SESSION_GONE' }, 'the socket learns it was signed out')
      t.equal(await app.sessions.load(browser.cookie as string), null, 'and the session stays gone')
      t.same(await app.sessions.list('ada'), [])
    })
  }
})

t.test('a session held outside a route, on a factory without destroy: save() writes as before', async (t) => {
  const memory = new MemoryFactory()
  const app = await userApp(t, { load: (id) => memory.load(id), save: (session) => memory.save(session) })
  const browser = new Client(app)
  await browser.post('/login', { user: 'ada' })
  const socket = await app.sessions.load(browser.cookie as string)
  if (socket === null) throw new Error('the session did not load')
  socket.set('seen', 1)
  await socket.save()
  t.equal((await app.sessions.load(browser.cookie as string))?.get('seen'), 1)
})
