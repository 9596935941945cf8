// @fastify/flash on our session: it requires a `session` request decorator and uses get/set.
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyFlash from '@fastify/flash'
import sessionPlugin, { MemoryFactory } from '../src/index.js'
import { Client, SECRET } from './helpers/app.js'

async function buildFlashApp (): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(sessionPlugin, { factory: new MemoryFactory(), secret: SECRET })
  await app.register(fastifyFlash)
  app.post('/save', async (request, reply) => {
    request.flash('info', 'Saved')
    request.flash('warning', 'Check your %s', 'email')
    return reply.redirect('/')
  })
  app.get('/', async (_request, reply) => ({ info: reply.flash('info'), rest: reply.flash() }))
  // reply.flash() always writes the `flash` key: guarded, a page with nothing to show writes nothing.
  app.get('/guarded', async (request, reply) => request.session.has('flash') ? reply.flash() : {})
  return app
}

t.test('a flash message set before a redirect is shown once, on the next page', async (t) => {
  const app = await buildFlashApp()
  t.teardown(() => app.close())
  const user = new Client(app)
  const saved = await user.post('/save')
  t.equal(saved.statusCode, 302)
  t.ok(user.cookie, 'the messages wait in the session')

  t.same((await user.get('/')).json(), { info: ['Saved'], rest: { warning: ['Check your email'] } })
  t.same((await user.get('/')).json(), { info: [], rest: {} }, 'shown once')

  const other = new Client(app)
  t.same((await other.get('/')).json(), { info: [], rest: {} }, 'another visitor sees none of it')
  t.ok(other.cookie, 'unguarded, reading flash made that visitor a session (flash: {})')
})

t.test('a page that checks has(\'flash\') first leaves visitors without messages sessionless', async (t) => {
  const app = await buildFlashApp()
  t.teardown(() => app.close())
  const visitor = await app.inject({ url: '/guarded' })
  t.same(visitor.json(), {})
  t.equal(visitor.headers['set-cookie'], undefined)

  const user = new Client(app)
  await user.post('/save')
  t.same((await user.get('/guarded')).json(), { info: ['Saved'], warning: ['Check your email'] })
})

t.test('@fastify/flash must be registered after the session plugin (it declares the `session` decorator it needs)', async (t) => {
  const app = Fastify()
  app.register(fastifyFlash)
  app.register(sessionPlugin, { factory: new MemoryFactory(), secret: SECRET })
  await t.rejects(async () => { await app.ready() }, { code: 'FST_ERR_PLUGIN_NOT_PRESENT_IN_INSTANCE' })
})
