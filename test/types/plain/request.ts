// `request.session` is a Session everywhere; without augmentation its data is open (any).
import Fastify from 'fastify'
import sessionPlugin, { MemoryFactory, Session } from 'fastify-session-factory'
import { expectType } from '../expect.js'

const app = Fastify()
app.register(sessionPlugin, { factory: new MemoryFactory(), secret: 'a-secret-of-at-least-thirty-two-characters' })

app.get('/', async (request, reply) => {
  expectType<Session>()(request.session)
  expectType<string | null>()(request.session.id)
  expectType<boolean>()(request.session.isNew)
  expectType<number | null>()(request.session.expiresAt)
  expectType<Promise<void>>()(request.session.save())
  request.session.set('anything', { nested: [1, 2] }).set('more', 1)
  request.session.regenerate()
  request.session.destroy()
  // @ts-expect-error no other decorator exists unless the app declares it
  expectType<Session>()(request.adminSession)
  // @ts-expect-error the session is on the request, not the reply
  expectType<Session>()(reply.session)
  return 'ok'
})

// @ts-expect-error the route option is a boolean
app.get('/health', { config: { session: 'off' } }, async () => 'ok')
app.get('/static', { config: { session: false } }, async () => 'ok')
