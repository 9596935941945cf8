// Issue 26 (DESIGN §3, "sign out everywhere" is airtight): a session missing from its user's
// index is filed again by its next touch, on a single Redis node (where the touch script files
// it itself) and on a 3-master Redis Cluster (where the index lives in another slot, so the
// factory files it in a second step). Through the plugin: a request past a tenth of the idle
// timeout touches the session, and app.sessions.list() sees it again.
import { once } from 'node:events'
import type { FastifyInstance } from 'fastify'
import { Cluster, type Redis } from 'ioredis'
import t from 'tap'
import { RedisFactory } from '../../src/index.js'
import { Client, buildApp, sessionIdOf } from '../helpers/app.js'
import { fakeClock } from '../helpers/clock.js'
import {
  RECOMMENDED, RedisCluster, binariesSkipReason, keysUnder, randomPrefix, removeKeys, sharedClient, sharedRedisSkipReason,
  type TapTest
} from '../helpers/redis.js'

interface Topology {
  name: string
  skip: string | null
  /** The client the factories share; started before the tests, stopped after them. */
  client: () => Redis | Cluster
}

const IDLE = 600 // seconds: a touch is due every 60 s

/** An app on the shared client under `prefix`, with `userKey: 'user'` unless `withUserKey` is false. */
async function appOn (t: TapTest, client: Redis | Cluster, prefix: string, withUserKey = true): Promise<FastifyInstance> {
  const app = await buildApp({
    factory: new RedisFactory({ client, prefix }),
    idleTimeout: IDLE,
    ...(withUserKey ? { userKey: 'user' } : {})
  })
  t.teardown(() => app.close())
  return app
}

/** Drops every key under the prefix but the session's own: its user index entry is gone, its record kept. */
async function dropIndex (client: Redis | Cluster, prefix: string, id: string): Promise<void> {
  for (const key of await keysUnder(client, prefix)) if (key !== `${prefix}${id}`) await client.del(key)
}

function registerTests (topology: Topology): void {
  t.test(`${topology.name}: a session missing from its user's index is filed again by its next touch`, { skip: topology.skip ?? false }, async (t) => {
    const client = topology.client()
    const prefix = randomPrefix()
    t.teardown(() => removeKeys(client, prefix))
    const clock = fakeClock(t)
    const app = await appOn(t, client, prefix)
    const ada = new Client(app)
    await ada.post('/login', { user: 'ada' })
    const id = sessionIdOf(ada.cookie as string)
    t.equal((await app.sessions.list('ada')).length, 1, 'filed at login')

    await dropIndex(client, prefix, id)
    t.same(await app.sessions.list('ada'), [], 'the index entry is gone')
    t.equal((await ada.get('/read')).json().data.user, 'ada', 'the session itself lives')
    t.same(await app.sessions.list('ada'), [], 'a request with no touch due files nothing')

    clock.advance(61_000)
    const touchedAt = Date.now()
    t.equal((await ada.get('/read')).json().data.user, 'ada')
    const listed = await app.sessions.list('ada')
    t.equal(listed.length, 1, 'the touch filed it again')
    t.equal(listed[0]?.lastSeenAt, touchedAt, 'with the touch\'s time')
    t.equal(listed[0]?.expiresAt, touchedAt + IDLE * 1000, 'and its new expiry')

    t.equal(await app.sessions.endAll('ada'), 1, 'so sign out everywhere reaches it')
    t.equal((await ada.get('/read')).json().data.user, undefined, 'the session is ended')
  })

  t.test(`${topology.name}: a session saved before userKey was turned on is filed by its next touch`, { skip: topology.skip ?? false }, async (t) => {
    // Since issue 22 a touch files a session that carries a user but was never filed.
    const todo = {}
    const client = topology.client()
    const prefix = randomPrefix()
    t.teardown(() => removeKeys(client, prefix))
    const clock = fakeClock(t)
    const before = await appOn(t, client, prefix, false)
    const ada = new Client(before)
    await ada.post('/set', { user: 'ada' })
    const cookie = ada.cookie as string

    const app = await appOn(t, client, prefix)
    t.same(await app.sessions.list('ada'), [], 'not filed: saved without a userKey')
    clock.advance(61_000)
    const touched = await app.inject({ url: '/read', headers: { cookie } })
    t.equal(touched.json().data.user, 'ada')
    t.equal((await app.sessions.list('ada')).length, 1, 'the touch filed it under its user', todo)
    t.equal(await app.sessions.endAll('ada'), 1, 'so sign out everywhere reaches it', todo)
  })
}

const singleSkip = await sharedRedisSkipReason()
let single: Redis | undefined
if (singleSkip === null) {
  t.before(async () => { single = await sharedClient() })
  t.teardown(() => single?.quit())
}
registerTests({ name: 'a single Redis node', skip: singleSkip, client: () => single as Redis })

const clusterSkip = binariesSkipReason('redis-server', 'redis-cli')
let servers: RedisCluster | undefined
let cluster: Cluster | undefined
if (clusterSkip === null) {
  t.before(async () => {
    servers = await RedisCluster.start()
    cluster = new Cluster(servers.nodes, {
      enableOfflineQueue: false,
      redisOptions: { maxRetriesPerRequest: RECOMMENDED.maxRetriesPerRequest }
    })
    await once(cluster, 'ready')
  })
  t.teardown(async () => {
    await cluster?.quit()
    await servers?.stop()
  })
}
registerTests({ name: 'a 3-master Redis Cluster', skip: clusterSkip, client: () => cluster as Cluster })
