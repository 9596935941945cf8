// RedisFactory sends the commands of requests that meet in one turn of the event loop as one
// pipeline (single-node clients). Each request must still get its own answer, its own error,
// and the EVAL fallback when the server does not know the script yet.
import { once } from 'node:events'
import t from 'tap'
import { Redis } from 'ioredis'
import { RedisFactory, type RedisClientLike } from '../../src/index.js'
import { Client, buildApp } from '../helpers/app.js'
import { RECOMMENDED, RedisServer, binariesSkipReason, freePort, randomPrefix, removeKeys, sharedClient, sharedRedisSkipReason, type TapTest } from '../helpers/redis.js'

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

/** Clients that each hold a session with counter 1, made one after the other. */
async function returningClients (app: Awaited<ReturnType<typeof buildApp>>, count: number): Promise<Client[]> {
  const clients: Client[] = []
  for (let i = 0; i < count; i++) {
    const client = new Client(app)
    await client.get('/')
    clients.push(client)
  }
  return clients
}

function registerTests (): void {
  let redis: Redis
  t.before(async () => {
    redis = await sharedClient()
  })
  t.teardown(() => redis?.quit())

  /** An app on a Redis client of its own (whose pipelines a test counts) with `count` returning clients. */
  async function returningOnOwnClient (t: TapTest, count: number): Promise<{ prefix: string, client: Redis, clients: Client[] }> {
    const client = await sharedClient()
    t.teardown(() => client.quit())
    const prefix = randomPrefix()
    t.teardown(() => removeKeys(redis, prefix))
    const app = await buildApp({ factory: new RedisFactory({ client, prefix }) })
    t.teardown(() => app.close())
    return { prefix, client, clients: await returningClients(app, count) }
  }

  t.test('concurrent requests share pipelines, and each one gets its own session back', async (t) => {
    const { client, clients } = await returningOnOwnClient(t, 30)
    const sizes = countPipelines(client)

    const replies = await Promise.all(clients.map((c) => c.get('/')))
    t.same(replies.map((r) => r.statusCode), clients.map(() => 200))
    t.same(replies.map((r) => r.json().visits), clients.map(() => 2), 'every session counted from its own record')
    t.ok(sizes.length > 0 && sizes.every((size) => size >= 2), `loads and saves went out in pipelines (${sizes.join(', ')} commands)`)
    t.ok(sizes.reduce((sum, size) => sum + size, 0) >= 30, 'at least half of the 60 commands went out batched')

    const again = await Promise.all(clients.map((c) => c.get('/')))
    t.same(again.map((r) => r.json().visits), clients.map(() => 3), 'the batched saves were stored')
  })

  t.test('an error on one command of a pipeline fails its request alone', async (t) => {
    const { prefix, client, clients } = await returningOnOwnClient(t, 6)
    // One session's key now holds a string: HGETALL on it answers WRONGTYPE.
    const [key] = await redis.keys(`${prefix}*`)
    await redis.del(key as string)
    await redis.set(key as string, 'not a hash')
    const sizes = countPipelines(client)

    const replies = await Promise.all(clients.map((c) => c.get('/')))
    t.ok(sizes.some((size) => size >= 6), 'the six loads shared a pipeline')
    const statuses = replies.map((r) => r.statusCode).sort()
    t.same(statuses, [200, 200, 200, 200, 200, 503], 'one 503, five answers')
    const failed = replies.find((r) => r.statusCode === 503)
    t.equal(failed?.json().code, 'FST_SESSION_STORE_UNAVAILABLE')
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
    t.equal((await client.keys('fresh:*')).length, 8, 'all eight sessions were stored by EVAL')
    const second = await Promise.all(clients.map((c) => c.get('/')))
    t.same(second.map((r) => r.json().visits), clients.map(() => 2))
  })

  t.test('a client whose pipeline fails as a whole: each request of it answers 503, later ones work', async (t) => {
    const real = await sharedClient()
    t.teardown(() => real.quit())
    const prefix = randomPrefix()
    t.teardown(() => removeKeys(redis, prefix))
    let broken = false
    // A user's client wrapper (RedisClientLike is public) whose pipeline can refuse to run.
    const client: RedisClientLike = {
      hgetall: (key) => real.hgetall(key),
      del: (key) => real.del(key),
      evalsha: (...args) => real.evalsha(...args),
      eval: (...args) => real.eval(...args),
      pipeline: () => {
        const batch = real.pipeline()
        if (broken) batch.exec = () => Promise.reject(new Error('the proxy dropped the batch'))
        return batch
      }
    }
    const app = await buildApp({ factory: new RedisFactory({ client, prefix }) })
    t.teardown(() => app.close())
    const clients = await returningClients(app, 4)

    broken = true
    const failed = await Promise.all(clients.map((c) => c.get('/')))
    t.same(failed.map((r) => r.statusCode), [503, 503, 503, 503])
    broken = false
    const replies = await Promise.all(clients.map((c) => c.get('/')))
    t.same(replies.map((r) => r.json().visits), [2, 2, 2, 2], 'nothing was lost, nothing was counted twice')
  })
}
