// Load without crossing: 2,000 clients over real sockets, 100 at a time, each logging in as its
// own user (regenerate, set user and a token of its own) and reading /me five times, pipelined on
// its connection. Every answer must be its own: zero crossed sessions.
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import t from 'tap'
import sessionPlugin from '../src/index.js'
import { SECRET } from './helpers/app.js'
import { statefulFactories, useFactory } from './helpers/factories-under-test.js'
import { KeepAliveConnection, type HttpResponse } from './helpers/http.js'
import { cookieValueIn } from './helpers/log-trap.js'

const CLIENTS = 2_000
/** Clients at a time, one keep-alive connection each (up to five pipelined reads in flight on each). */
const IN_FLIGHT = 100
const READS = 5

interface Client {
  user: string
  token: string
  cookie: string | undefined
  ids: string[]
}

// Store-backed factories only: a sealed cookie carries its own session, so there is no shared
// store in which two clients could meet (and 12,000 requests per factory cost real time here).
for (const under of statefulFactories) {
  t.test(`${under.name}: ${CLIENTS} concurrent clients each see only their own session`, { skip: under.skip ?? false }, async (t) => {
    const { factory, dispose } = await useFactory(under)
    const app = Fastify()
    await app.register(sessionPlugin, { factory, secret: SECRET })
    app.post<{ Body: { user: string, token: string } }>('/login', async (request) => {
      request.session.regenerate()
      request.session.set('user', request.body.user)
      request.session.set('token', request.body.token)
      return { ok: true }
    })
    app.get('/me', async (request) => ({ user: request.session.get('user') ?? null, token: request.session.get('token') ?? null }))
    await app.listen({ host: '127.0.0.1', port: 0 })
    const port = (app.server.address() as { port: number }).port
    // One keep-alive connection per request in flight, each serving clients one after another.
    const connections = Array.from({ length: IN_FLIGHT }, () => new KeepAliveConnection(port))
    t.teardown(async () => {
      for (const connection of connections) connection.close()
      await app.close()
      await dispose()
    })

    const clients: Client[] = Array.from({ length: CLIENTS }, (_, i) => ({
      user: `user-${i}`,
      token: randomBytes(12).toString('base64url'),
      cookie: undefined,
      ids: []
    }))
    const problems: string[] = []
    let requests = 0

    const call = async (connection: KeepAliveConnection, client: Client, method: string, path: string, body?: object): Promise<HttpResponse> => {
      const headers: Record<string, string> = client.cookie === undefined ? {} : { cookie: client.cookie }
      const response = await connection.request(method, path, headers, body === undefined ? '' : JSON.stringify(body))
      requests++
      if (response.status !== 200) problems.push(`${client.user} ${method} ${path}: status ${response.status}`)
      const value = cookieValueIn(response.headers['set-cookie'])
      if (value !== undefined && value !== '') {
        client.cookie = `sid=${encodeURIComponent(value)}`
        client.ids.push(value.slice(0, value.lastIndexOf('.')))
      }
      return response
    }

    const started = performance.now()
    let next = 0
    await Promise.all(connections.map(async (connection) => {
      while (next < clients.length) await visit(connection, clients[next++] as Client)
    }))
    async function visit (connection: KeepAliveConnection, client: Client): Promise<void> {
      await call(connection, client, 'POST', '/login', { user: client.user, token: client.token })
      const reads = await Promise.all(Array.from({ length: READS }, () => call(connection, client, 'GET', '/me')))
      for (const read of reads) {
        const me = JSON.parse(read.body) as { user: string | null, token: string | null }
        if (me.user !== client.user || me.token !== client.token) {
          problems.push(`${client.user} read ${JSON.stringify(me.user)} with ${me.token === client.token ? 'its own' : 'another'} token`)
        }
      }
    }
    const seconds = (performance.now() - started) / 1000

    t.same(problems.slice(0, 10), [], `zero crossed sessions or failed requests (${problems.length} problems)`)
    t.equal(requests, CLIENTS * (1 + READS), 'every request was made')
    t.ok(clients.every((c) => c.ids.length === 1), 'each client got its id at login and kept it for its reads')
    t.equal(new Set(clients.map((c) => c.ids[0])).size, CLIENTS, 'no id was ever given to two clients')
    if (typeof (factory as { size?: unknown }).size === 'number') {
      t.equal((factory as unknown as { size: number }).size, CLIENTS, 'one session per client in the store')
    }
    t.comment(`${requests} requests in ${seconds.toFixed(1)} s (${(requests / seconds).toFixed(0)} req/s, ${IN_FLIGHT} clients at a time)`)
  })
}
