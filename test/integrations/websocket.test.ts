// @fastify/websocket on our session, over a real socket. The upgrade request goes through
// onRequest, so the websocket handler can read request.session. The reply is hijacked for the
// upgrade (onSend never runs), so a set() there is stored only by `await request.session.save()`,
// and no Set-Cookie can reach the client: ws writes the 101 response itself.
import { once } from 'node:events'
import type { IncomingMessage } from 'node:http'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyWebsocket from '@fastify/websocket'
import t from 'tap'
import WebSocket from 'ws'
import sessionPlugin, { MemoryFactory, type SessionFactory } from '../../src/index.js'
import { SECRET } from '../helpers/app.js'
import { CountingFactory, SeedStyleFactory } from '../helpers/factories.js'
import { send } from '../helpers/http.js'

interface Message { text: string, save: boolean }

async function buildWsApp (factory: SessionFactory<any>): Promise<{ app: FastifyInstance, port: number }> {
  const app = Fastify()
  await app.register(sessionPlugin, { factory, secret: SECRET })
  await app.register(fastifyWebsocket)
  app.post<{ Body: Record<string, unknown> }>('/set', async (request) => {
    for (const [key, value] of Object.entries(request.body)) request.session.set(key, value)
    return { ok: true }
  })
  app.get('/read', async (request) => ({ data: request.session.data }))
  app.get('/ws', { websocket: true }, (socket, request) => {
    socket.send(JSON.stringify({ user: request.session.get('user') ?? null }))
    socket.on('message', (raw) => {
      const message = JSON.parse(String(raw)) as Message
      if (message.text === 'logout') request.session.destroy()
      else request.session.set('last', message.text)
      const saving = message.save ? request.session.save() : Promise.resolve()
      saving.then(
        () => socket.send(JSON.stringify({ done: message.text })),
        (error: Error & { code?: string }) => socket.send(JSON.stringify({ error: error.code ?? error.message }))
      )
    })
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  return { app, port: (app.server.address() as { port: number }).port }
}

/** A websocket client that queues what it receives, and the 101 response it was upgraded with. */
class WsClient {
  readonly socket: WebSocket
  readonly received: unknown[] = []
  readonly #waiting: Array<(message: unknown) => void> = []
  upgrade: IncomingMessage | null = null

  constructor (port: number, cookie?: string) {
    this.socket = new WebSocket(`ws://127.0.0.1:${port}/ws`, cookie === undefined ? {} : { headers: { cookie } })
    this.socket.on('upgrade', (response) => { this.upgrade = response })
    this.socket.on('message', (raw) => {
      const message = JSON.parse(String(raw))
      const waiter = this.#waiting.shift()
      if (waiter !== undefined) waiter(message)
      else this.received.push(message)
    })
  }

  next (): Promise<unknown> {
    if (this.received.length > 0) return Promise.resolve(this.received.shift())
    return new Promise((resolve) => this.#waiting.push(resolve))
  }

  async say (text: string, save: boolean): Promise<unknown> {
    this.socket.send(JSON.stringify({ text, save }))
    return await this.next()
  }

  async close (): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return
    const closed = once(this.socket, 'close')
    this.socket.close()
    await closed
  }
}

/** A session holding { user: 'ada' }; its cookie. */
async function signIn (port: number): Promise<string> {
  const response = await send(port, false, 'POST', '/set', {}, JSON.stringify({ user: 'ada' }))
  return (response.headers['set-cookie']?.[0] ?? '').split(';')[0] as string
}

async function read (port: number, cookie: string): Promise<unknown> {
  return JSON.parse((await send(port, false, 'GET', '/read', { cookie })).body).data
}

for (const [name, make] of [['MemoryFactory', () => new MemoryFactory()], ['SeedStyleFactory', () => new SeedStyleFactory()]] as const) {
  t.test(`${name}: the websocket handler reads the session the upgrade request's cookie named`, async (t) => {
    const { app, port } = await buildWsApp(make())
    t.teardown(() => app.close())
    const cookie = await signIn(port)

    const signedIn = new WsClient(port, cookie)
    t.same(await signedIn.next(), { user: 'ada' })
    await signedIn.close()

    const anonymous = new WsClient(port)
    t.same(await anonymous.next(), { user: null }, 'without a cookie: a new, empty session')
    await anonymous.close()
  })

  t.test(`${name}: a set() in the websocket handler is stored only by await request.session.save()`, async (t) => {
    const { app, port } = await buildWsApp(make())
    t.teardown(() => app.close())
    const cookie = await signIn(port)
    const client = new WsClient(port, cookie)
    await client.next()

    t.same(await client.say('unsaved', false), { done: 'unsaved' })
    t.same(await read(port, cookie), { user: 'ada' }, 'without save() the change is lost: onSend never runs for an upgrade')

    t.same(await client.say('first', true), { done: 'first' })
    t.same(await read(port, cookie), { user: 'ada', last: 'first' }, 'save() stored it, under the same id')
    t.same(await client.say('second', true), { done: 'second' })
    t.same(await read(port, cookie), { user: 'ada', last: 'second' }, 'and each later save() stores the next change')

    t.equal(client.upgrade?.statusCode, 101)
    t.equal(client.upgrade?.headers['set-cookie'], undefined, 'the 101 response carries no Set-Cookie')

    t.same(await client.say('logout', true), { done: 'logout' })
    t.same(await read(port, cookie), {}, 'destroy() then save() removed the record: the cookie no longer opens it')
    await client.close()
  })
}

t.test('a session made in a websocket handler is saved, but its cookie never reaches the client', async (t) => {
  const factory = new CountingFactory()
  const { app, port } = await buildWsApp(factory)
  t.teardown(() => app.close())
  const client = new WsClient(port)
  await client.next()
  t.same(await client.say('hello', true), { done: 'hello' })
  t.equal(factory.count('save'), 1, 'a record was written')
  t.equal(client.upgrade?.headers['set-cookie'], undefined, 'but no cookie names it: sign in over HTTP before upgrading')
  await client.close()
})
