import t from 'tap'
import { MemoryFactory, Session, type SessionFactory } from '../src/index.js'
import { buildApp, Client, sessionIdOf, setCookies } from './helpers/app.js'
import { fakeClock } from './helpers/clock.js'
import { CountingFactory, SeedStyleFactory } from './helpers/factories.js'

const SECOND = 1000

t.test('a session idle longer than idleTimeout is dead: destroyed, fresh session, cookie cleared', async (t) => {
  const clock = fakeClock(t)
  // A store that keeps everything: the plugin alone must notice the timeout.
  const factory = new CountingFactory(new SeedStyleFactory())
  const app = await buildApp({ factory, idleTimeout: 60, rolling: false })
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.get('/')
  clock.advance(59 * SECOND)
  t.same((await client.get('/')).json(), { visits: 2 }, 'still alive just before the timeout')
  clock.advance(60 * SECOND)
  factory.calls = []
  const after = await client.get('/read')
  t.same(after.json().data, {})
  t.same(factory.calls, ['load', 'destroy'])
  t.match(setCookies(after), [/Max-Age=0/])
})

t.test('a session found past its idle timeout is gone from the store after that request', async (t) => {
  const clock = fakeClock(t)
  // Keeps every record, expired or not: only the plugin's destroy removes one.
  const factory = new SeedStyleFactory()
  const app = await buildApp({ factory, idleTimeout: 60 })
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.post('/set', { user: 'ada' })
  const id = sessionIdOf(client.cookie as string)
  const bystander = new Client(app)
  await bystander.post('/set', { user: 'grace' })
  t.ok(factory.rows.has(id), 'stored')
  clock.advance(60 * SECOND)
  t.ok(factory.rows.has(id), 'still in the store until a request finds it expired')
  t.equal((await client.get('/untouched')).statusCode, 200)
  t.notOk(factory.rows.has(id), 'the request that found it expired destroyed its record')
  t.equal(factory.rows.size, 1, 'and no other: the bystander\'s record is still there')
})

t.test('the idle timeout is checked from the session\'s own touchedAt, whatever the factory keeps', async (t) => {
  const clock = fakeClock(t)
  // A factory that never expires anything.
  const rows = new Map<string, string>()
  const factory: SessionFactory<any> = {
    async load (id) {
      const row = rows.get(id)
      return row === undefined ? null : Session.fromJSON(JSON.parse(row))
    },
    async save (session) {
      rows.set(session.id as string, JSON.stringify(session))
      return session.id as string
    }
  }
  const app = await buildApp({ factory, idleTimeout: 10 })
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.get('/')
  clock.advance(11 * SECOND)
  t.same((await client.get('/')).json(), { visits: 1 }, 'a fresh session')
})

t.test('activity extends the idle timeout when rolling', async (t) => {
  const clock = fakeClock(t)
  const factory = new CountingFactory()
  const app = await buildApp({ factory, idleTimeout: 100 })
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.post('/set', { user: 'ada' })
  for (let i = 0; i < 5; i++) {
    clock.advance(60 * SECOND)
    t.same((await client.get('/read')).json().data, { user: 'ada' }, `alive after ${(i + 1) * 60} s of reads`)
  }
  t.equal(factory.count('touch'), 5, 'each read after a tenth of the idle timeout touches')
  t.equal(factory.count('save'), 1, 'touches do not rewrite data')
})

t.test('at most one touch per tenth of idleTimeout', async (t) => {
  const clock = fakeClock(t)
  const factory = new CountingFactory()
  const app = await buildApp({ factory, idleTimeout: 100 })
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.post('/set', { user: 'ada' })
  factory.calls = []
  for (let i = 0; i < 20; i++) {
    clock.advance(SECOND)
    await client.get('/read')
  }
  t.equal(factory.count('touch'), 2, '20 s of reads, one touch per 10 s')
  t.same(factory.calls.filter((c) => c !== 'load' && c !== 'touch'), [])
})

t.test('touch sets touchedAt and expiresAt (the earlier of idle and absolute expiry)', async (t) => {
  const clock = fakeClock(t)
  const memory = new MemoryFactory()
  const seen: Array<{ touchedAt: number, expiresAt: number | null, createdAt: number }> = []
  const factory: SessionFactory<any> = {
    load: (id) => memory.load(id),
    save: (s) => memory.save(s),
    async touch (session) {
      seen.push({ touchedAt: session.touchedAt, expiresAt: session.expiresAt, createdAt: session.createdAt })
      await memory.touch(session)
    }
  }
  const app = await buildApp({ factory, idleTimeout: 100, absoluteTimeout: 150 })
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.get('/')
  clock.advance(20 * SECOND)
  await client.get('/read')
  const first = seen[0]!
  t.equal(first.touchedAt, clock.now())
  t.equal(first.expiresAt, clock.now() + 100 * SECOND, 'idle expiry comes first')
  clock.advance(90 * SECOND)
  await client.get('/read')
  const second = seen[1]!
  t.equal(second.expiresAt, second.createdAt + 150 * SECOND, 'then the absolute expiry caps it')
})

t.test('rolling false: reads never touch, so a session dies idleTimeout after its last write', async (t) => {
  const clock = fakeClock(t)
  const factory = new CountingFactory()
  const app = await buildApp({ factory, idleTimeout: 100, rolling: false })
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.post('/set', { user: 'ada' })
  clock.advance(60 * SECOND)
  await client.get('/read')
  clock.advance(60 * SECOND)
  t.same((await client.get('/read')).json().data, {})
  t.equal(factory.count('touch'), 0)
})

t.test('the absolute timeout ends a session whatever its activity', async (t) => {
  const clock = fakeClock(t)
  const app = await buildApp({ idleTimeout: 100, absoluteTimeout: 300 })
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.get('/')
  for (let i = 0; i < 5; i++) {
    clock.advance(50 * SECOND)
    await client.get('/')
  }
  t.same((await client.get('/read')).json().data, { counter: 6 }, 'alive at 250 s')
  clock.advance(50 * SECOND)
  t.same((await client.get('/read')).json().data, {}, 'dead at 300 s although active')
})

t.test('the absolute timeout, with a factory that keeps expired records: served 1 ms before it, dead at it and destroyed', async (t) => {
  const clock = fakeClock(t)
  // MemoryFactory would drop the record at expiresAt itself; this one keeps everything, so the
  // plugin alone must see the boundary.
  const factory = new SeedStyleFactory()
  const app = await buildApp({ factory, idleTimeout: 100, absoluteTimeout: 300 })
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.get('/')
  const id = sessionIdOf(client.cookie as string)
  for (let i = 0; i < 5; i++) {
    clock.advance(50 * SECOND)
    await client.get('/')
  }
  clock.advance(50 * SECOND - 1)
  t.same((await client.get('/read')).json().data, { counter: 6 }, 'served at 299.999 s')
  t.ok(factory.rows.has(id))
  clock.advance(1)
  const at = await client.get('/read')
  t.same(at.json().data, {}, 'a fresh session at 300 s')
  t.not(at.json().id, id)
  t.match(setCookies(at), [/^sid=;.*Max-Age=0/], 'the dead cookie is cleared')
  t.notOk(factory.rows.has(id), 'and its record destroyed')
})

t.test('regenerate restarts the absolute lifetime', async (t) => {
  const clock = fakeClock(t)
  const app = await buildApp({ idleTimeout: 100, absoluteTimeout: 300 })
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.get('/')
  clock.advance(250 * SECOND)
  await client.post('/login', { user: 'ada' })
  clock.advance(90 * SECOND)
  t.equal((await client.get('/read')).json().data.user, 'ada')
})

t.test('a factory without touch is rolled by a save', async (t) => {
  const clock = fakeClock(t)
  const memory = new CountingFactory()
  const factory: SessionFactory<any> = { load: (id) => memory.load(id), save: (s) => memory.save(s) }
  const app = await buildApp({ factory, idleTimeout: 100 })
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.post('/set', { user: 'ada' })
  memory.calls = []
  clock.advance(20 * SECOND)
  const read = await client.get('/read')
  t.same(memory.calls, ['load', 'save'])
  t.equal(setCookies(read).length, 0, 'the save kept the id, so the cookie the browser holds stays right')
  clock.advance(90 * SECOND)
  t.same((await client.get('/read')).json().data, { user: 'ada' }, 'the save extended the idle timeout')
})
