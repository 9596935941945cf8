// A handler may call reply.send() without returning it, after any session action, and a hook may
// redirect before a handler that still returns a value: the response, its Set-Cookie and the
// store are as if the reply had been returned, with every factory, and nothing crashes. Over a
// real socket, against a server in a child process (test/integrations/fixtures/double-send-server.ts):
// a double send there ends in an uncaught ERR_HTTP_HEADERS_SENT, which must fail this test,
// not kill the runner.
import type { IncomingHttpHeaders } from 'node:http'
import t from 'tap'
import Fastify from 'fastify'
import sessionPlugin from '../../src/index.js'
import { SECRET } from '../helpers/app.js'
import { SeedStyleFactory } from '../helpers/factories.js'
import { ChildServer } from '../helpers/child-server.js'
import type { TapTest as Tap } from '../helpers/redis.js'
import { randomPrefix, removeKeys, sharedClient, sharedRedisSkipReason } from '../helpers/redis.js'
import { sharedPool, sharedPostgresSkipReason, uniqueName } from '../helpers/postgres.js'

// One child start (a few seconds on a loaded box) and ~90 requests. A crash costs a restart per
// case, so a broken build takes longer: allow it to report every case rather than time out.
t.setTimeout(240_000)

const redisSkip = await sharedRedisSkipReason()
const prefix = randomPrefix()
const pgSkip = await sharedPostgresSkipReason()
const table = uniqueName('double_send')

// One child hosts every factory. A case that crashes it fails, and the next case starts another,
// so each case reports on its own.
let server: ChildServer | null = null
let started = 0
async function liveServer (): Promise<ChildServer> {
  if (server !== null) {
    const answers = await server.request('GET', '/health', {}, 2_000).then((response) => response.status === 200, () => false)
    if (answers && server.alive) return server
    await server.stop()
  }
  started++
  server = await ChildServer.start('test/integrations/fixtures/double-send-server.ts', { REDIS_PREFIX: redisSkip === null ? prefix : '', PG_TABLE: pgSkip === null ? table : '' })
  return server
}
t.teardown(async () => {
  await server?.stop()
  if (pgSkip === null) {
    const pool = sharedPool()
    await pool.query(`DROP TABLE IF EXISTS ${table}, ${table}_users`)
    await pool.end()
  }
  if (redisSkip !== null) return
  const client = await sharedClient()
  await removeKeys(client, prefix)
  await client.quit()
})

/** The body as JSON, or undefined when it is not JSON (an empty body, say). */
function json (body: string): unknown {
  try {
    return JSON.parse(body)
  } catch {
    return undefined
  }
}

/** The Set-Cookie lines for our cookie. */
function sidLines (headers: IncomingHttpHeaders): string[] {
  return (headers['set-cookie'] ?? []).filter((line) => line.startsWith('sid='))
}

/** The `sid=<value>` pair a response sets, if it sets one with a value. */
function cookieOf (headers: IncomingHttpHeaders): string | undefined {
  const pair = sidLines(headers)[0]?.split(';')[0]
  return pair === undefined || pair === 'sid=' ? undefined : pair
}

/** The response removes our cookie: an empty value, already expired. */
function clears (headers: IncomingHttpHeaders): boolean {
  const lines = sidLines(headers)
  return lines.length === 1 && lines[0]!.startsWith('sid=;') && /Max-Age=0/.test(lines[0]!)
}

const FACTORIES: Array<{ name: string, stateless?: boolean, skip?: string }> = [
  { name: 'memory' },
  { name: 'sealed', stateless: true },
  { name: 'json-async' },
  { name: 'sync' },
  { name: 'redis', ...(redisSkip === null ? {} : { skip: redisSkip }) },
  { name: 'postgres', ...(pgSkip === null ? {} : { skip: pgSkip }) },
  { name: 'express' }
]

for (const { name, stateless = false, skip } of FACTORIES) {
  t.test(`${name}: every handler style answers once, with the cookie and the store its session action implies`, { skip: skip ?? false }, async (t) => {
    const base = `/${name}`
    /** Runs one case on a live child, then checks that the child survived it and logged no error. */
    const each = (title: string, run: (t: Tap, server: ChildServer) => Promise<void>): void => {
      t.test(title, async (t) => {
        const server = await liveServer()
        const before = server.stderr.length
        await run(t, server)
        const health = await server.request('GET', '/health').catch((error: Error) => error)
        t.equal((health as { status?: number }).status, 200, 'the server process is still up')
        t.notMatch(server.stderr.slice(before), /ERR_HTTP_HEADERS_SENT|Error/, 'and wrote no error')
      })
    }
    const post = (server: ChildServer, path: string, cookie?: string, body?: unknown) => server.request('POST', `${base}${path}`, { cookie, body })
    const read = async (server: ChildServer, cookie: string | undefined): Promise<unknown> => {
      const response = await server.request('GET', `${base}/read`, { cookie })
      return (json(response.body) as { data?: unknown } | undefined)?.data
    }
    /** A session holding { user: 'ada' }, as a returned handler makes it; its cookie. */
    const signIn = async (server: ChildServer): Promise<string> => {
      const cookie = cookieOf((await post(server, '/set', undefined, { user: 'ada' })).headers)
      if (cookie === undefined) throw new Error('/set gave no cookie')
      return cookie
    }

    each('set() then reply.send(), no return', async (t, server) => {
      const response = await post(server, '/set-send')
      t.equal(response.status, 200)
      t.same(json(response.body), { ok: 'set' })
      t.equal(sidLines(response.headers).length, 1, 'one Set-Cookie for the session')
      const cookie = cookieOf(response.headers)
      t.ok(cookie, 'a new session cookie')
      t.same(await read(server, cookie), { cart: ['apple'] }, 'its session holds what the handler set')
    })

    each('destroy() then reply.send(), no return', async (t, server) => {
      const cookie = await signIn(server)
      const response = await post(server, '/destroy-send', cookie)
      t.equal(response.status, 200)
      t.same(json(response.body), { ok: 'destroyed' })
      t.ok(clears(response.headers), 'the cookie is cleared')
      // A sealed cookie cannot be revoked before it expires: nothing is stored to remove.
      if (!stateless) t.same(await read(server, cookie), {}, 'the old cookie no longer opens the session')
    })

    each('destroy() then reply.send() without a cookie', async (t, server) => {
      const response = await post(server, '/destroy-send')
      t.equal(response.status, 200)
      t.same(json(response.body), { ok: 'destroyed' })
      t.equal(cookieOf(response.headers), undefined, 'no session cookie is set')
      t.ok(sidLines(response.headers).length <= 1, 'at most one (clearing) Set-Cookie')
    })

    each('await regenerate(), set(), then reply.send(), no return', async (t, server) => {
      const cookie = await signIn(server)
      const response = await post(server, '/regenerate-send', cookie)
      t.equal(response.status, 200)
      t.same(json(response.body), { ok: 'regenerated' })
      t.equal(sidLines(response.headers).length, 1, 'one Set-Cookie for the session')
      const renewed = cookieOf(response.headers)
      t.ok(renewed, 'a new cookie')
      t.not(renewed, cookie, 'with a new value')
      t.same(await read(server, renewed), { role: 'admin' }, 'the new session holds what was set after regenerate(), which emptied it')
      if (!stateless) t.same(await read(server, cookie), {}, 'the old id is dead')
    })

    each('a preValidation hook sets and redirects; the handler still returns a value', async (t, server) => {
      const response = await post(server, '/hook-redirect')
      t.equal(response.status, 302)
      t.equal(response.headers.location, '/done')
      t.equal(response.body, '', 'the redirect\'s body, not the handler\'s value')
      t.equal(sidLines(response.headers).length, 1, 'one Set-Cookie for the session')
      t.same(await read(server, cookieOf(response.headers)), { via: 'hook' }, 'what the hook set is stored')
    })

    each('destroy(callback) that sends from the callback', async (t, server) => {
      const cookie = await signIn(server)
      const response = await post(server, '/destroy-cb', cookie)
      t.equal(response.status, 200)
      t.same(json(response.body), { ok: 'destroyed-cb' })
      t.ok(clears(response.headers), 'the cookie is cleared')
      if (!stateless) t.same(await read(server, cookie), {}, 'the old cookie no longer opens the session')
    })

    each('regenerate(callback) that sets and sends from the callback', async (t, server) => {
      const cookie = await signIn(server)
      const response = await post(server, '/regenerate-cb', cookie)
      t.equal(response.status, 200)
      t.same(json(response.body), { ok: 'regenerated-cb' })
      t.equal(sidLines(response.headers).length, 1, 'one Set-Cookie for the session')
      const renewed = cookieOf(response.headers)
      t.ok(renewed, 'a new cookie')
      t.not(renewed, cookie, 'with a new value')
      t.same(await read(server, renewed), { after: 'regenerate-cb' }, 'the new session holds what was set after regenerate(), which emptied it')
      if (!stateless) t.same(await read(server, cookie), {}, 'the old id is dead')
    })
  })
}

t.test('one server process served every case: none of them crashed it', async (t) => {
  t.equal(started, 1, 'the child was started once')
  t.ok(server?.alive, 'and is still running')
})

// The same handler style in this process (inject), so the hook's own handling of the second
// send is seen here too: the child above runs without coverage.
t.test('in process: reply.send() without return, with an async factory: the first response, its cookie and its record', async (t) => {
  const factory = new SeedStyleFactory()
  const app = Fastify()
  await app.register(sessionPlugin, { factory, secret: SECRET })
  app.post('/set-send', async (request, reply) => {
    request.session.set('cart', ['apple'])
    reply.send({ ok: 'set' })
  })
  t.teardown(() => app.close())
  const response = await app.inject({ method: 'POST', url: '/set-send' })
  t.equal(response.statusCode, 200)
  t.same(response.json(), { ok: 'set' }, 'the body the handler sent')
  const line = (response.headers['set-cookie'] as string | undefined) ?? ''
  t.match(line, /^sid=[^;]+\./, 'one session cookie')
  t.equal(factory.rows.size, 1, 'and its record')
})
