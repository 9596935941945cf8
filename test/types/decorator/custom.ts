// A second session under a custom decorator name: the app declares its type on FastifyRequest.
import Fastify from 'fastify'
import sessionPlugin, { MemoryFactory, Session } from 'fastify-session-factory'
import { expectType } from '../expect.js'

interface AdminData {
  adminId: string
  role: 'owner' | 'staff'
}

declare module 'fastify' {
  interface FastifyRequest {
    adminSession: Session<AdminData>
  }
}

const app = Fastify()
const secret = 'a-secret-of-at-least-thirty-two-characters'
app.register(sessionPlugin, { factory: new MemoryFactory(), secret })
app.register(sessionPlugin, { factory: new MemoryFactory<AdminData>(), secret, decorator: 'adminSession', cookie: { name: 'admin', path: '/admin' } })

app.get('/admin', async (request) => {
  expectType<'owner' | 'staff' | undefined>()(request.adminSession.get('role'))
  // @ts-expect-error not a role
  request.adminSession.set('role', 'guest')
  expectType<Session>()(request.session)
  return 'ok'
})
