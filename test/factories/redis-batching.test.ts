// RedisFactory sends the commands of requests that meet in one turn of the event loop as one
// pipeline (single-node clients). Each request must still get its own answer, its own error,
// and the EVAL fallback when the server does not know the script yet.
import { once } from 'node:events'
import t from 'tap'
import { Redis } from 'ioredis'
import { RedisFactory, type RedisClientLike } from '../../src/index.js'
import { Client, buildApp, sessionIdOf } from '../helpers/app.js'
import { RECOMMENDED, RedisServer, binariesSkipReason, freePort, keysUnder, randomPrefix, removeKeys, sharedClient, sharedRedisSkipReason, type TapTest } from '../helpers/redis.js'

const skip = await sharedRedisSkipReason()
if (skip !== null) t.plan(0, skip)
else registerTests()

/** Counts the commands of each pipeline the client executes. */
function countPipelines (client: Redis): number[] {
  const sizes: number[] = []
  const pipeline = client.pipeline.bind(client)
  client.pipeline = ((...args: Parameters<Redis['pipeline']>) => {
    const batch = pipeline(...args)
    const exec = batch.exec.bind(batch)
    batch.exec = ((...execArgs: Parameters<typeof exec>) => {
      sizes.push(batch.length)
      return exec(...execArgs)
    }) as typeof batch.exec
    return batch
  }) as Redis['pipeline']
  return sizes
}

/** Clients made one after the other, client i holding a session with `who: i` (and no counter yet). */
async function returningClients (app: Awaited<ReturnType<typeof buildApp>>, count: number): Promise<Client[]> {
  const clients: Client[] = []
  for (let i = 0; i < count; i++) {
    const client = new Client(app)
    await client.post('/set', { who: i })
    clients.push(client)
  }
  return clients
}

/** A user's wrapper around a client (RedisClientLike is public): it forwards every command but those in `own`. */
function wrapperOf (real: Redis, own: Partial<RedisClientLike>): RedisClientLike {
  return {
    hgetall: (key) => real.hgetall(key),
    evalsha: (...args) => real.evalsha(...args),
    eval: (...args) => real.eval(...args),
    pipeline: () => real.pipeline(),
    ...own
  }
}

function registerTests (): void {
  let redis: Redis
  t.before(async () => {
    redis = await sharedClient()
  })
  t.teardown(() => redis?.quit())

  /**
   * An app on a Redis client of its own (whose pipelines a test counts), or on `wrap` of it, with
   * `count` returning clients.
   */
  async function returningOnOwnClient (t: TapTest, count: number, wrap?: (client: Redis) => RedisClientLike): Promise<{ prefix: string, client: Redis, clients: Client[] }> {
    const client = await sharedClient()
    t.teardown(() => client.quit())
    const prefix = randomPrefix()
    t.teardown(() => removeKeys(redis, prefix))
    const app = await buildApp({ factory: new RedisFactory({ client: wrap === undefined ? client : wrap(client), prefix }) })
    t.teardown(() => app.close())
    return { prefix, client, clients: await returningClients(app, count) }
  }

  t.test('concurrent requests share pipelines, and each one gets its own session back', async (t) => {
    const { client, clients } = await returningOnOwnClient(t, 30)
    const sizes = countPipelines(client)

    // Each client writes a value of its own: a reply handed to another command would show.
    const replies = await Promise.all(clients.map((c, i) => c.post('/set', { mine: `client ${i}` })))
    t.same(replies.map((r) => r.statusCode), clients.map(() => 200))
    t.same(replies.map((r) => r.json().data), clients.map((_, i) => ({ who: i, mine: `client ${i}` })), 'every request loaded its own record')
    t.ok(sizes.length > 0 && sizes.every((size) => size >= 2), `loads and saves went out in pipelines (${sizes.join(', ')} commands)`)
    t.ok(sizes.reduce((sum, size) => sum + size, 0) >= 30, 'at least half of the 60 commands went out batched')

    const again = await Promise.all(clients.map((c) => c.get('/read')))
    t.same(again.map((r) => r.json().data), clients.map((_, i) => ({ who: i, mine: `client ${i}` })), 'every batched save went to its own record')
  })

  t.test('an error on one command of a pipeline fails its request alone', async (t) => {
    const { prefix, client, clients } = await returningOnOwnClient(t, 6)
    // Client 2's key now holds a string: HGETALL on it answers WRONGTYPE.
    const key = prefix + sessionIdOf((clients[2] as Client).cookie as string)
    await redis.del(key)
    await redis.set(key, 'not a hash')
    const sizes = countPipelines(client)

    const replies = await Promise.all(clients.map((c) => c.get('/read')))
    t.ok(sizes.some((size) => size >= 6), 'the six loads shared a pipeline')
    t.same(replies.map((r) => r.statusCode), [200, 200, 503, 200, 200, 200], 'the 503 went to client 2, whose key is broken')
    t.equal(replies[2]?.json().code, 'FST_SESSION_STORE_UNAVAILABLE')
    t.same(replies.filter((_, i) => i !== 2).map((r) => r.json().data.who), [0, 1, 3, 4, 5], 'the others read their own sessions')
  })

  t.test('a server that does not know the script yet: every save of a pipeline falls back to EVAL', { skip: binariesSkipReason('redis-server') ?? false }, async (t) => {
    const server = await RedisServer.start(await freePort())
    t.teardown(() => server.stop())
    const client = new Redis({ port: server.port, ...RECOMMENDED })
    t.teardown(() => client.disconnect())
    await once(client, 'ready')
    const sizes = countPipelines(client)
    const app = await buildApp({ factory: new RedisFactory({ client, prefix: 'fresh:' }) })
    t.teardown(() => app.close())

    const clients = Array.from({ length: 8 }, () => new Client(app))
    const first = await Promise.all(clients.map((c) => c.get('/')))
    t.same(first.map((r) => r.statusCode), clients.map(() => 200))
    t.ok(sizes.some((size) => size >= 8), 'the eight first saves (EVALSHA, NOSCRIPT) shared a pipeline')
    t.equal((await keysUnder(client, 'fresh:')).length, 8, 'all eight sessions were stored by EVAL')
    const second = await Promise.all(clients.map((c) => c.get('/')))
    t.same(second.map((r) => r.json().visits), clients.map(() => 2))
  })

  t.test('a client wrapper that throws or answers garbage fails its requests with 503, never the process', async (t) => {
    let fault: 'none' | 'pipeline throws' | 'command throws' | 'exec answers null' | 'exec answers short' = 'none'
    const { clients } = await returningOnOwnClient(t, 3, (real) => wrapperOf(real, {
      hgetall: (key) => {
        if (fault === 'command throws') throw new Error('the wrapper threw')
        return real.hgetall(key)
      },
      pipeline: () => {
        if (fault === 'pipeline throws') throw new Error('no pipeline today')
        const batch = real.pipeline()
        if (fault === 'exec answers null') batch.exec = () => Promise.resolve(null)
        if (fault === 'exec answers short') {
          const exec = batch.exec.bind(batch)
          batch.exec = async () => ((await exec()) ?? []).slice(0, 1)
        }
        return batch
      }
    }))

    for (const each of ['pipeline throws', 'exec answers null', 'exec answers short'] as const) {
      fault = each
      const replies = await Promise.all(clients.map((c) => c.get('/read')))
      const statuses = replies.map((r) => r.statusCode)
      if (each === 'exec answers short') {
        t.same(statuses, [200, 503, 503], `${each}: the answered command stands, the two left without an answer fail`)
      } else {
        t.same(statuses, [503, 503, 503], `${each}: every request of the batch answers 503`)
      }
    }
    fault = 'command throws'
    t.equal((await (clients[0] as Client).get('/read')).statusCode, 503, 'a lone command that throws: 503')
    fault = 'none'
    const replies = await Promise.all(clients.map((c) => c.get('/read')))
    t.same(replies.map((r) => r.json().data.who), [0, 1, 2], 'the same cookies work once the client behaves')
  })

  t.test('a client whose pipeline fails as a whole: each request of it answers 503, later ones work', async (t) => {
    let broken = false
    // A wrapper whose pipeline can refuse to run.
    const { clients } = await returningOnOwnClient(t, 4, (real) => wrapperOf(real, {
      pipeline: () => {
        const batch = real.pipeline()
        if (broken) batch.exec = () => Promise.reject(new Error('the proxy dropped the batch'))
        return batch
      }
    }))

    broken = true
    const failed = await Promise.all(clients.map((c) => c.get('/')))
    t.same(failed.map((r) => r.statusCode), [503, 503, 503, 503])
    broken = false
    const replies = await Promise.all(clients.map((c) => c.get('/')))
    t.same(replies.map((r) => r.json().visits), [1, 1, 1, 1], 'the failed visits were not counted, the sessions are still there')
    t.same((await Promise.all(clients.map((c) => c.get('/read')))).map((r) => r.json().data.who), [0, 1, 2, 3])
  })
}
