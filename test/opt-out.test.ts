import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import sessionPlugin from '../src/index.js'
import { SECRET } from './helpers/app.js'
import { CountingFactory } from './helpers/factories.js'

// The opt-out is looked up per request only when some route may carry it; these pin the cases
// where the plugin cannot learn that from onRoute alone.

/**
 * Adds a route that starts a session, takes its cookie, and asks /health with it: the factory's
 * calls are then those of the /health request alone.
 */
async function healthWithSession (t: Test, app: FastifyInstance, factory: CountingFactory<any>): Promise<LightMyRequestResponse> {
  app.get('/', async (request) => {
    request.session.set('counter', 1)
    return 'ok'
  })
  t.teardown(() => app.close())
  const cookie = (await app.inject('/')).cookies[0]
  factory.calls = []
  return app.inject({ url: '/health', headers: { cookie: `sid=${cookie?.value as string}` } })
}

t.test('a route declared before the plugin can still opt out', async (t) => {
  const app = Fastify()
  const factory = new CountingFactory()
  app.get('/health', { config: { session: false } }, async (request) => {
    const read = { counter: request.session.get('counter') ?? null, isNew: request.session.isNew }
    try {
      request.session.set('counter', 1)
      return { read, write: 'stored' }
    } catch (error) {
      return { read, write: (error as { code: string }).code }
    }
  })
  await app.register(sessionPlugin, { factory, secret: SECRET })
  const health = await healthWithSession(t, app, factory)
  t.same(health.json(), { read: { counter: null, isNew: true }, write: 'FST_SESSION_NOT_LOADED' }, 'it reads like a visitor\'s, and a change throws')
  t.same(factory.calls, [], 'the factory was not asked')
})

t.test('an opt-out set by a later onRoute hook is honoured', async (t) => {
  const app = Fastify()
  const factory = new CountingFactory()
  await app.register(sessionPlugin, { factory, secret: SECRET })
  app.addHook('onRoute', (route) => {
    if (route.url === '/health') route.config = { ...route.config, session: false }
  })
  app.get('/health', async () => 'ok')
  const health = await healthWithSession(t, app, factory)
  t.equal(health.body, 'ok')
  t.same(factory.calls, [], 'the factory was not asked')
  t.same(health.cookies, [], 'nor a cookie sent')
})
