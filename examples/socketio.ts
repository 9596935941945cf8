// socket.io next to Fastify, sharing its sessions: the handshake's Cookie header gives the
// session of the page that opened the socket. Run: npx tsx examples/socketio.ts
import { randomBytes } from 'node:crypto'
import { pathToFileURL } from 'node:url'
import Fastify, { type FastifyInstance } from 'fastify'
import { Server, type Socket } from 'socket.io'
import sessionPlugin, { MemoryFactory, type Session } from '../src/index.js'

declare module 'socket.io' {
  interface SocketData {
    session: Session
  }
}

export async function buildSocketApp (secret: string): Promise<{ app: FastifyInstance, io: Server }> {
  const app = Fastify()
  await app.register(sessionPlugin, { factory: new MemoryFactory(), secret })
  app.post<{ Body: { name: string } }>('/login', async (request) => {
    await request.session.regenerate()
    request.session.set('name', request.body.name)
    return { ok: true }
  })
  app.get('/me', async (request) => ({ name: request.session.get('name') ?? null, messages: request.session.get('messages', 0) }))

  const io = new Server(app.server)
  // Every connection carries the session of its handshake, or is refused.
  io.use((socket, next) => {
    app.sessions.load(socket.request).then((session) => {
      if (session === null || session.get('name') === undefined) return next(new Error('sign in first'))
      socket.data.session = session
      next()
    }, next)
  })
  io.on('connection', (socket: Socket) => {
    socket.emit('hello', socket.data.session.get('name'))
    socket.on('message', async (text: string, ack: (count: number) => void) => {
      // Outside a route nothing saves for you: set(), then save().
      const session = socket.data.session
      const count = session.get('messages', 0) + 1
      session.set('messages', count)
      await session.save()
      socket.broadcast.emit('message', `${String(session.get('name'))}: ${text}`)
      ack(count)
    })
  })
  app.addHook('onClose', async () => { await io.close() })
  return { app, io }
}

async function main (): Promise<void> {
  const { app } = await buildSocketApp(process.env.SESSION_SECRET ?? randomBytes(32).toString('base64url'))
  await app.listen({ port: 3000, host: '127.0.0.1' })
  console.log('POST /login {"name":"ada"}, then connect a socket.io client with that cookie')
}

/* c8 ignore next */
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main()
