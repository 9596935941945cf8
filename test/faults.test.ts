import { Writable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import sessionPlugin, { type SessionFactory } from '../src/index.js'
import { Client, SECRET, sessionIdOf, setCookies } from './helpers/app.js'
import { FaultyFactory, type Fault } from './helpers/factories.js'
import { signId } from './helpers/log-trap.js'

interface Harness {
  app: FastifyInstance
  factory: FaultyFactory
  logs: Array<Record<string, any>>
  client: Client
}

async function harness (t: Test, storeTimeout = 100): Promise<Harness> {
  const logs: Array<Record<string, any>> = []
  const stream = new Writable({
    write (chunk, _encoding, done) {
      logs.push(JSON.parse(String(chunk)))
      done()
    }
  })
  const app = Fastify({ logger: { level: 'trace', stream } })
  const factory = new FaultyFactory()
  await app.register(sessionPlugin, { factory, secret: SECRET, storeTimeout })
  app.get('/', async (request) => {
    const visits = (request.session.get('counter') ?? 0) + 1
    request.session.set('counter', visits)
    return { visits }
  })
  app.get('/read', async (request) => ({ data: request.session.data }))
  app.post('/logout', async (request) => {
    request.session.destroy()
    return 'bye'
  })
  t.teardown(() => app.close())
  return { app, factory, logs, client: new Client(app) }
}

const unhandled: unknown[] = []
process.on('unhandledRejection', (reason) => unhandled.push(reason))
process.on('beforeExit', () => {
  if (unhandled.length > 0) throw new Error(`unhandled rejections: ${unhandled.length}`)
})

function errorLogs (logs: Array<Record<string, any>>): Array<Record<string, any>> {
  return logs.filter((entry) => entry.level >= 50)
}

const faults: Fault[] = ['throw', 'reject', 'hang', 'garbage']

for (const fault of faults) {
  t.test(`load that faults (${fault}): 503 STORE_UNAVAILABLE, cookie untouched, logged once`, async (t) => {
    const { factory, logs, client } = await harness(t)
    await client.get('/')
    const cookie = client.cookie as string
    factory.faults.load = fault
    const started = Date.now()
    const response = await client.get('/')
    t.equal(response.statusCode, 503)
    t.equal(response.json().code, 'FST_SESSION_STORE_UNAVAILABLE')
    t.same(setCookies(response), [], 'the client keeps its cookie')
    t.equal(client.cookie, cookie)
    if (fault === 'hang') t.ok(Date.now() - started >= 90, 'bounded by storeTimeout')
    const errors = errorLogs(logs)
    t.equal(errors.length, 1, 'logged once')
    t.equal(errors[0]!.err.code, 'FST_SESSION_STORE_UNAVAILABLE')
    t.ok(errors[0]!.err.cause ?? errors[0]!.err.stack, 'the cause travels with it')

    factory.faults = {}
    t.same((await client.get('/')).json(), { visits: 2 }, 'the session is intact once the store is back')
  })
}

for (const fault of ['throw', 'reject', 'hang', 'garbage'] as Fault[]) {
  t.test(`save that faults (${fault}): one 503, no retry loop, no cookie`, async (t) => {
    const { factory, logs, client } = await harness(t)
    await client.get('/')
    const cookie = client.cookie
    factory.faults.save = fault
    let saves = 0
    const save = factory.save.bind(factory)
    factory.save = (session) => {
      saves++
      return save(session)
    }
    const response = await client.get('/')
    t.equal(response.statusCode, 503)
    t.equal(response.json().code, 'FST_SESSION_STORE_UNAVAILABLE')
    t.equal(saves, 1, 'the error reply does not retry the failed save')
    t.same(setCookies(response), [])
    t.equal(client.cookie, cookie)
    t.equal(errorLogs(logs).length, 1)
  })
}

t.test('a new visitor whose save fails gets a 503 and no cookie', async (t) => {
  const { factory, client } = await harness(t)
  factory.faults.save = 'reject'
  const response = await client.get('/')
  t.equal(response.statusCode, 503)
  t.equal(client.cookie, undefined)
})

t.test('destroy that faults on logout: 503 and the cookie is not cleared', async (t) => {
  const { factory, client } = await harness(t)
  await client.get('/')
  const cookie = client.cookie
  factory.faults.destroy = 'reject'
  const response = await client.post('/logout')
  t.equal(response.statusCode, 503)
  t.same(setCookies(response), [])
  t.equal(client.cookie, cookie)
  factory.faults = {}
  t.same((await client.get('/read')).json().data, { counter: 1 }, 'nothing was lost')
})

t.test('touch that faults: 503, cookie untouched, the session intact once the store is back', async (t) => {
  const { factory, client } = await harness(t)
  await client.get('/')
  const cookie = client.cookie
  const realNow = Date.now
  Date.now = () => realNow() + 3 * 3_600_000
  t.teardown(() => { Date.now = realNow })
  factory.faults.touch = 'throw'
  const response = await client.get('/read')
  t.equal(response.statusCode, 503)
  t.equal(response.json().code, 'FST_SESSION_STORE_UNAVAILABLE')
  t.same(setCookies(response), [])
  t.equal(client.cookie, cookie)
  factory.faults = {}
  t.same((await client.get('/read')).json().data, { counter: 1 })
})

t.test('a slow save answers 503 at storeTimeout; the id it returns late never reaches the client', async (t) => {
  const { factory, client } = await harness(t, 50)
  factory.faults.save = 'slow'
  factory.slowMs = 200
  const response = await client.get('/')
  t.equal(response.statusCode, 503)
  t.same(setCookies(response), [])
  await sleep(300)
  // The factory finished its work: the record is there, but nobody was given its id.
  t.equal(factory.inner.size, 1, 'the late save did land in the store')
  t.equal(client.cookie, undefined, 'no cookie names it')
  factory.faults = {}
  t.same((await client.get('/')).json(), { visits: 1 }, 'the next visit starts afresh')
  t.equal(factory.inner.size, 2, 'under another id')
})

t.test('a slow load answers 503 at storeTimeout; the session it returns late is never used', async (t) => {
  const { app, factory, client } = await harness(t, 50)
  let handled = 0
  app.addHook('preHandler', async () => { handled++ })
  await client.get('/')
  t.equal(handled, 1, 'the hook counts the requests that reach a handler')
  const cookie = client.cookie as string
  handled = 0
  factory.faults.load = 'slow'
  factory.slowMs = 200
  const response = await client.get('/')
  t.equal(response.statusCode, 503)
  t.same(setCookies(response), [])
  await sleep(300)
  t.equal(handled, 1, 'the request reached its handler, whose first read of the session threw the 503')
  t.same({ ...(await factory.inner.load(sessionIdOf(cookie)))?.data }, { counter: 1 }, 'nothing was saved from it')
  t.equal(client.cookie, cookie)
  factory.faults = {}
  t.same((await client.get('/')).json(), { visits: 2 }, 'the session goes on from what was stored')
})

t.test('a factory that resolves save() to something other than an id is a store fault', async (t) => {
  const factory: SessionFactory<any> = {
    async load () { return null },
    async save () { return '' }
  }
  const app = Fastify()
  await app.register(sessionPlugin, { factory, secret: SECRET })
  app.get('/', async (request) => {
    request.session.set('a', 1)
    return 'x'
  })
  t.teardown(() => app.close())
  const response = await app.inject('/')
  t.equal(response.statusCode, 503)
})

t.test('the error carries the factory\'s own error as its cause', async (t) => {
  const app = Fastify()
  const failure = new Error('connection refused')
  await app.register(sessionPlugin, {
    factory: { load: async () => null, save: async () => { throw failure } },
    secret: SECRET
  })
  let seen: unknown
  app.setErrorHandler((error, _request, reply) => {
    seen = error
    reply.code(503).send({ code: (error as { code: string }).code })
  })
  app.get('/', async (request) => {
    request.session.set('a', 1)
    return 'x'
  })
  t.teardown(() => app.close())
  await app.inject('/')
  t.equal((seen as { code: string }).code, 'FST_SESSION_STORE_UNAVAILABLE')
  t.equal((seen as { cause: unknown }).cause, failure)
})

t.test('a value JSON cannot carry fails the save with FST_SESSION_NOT_SERIALIZABLE and stores nothing', async (t) => {
  const { app, factory, client } = await harness(t)
  app.get('/bad', async (request) => {
    request.session.set('big', 10n as never)
    return 'x'
  })
  await client.get('/')
  const id = sessionIdOf(client.cookie as string)
  const response = await client.get('/bad')
  t.equal(response.statusCode, 500)
  t.equal(response.json().code, 'FST_SESSION_NOT_SERIALIZABLE')
  t.match(response.json().message, '"/big"')
  t.same(setCookies(response), [])
  t.same({ ...(await factory.inner.load(id))?.data }, { counter: 1 }, 'the stored record is as it was')
  const stranger = await app.inject('/bad')
  t.equal(stranger.json().code, 'FST_SESSION_NOT_SERIALIZABLE')
  t.same(setCookies(stranger), [])
  t.equal(factory.inner.size, 1, 'a new session that cannot be serialized is not stored at all')
  t.same((await client.get('/read')).json().data, { counter: 1 })
})

t.test('logs never carry the session id or cookie value', async (t) => {
  const { factory, logs, client } = await harness(t)
  await client.get('/')
  const cookie = client.cookie as string
  const value = decodeURIComponent(cookie.slice('sid='.length))
  const id = value.split('.')[0] as string
  factory.faults.load = 'reject'
  await client.get('/')
  factory.faults = {}
  await client.request('GET', '/read')
  await client.app.inject({ url: '/read', headers: { cookie: 'sid=forged.value' } })
  // A genuine signature on an id the store does not know: the "unknown id" fallback.
  const unknown = 'unknownsessionid0123456789abcdefghijklmnopq'
  await client.app.inject({ url: '/read', headers: { cookie: `sid=${encodeURIComponent(signId(unknown, SECRET))}` } })
  const text = JSON.stringify(logs)
  const fallbacks = logs.map((entry) => entry.msg ?? '').filter((msg: string) => msg.startsWith('session: '))
  t.ok(fallbacks.some((msg) => msg.includes('signature')), 'the plugin logged the forged cookie')
  t.ok(fallbacks.some((msg) => msg.includes('unknown')), 'and the unknown id')
  t.notMatch(text, unknown)
  t.notMatch(text, id)
  t.notMatch(text, value.split('.')[1] as string)
})
