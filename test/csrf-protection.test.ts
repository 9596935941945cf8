// @fastify/csrf-protection on our session, as it runs on @fastify/secure-session: it keeps its
// secret with `request.session.get/set('_csrf')`, so the secret stays server-side.
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyCsrf from '@fastify/csrf-protection'
import sessionPlugin, { MemoryFactory } from '../src/index.js'
import { Client, SECRET, sessionIdOf } from './helpers/app.js'

async function buildCsrfApp (factory = new MemoryFactory()): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(sessionPlugin, { factory, secret: SECRET })
  await app.register(fastifyCsrf, { sessionPlugin: '@fastify/secure-session' })
  app.get('/form', async (_request, reply) => ({ token: reply.generateCsrf() }))
  // preHandler, not onRequest: the token may come in the parsed body.
  app.post('/transfer', { preHandler: app.csrfProtection }, async () => ({ done: true }))
  return app
}

t.test('a token issued on the session passes; the secret is in the session, not in a cookie', async (t) => {
  const factory = new MemoryFactory()
  const app = await buildCsrfApp(factory)
  t.teardown(() => app.close())
  const user = new Client(app)
  const form = await user.get('/form')
  const { token } = form.json()
  t.type(token, 'string')
  t.same(form.cookies.map((c) => c.name), ['sid'], 'only our session cookie: no _csrf cookie')

  const id = sessionIdOf(user.cookie as string)
  t.type((await factory.load(id))?.get('_csrf'), 'string', 'the csrf secret lives in the session')

  const byHeader = await app.inject({ method: 'POST', url: '/transfer', headers: { cookie: user.cookie as string, 'x-csrf-token': token } })
  t.equal(byHeader.statusCode, 200)
  const byBody = await user.post('/transfer', { _csrf: token })
  t.equal(byBody.statusCode, 200)

  const again = (await user.get('/form')).json().token
  t.equal((await user.post('/transfer', { _csrf: again })).statusCode, 200, 'a later token uses the same secret')
})

t.test('a forged token, another session\'s token, or no session at all: 403', async (t) => {
  const app = await buildCsrfApp()
  t.teardown(() => app.close())
  const victim = new Client(app)
  const attacker = new Client(app)
  await victim.get('/form')
  const attackerToken = (await attacker.get('/form')).json().token

  const forged = await victim.post('/transfer', { _csrf: 'forged-token' })
  t.equal(forged.statusCode, 403)
  t.equal(forged.json().code, 'FST_CSRF_INVALID_TOKEN')

  const foreign = await victim.post('/transfer', { _csrf: attackerToken })
  t.equal(foreign.statusCode, 403)
  t.equal(foreign.json().code, 'FST_CSRF_INVALID_TOKEN')

  const missing = await victim.post('/transfer', {})
  t.equal(missing.statusCode, 403)

  const anonymous = await app.inject({ method: 'POST', url: '/transfer', payload: { _csrf: attackerToken } })
  t.equal(anonymous.statusCode, 403)
  t.equal(anonymous.json().code, 'FST_CSRF_MISSING_SECRET')
})

t.test('after logout (destroy) the old token no longer passes', async (t) => {
  const app = await buildCsrfApp()
  app.post('/logout', async (request) => {
    request.session.destroy()
    return { ok: true }
  })
  t.teardown(() => app.close())
  const user = new Client(app)
  const { token } = (await user.get('/form')).json()
  const cookie = user.cookie as string
  await user.post('/logout')
  const replay = await app.inject({ method: 'POST', url: '/transfer', headers: { cookie }, payload: { _csrf: token } })
  t.equal(replay.statusCode, 403)
  t.equal(replay.json().code, 'FST_CSRF_MISSING_SECRET')
})
