import { mock } from 'node:test'
import t from 'tap'
import { MemoryFactory, Session } from '../../src/index.js'
import { buildApp, Client } from '../helpers/app.js'

function stored (data: Record<string, unknown>, ttlMs = 60_000): Session<any> {
  const session = new Session<any>(data)
  session.id = `id-${Math.random()}`
  session.expiresAt = Date.now() + ttlMs
  return session
}

t.test('options are checked', async (t) => {
  for (const options of [{ maxSessions: 0 }, { maxSessions: 1.5 }, { ttl: -1 }, { ttl: '60' }]) {
    t.throws(() => new MemoryFactory(options as never), { code: 'FST_SESSION_INVALID_OPTIONS' })
  }
  t.doesNotThrow(() => new MemoryFactory({ maxSessions: 1, ttl: 1 }))
})

t.test('bounded by maxSessions: the least recently used go first', async (t) => {
  const factory = new MemoryFactory({ maxSessions: 3 })
  t.teardown(() => factory.close())
  const ids: string[] = []
  for (let i = 0; i < 3; i++) ids.push(await factory.save(stored({ n: i })))
  await factory.load(ids[0]!) // 0 is now the most recently used
  const fourth = await factory.save(stored({ n: 3 }))
  t.equal(factory.size, 3)
  t.equal(await factory.load(ids[1]!), null, 'the least recently used was evicted')
  t.ok(await factory.load(ids[0]!))
  t.ok(await factory.load(ids[2]!))
  t.ok(await factory.load(fourth))
})

t.test('expired entries are pruned by the sweep and on access', async (t) => {
  const factory = new MemoryFactory()
  t.teardown(() => factory.close())
  const short = await factory.save(stored({ a: 1 }, 10))
  const long = await factory.save(stored({ b: 1 }))
  t.equal(factory.sweep(Date.now() + 20), 1)
  t.equal(factory.size, 1)
  t.ok(await factory.load(long))
  t.equal(await factory.load(short), null)
  t.equal(factory.sweep(), 0)
})

t.test('the periodic sweep drops expired sessions every 60 s, with nothing calling sweep() or load()', async (t) => {
  // node:test's fake setInterval and Date: the factory's own unref'd interval runs when the clock is ticked.
  mock.timers.enable({ apis: ['setInterval', 'Date'], now: Date.UTC(2030, 0, 1) })
  t.teardown(() => mock.timers.reset())
  const factory = new MemoryFactory()
  t.teardown(() => factory.close())
  await factory.save(stored({ a: 1 }, 30_000))
  await factory.save(stored({ b: 1 }, 90_000))
  await factory.save(stored({ c: 1 }, 600_000))
  mock.timers.tick(59_999)
  t.equal(factory.size, 3, 'no sweep before the first minute, although one session expired at 30 s')
  mock.timers.tick(1)
  t.equal(factory.size, 2, 'the sweep at 60 s dropped the session that expired at 30 s')
  mock.timers.tick(60_000)
  t.equal(factory.size, 1, 'and the one at 120 s the session that expired at 90 s')
  mock.timers.tick(600_000)
  t.equal(factory.size, 0, 'it keeps running')
})

t.test('the sweeper timer never holds the process open', async (t) => {
  // getActiveResourcesInfo() lists what keeps the event loop alive; an unref'd timer is not listed.
  const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
  const before = timers()
  const factory = new MemoryFactory()
  await factory.save(stored({ a: 1 }))
  t.equal(timers(), before)
  await factory.close()
})

t.test('close() forgets every session', async (t) => {
  const factory = new MemoryFactory()
  await factory.save(stored({ a: 1 }))
  await factory.close()
  t.equal(factory.size, 0)
  await factory.close()
})

t.test('ttl applies to sessions saved without expiresAt', async (t) => {
  const factory = new MemoryFactory({ ttl: 1 })
  t.teardown(() => factory.close())
  const session = new Session<any>({ a: 1 })
  const id = await factory.save(session)
  t.match(id, /^[A-Za-z0-9_-]{43}$/, 'a session saved without id gets one')
  t.ok(await factory.load(id))
  t.equal(factory.sweep(Date.now() + 1001), 1)

  const touched = await factory.save(stored({ a: 1 }))
  const loaded = (await factory.load(touched))!
  loaded.expiresAt = null
  await factory.touch(loaded)
  t.equal(factory.sweep(Date.now() + 500), 0)
  t.equal(factory.sweep(Date.now() + 1001), 1)
})

t.test('touch of a session without an id, or of an unknown id, is a no-op', async (t) => {
  const factory = new MemoryFactory()
  t.teardown(() => factory.close())
  await factory.touch(new Session())
  await factory.touch(new Session({}, 'unknown'))
  t.equal(factory.size, 0)
})

t.test('a save writes what was set or deleted, and a value from get() changed in place', async (t) => {
  const app = await buildApp()
  app.get('/mutate-and-set', async (request) => {
    (request.session.get('list') as unknown[]).push('in place')
    request.session.set('other', 1)
    return 'ok'
  })
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.post('/set', { list: ['a'] })
  await client.get('/mutate-and-set')
  t.same((await client.get('/read')).json().data, { list: ['a', 'in place'], other: 1 }, 'the in-place change is saved like a set()')
})

t.test('stores JSON, not live references: a reference kept after the reply cannot leak in', async (t) => {
  const app = await buildApp()
  let leaked: unknown[] = []
  app.get('/keep-ref', async (request) => {
    const list = ['a']
    request.session.set('list', list)
    leaked = list
    return 'ok'
  })
  app.get('/mutate', async (request) => {
    (request.session.get('list') as unknown[]).push('in place')
    return 'ok'
  })
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.get('/keep-ref')
  leaked.push('after the reply')
  t.same((await client.get('/read')).json().data, { list: ['a'] }, 'what the handler kept after the reply is not the stored value')
  await client.get('/mutate')
  t.same((await client.get('/read')).json().data, { list: ['a', 'in place'] }, 'a change in place during a request is saved')
})
