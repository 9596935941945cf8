// socket.io next to Fastify, sharing its sessions: the handshake's Cookie header gives the
// session of the page that opened the socket. Run: npx tsx examples/socketio.ts
import { randomBytes } from 'node:crypto'
import { pathToFileURL } from 'node:url'
import Fastify, { type FastifyInstance } from 'fastify'
import { Server, type Socket } from 'socket.io'
import sessionPlugin, { MemoryFactory } from '../src/index.js'

declare module 'socket.io' {
  interface SocketData {
    name: string
  }
}

export async function buildSocketApp (secret: string): Promise<{ app: FastifyInstance, io: Server }> {
  const app = Fastify()
  // userKey: the session's user, so that app.sessions.endAll(name) signs them out everywhere.
  await app.register(sessionPlugin, { factory: new MemoryFactory(), secret, userKey: 'name' })
  app.post<{ Body: { name: string } }>('/login', async (request) => {
    await request.session.regenerate()
    request.session.set('name', request.body.name)
    return { ok: true }
  })
  app.get('/me', async (request) => ({ name: request.session.get('name') ?? null, messages: request.session.get('messages', 0) }))
  app.post<{ Body: { name: string } }>('/sign-out-everywhere', async (request) => ({ ended: await app.sessions.endAll(request.body.name) }))

  const io = new Server(app.server)
  // Every connection carries the session of its handshake, or is refused.
  io.use((socket, next) => {
    app.sessions.load(socket.request).then((session) => {
      const name = session?.get('name')
      if (typeof name !== 'string') return next(new Error('sign in first'))
      socket.data.name = name
      next()
    }, next)
  })
  io.on('connection', (socket: Socket) => {
    socket.emit('hello', socket.data.name)
    socket.on('message', (text: string, ack: (count: number) => void) => {
      onMessage(socket, text, ack).catch(() => {
        // Signed out (ended by sign out everywhere, a logout, its timeouts) or the store failing: the socket goes.
        socket.disconnect(true)
      })
    })
  })

  /** Each event reads the session again: other requests may have changed it, or ended it. */
  async function onMessage (socket: Socket, text: string, ack: (count: number) => void): Promise<void> {
    const session = await app.sessions.load(socket.request)
    if (session === null || session.get('name') !== socket.data.name) throw new Error('signed out')
    // Outside a route nothing saves for you: set(), then save(), which rejects (FST_SESSION_GONE)
    // when the session was ended meanwhile.
    const count = session.get('messages', 0) + 1
    session.set('messages', count)
    await session.save()
    socket.broadcast.emit('message', `${socket.data.name}: ${text}`)
    ack(count)
  }
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
