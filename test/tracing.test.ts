// Store calls seen through node:diagnostics_channel: a real subscriber on the five tracing
// channels sees start and end (and asyncStart/asyncEnd for a promise) of every factory call a
// request makes, on Memory, Redis and PostgreSQL; error for a failed one and for a Redis outage;
// and never a session id, a cookie or session data in a context or an error message.
import { tracingChannel } from 'node:diagnostics_channel'
import type { FastifyRequest } from 'fastify'
import t from 'tap'
import { MemoryFactory, RedisFactory, type FactoryCallContext, type SessionFactory } from '../src/index.js'
import { FactoryGuard } from '../src/guard.js'
import { Client, buildApp, sessionIdOf } from './helpers/app.js'
import { storesUnderTest } from './helpers/stores.js'
import { ownRedis, binariesSkipReason, type TapTest } from './helpers/redis.js'

const OPERATIONS = ['load', 'save', 'destroy', 'touch', 'sessionsOf'] as const

interface Seen {
  event: 'start' | 'end' | 'asyncStart' | 'asyncEnd' | 'error'
  context: FactoryCallContext
  /** The context's keys at the time of the event (the error is added before `error`). */
  keys: string[]
}

/** Subscribes to every channel for the test's duration; what it saw, in order. */
function subscriber (t: TapTest): Seen[] {
  const seen: Seen[] = []
  for (const operation of OPERATIONS) {
    const channel = tracingChannel<unknown, FactoryCallContext>(`fastify-session-factory:${operation}`)
    const record = (event: Seen['event']) => (context: FactoryCallContext): void => {
      seen.push({ event, context, keys: Object.keys(context).sort() })
    }
    const handlers = { start: record('start'), end: record('end'), asyncStart: record('asyncStart'), asyncEnd: record('asyncEnd'), error: record('error') }
    channel.subscribe(handlers)
    t.teardown(() => { channel.unsubscribe(handlers) })
  }
  return seen
}

/** The factory, with the name of each call it gets written down (the class name stays the factory's). */
function counted (factory: SessionFactory<any>, calls: string[]): SessionFactory<any> {
  return new Proxy(factory, {
    get (target, key, receiver) {
      const value: unknown = Reflect.get(target, key, receiver)
      if (typeof value !== 'function' || key === 'constructor') return value
      // Run on the factory itself, whose #private fields a proxy does not have.
      if (!OPERATIONS.includes(key as typeof OPERATIONS[number])) return value.bind(target)
      return (...args: unknown[]) => {
        calls.push(key as string)
        return (value as (...a: unknown[]) => unknown).apply(target, args)
      }
    }
  })
}

/** Everything a subscriber could read but the request (which carries the Cookie header by nature). */
function readable (seen: Seen[]): string {
  return JSON.stringify(seen.map(({ context }) => {
    const error = context.error as (Error & { cause?: Error }) | undefined
    return {
      ...context,
      request: undefined,
      error: error === undefined ? undefined : { message: error.message, stack: error.stack, cause: error.cause?.message, causeStack: error.cause?.stack }
    }
  }))
}

/** Each call's events, as tracePromise's: start, end, asyncStart, asyncEnd; error before asyncStart when it failed, or before end when it threw at once. */
function checkCalls (t: TapTest, seen: Seen[], calls: string[], factory: string, request: FastifyRequest | undefined): void {
  const starts = seen.filter((s) => s.event === 'start')
  t.same(starts.map((s) => s.context.operation), calls, `a start for each of the factory's calls (${calls.join(', ')})`)
  for (const { context } of starts) {
    const events = seen.filter((s) => s.context === context).map((s) => s.event)
    const ok = ['start,end,asyncStart,asyncEnd', 'start,error,end', 'start,end,error,asyncStart,asyncEnd'].includes(events.join(','))
    t.ok(ok, `${context.operation}: ${events.join(', ')}`)
    t.equal(context.factory, factory, 'the factory\'s class name')
    t.equal(context.request, request, request === undefined ? 'no request outside a route' : 'the request it serves')
  }
  for (const s of seen) {
    const expected = ['factory', 'operation', 'request']
    t.same(s.keys.filter((key) => key !== 'error'), expected, `${s.event}: the context holds nothing else`)
    if (s.event === 'error') t.ok(s.keys.includes('error'), 'an error event carries the error')
  }
}

for (const store of storesUnderTest) {
  t.test(`${store.name}: a subscriber sees every factory call of a request, and nothing secret`, { skip: store.skip }, async (t) => {
    const calls: string[] = []
    const factory = counted(await store.factory(t), calls)
    const app = await buildApp({ factory, userKey: 'user' })
    const requests: FastifyRequest[] = []
    app.addHook('onRequest', async (request) => { requests.push(request) })
    app.get('/mine', async () => ({ mine: (await app.sessions.list('ada')).length }))
    t.teardown(() => app.close())
    const seen = subscriber(t)
    const client = new Client(app)
    const secrets: string[] = []

    const steps: Array<[string, () => Promise<unknown>]> = [
      ['a login saves', () => client.post('/login', { user: 'ada' })],
      ['a visit loads and saves', () => client.get('/')],
      ['a read loads', () => client.get('/read')],
      ['a logout loads and destroys', () => client.post('/logout')]
    ]
    for (const [label, step] of steps) {
      seen.length = calls.length = 0
      const reply = await step() as { statusCode: number, json: () => any }
      t.equal(reply.statusCode, 200, label)
      if (client.cookie !== undefined) secrets.push(client.cookie.slice(client.cookie.indexOf('=') + 1), sessionIdOf(client.cookie))
      t.ok(calls.length > 0, `${label}: ${calls.join(', ')}`)
      checkCalls(t, seen, calls, store.name, requests.at(-1))
    }

    // Outside a route (app.sessions): the same events, without a request.
    await client.post('/login', { user: 'ada' })
    secrets.push(sessionIdOf(client.cookie as string))
    seen.length = calls.length = 0
    t.ok(await app.sessions.load(client.cookie), 'app.sessions.load')
    t.equal(await app.sessions.endAll('ada'), 1, 'app.sessions.endAll')
    checkCalls(t, seen, calls, store.name, undefined)
    t.ok(calls.includes('sessionsOf'), 'sessionsOf traced')

    const text = readable(seen)
    t.same(secrets.filter((secret) => text.includes(secret) || text.includes(encodeURIComponent(secret))), [], 'no session id or cookie in any context')
    t.notOk(text.includes('ada'), 'no session data in any context')
  })
}

t.test('a failed call: error events whose error is FST_SESSION_STORE_UNAVAILABLE, without the id', async (t) => {
  const memory = new MemoryFactory()
  let failing = false
  class FlakyFactory {
    load (id: string) { return failing ? Promise.reject(new Error(`no record sess:${id}`)) : memory.load(id) }
    save (session: any) {
      if (failing) throw new Error(`cannot write sess:${session.id as string}`)
      return memory.save(session)
    }

    destroy (id: string) { return memory.destroy(id) }
  }
  const calls: string[] = []
  const app = await buildApp({ factory: counted(new FlakyFactory(), calls) })
  t.teardown(() => app.close())
  const seen = subscriber(t)
  const client = new Client(app)
  await client.post('/set', { n: 1 })
  const id = sessionIdOf(client.cookie as string)

  failing = true
  seen.length = calls.length = 0
  const reply = await client.get('/read')
  t.equal(reply.statusCode, 503, 'a rejected load fails the request')
  const errors = seen.filter((s) => s.event === 'error')
  t.same(errors.map((s) => s.context.operation), ['load'], 'one error event, for the load')
  t.equal((errors[0]?.context.error as { code?: string }).code, 'FST_SESSION_STORE_UNAVAILABLE', 'carrying the guarded error')
  checkCalls(t, seen, calls, 'FlakyFactory', errors[0]?.context.request)

  // A synchronous throw: error before end, and no promise made for it.
  const fresh = new Client(app)
  seen.length = calls.length = 0
  t.equal((await fresh.post('/set', { n: 2 })).statusCode, 503, 'a throwing save fails the request')
  t.same(seen.filter((s) => s.context.operation === 'save').map((s) => s.event), ['start', 'error', 'end'], 'save: start, error, end')

  const text = readable(seen)
  t.notOk(text.includes(id), 'the id in the factory\'s message is not in the error a subscriber gets')
})

t.test('a Redis outage is seen as error events', { skip: binariesSkipReason('redis-server') ?? false }, async (t) => {
  const { server, redis } = await ownRedis(t)
  const app = await buildApp({ factory: new RedisFactory({ client: redis, prefix: 'trace:' }), storeTimeout: 1_000 })
  t.teardown(() => app.close())
  const seen = subscriber(t)
  const client = new Client(app)
  t.equal((await client.post('/set', { n: 1 })).statusCode, 200, 'Redis up: signed in')
  t.notOk(seen.some((s) => s.event === 'error'), 'no error while Redis is up')

  await server.kill()
  seen.length = 0
  t.equal((await client.get('/read')).statusCode, 503, 'Redis down: 503')
  t.equal((await new Client(app).post('/set', { n: 2 })).statusCode, 503, 'a new visitor\'s save: 503')
  const errors = seen.filter((s) => s.event === 'error')
  t.same(errors.map((s) => s.context.operation), ['load', 'save'], 'the failed load and save, as error events')
  for (const { context } of errors) {
    t.equal((context.error as { code?: string }).code, 'FST_SESSION_STORE_UNAVAILABLE', `${context.operation}: FST_SESSION_STORE_UNAVAILABLE`)
    t.equal(context.factory, 'RedisFactory')
  }
  const id = sessionIdOf(client.cookie as string)
  const text = readable(seen)
  t.notOk(text.includes(id) || text.includes(encodeURIComponent(client.cookie as string)), 'no id or cookie in the events')
})

t.test('a synchronous factory\'s answer stays synchronous under a subscriber', async (t) => {
  const seen = subscriber(t)
  const guard = new FactoryGuard(new MemoryFactory(), 1_000)
  t.teardown(() => guard.close())
  t.equal(guard.call('load', 'no-such-id'), null, 'load answers null, not a promise')
  t.same(seen.map((s) => s.event), ['start', 'end', 'asyncStart', 'asyncEnd'], 'with all four events, at once')
  seen.length = 0
  const broken = new FactoryGuard({ load: () => ({ not: 'a session' }) as any, save: () => 'x' }, 1_000)
  t.teardown(() => broken.close())
  t.throws(() => broken.call('load', 'some-id'), { code: 'FST_SESSION_STORE_UNAVAILABLE' }, 'a contract break throws at once')
  t.same(seen.map((s) => s.event), ['start', 'error', 'end'], 'start, error, end')
  t.equal(seen[0]?.context.factory, 'Object', 'a literal factory is an Object')

  seen.length = 0
  const bare = new FactoryGuard(Object.assign(Object.create(null), { load: () => null, save: () => 'x' }), 1_000)
  t.teardown(() => bare.close())
  bare.call('load', 'some-id')
  t.equal(seen[0]?.context.factory, 'Object', 'so is one without a prototype')
})

t.test('no subscriber: the channels say so, and calls run untraced', async (t) => {
  for (const operation of OPERATIONS) {
    t.notOk(tracingChannel(`fastify-session-factory:${operation}`).hasSubscribers, `${operation}: no subscriber`)
  }
  const app = await buildApp()
  t.teardown(() => app.close())
  const client = new Client(app)
  t.equal((await client.get('/')).statusCode, 200)
  t.same((await client.get('/')).json(), { visits: 2 })
})
