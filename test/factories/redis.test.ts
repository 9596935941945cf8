// RedisFactory beyond the conformance suite: its options, how it lays a session out in Redis,
// what it does with keys it did not write, TTLs through the plugin, and the logout race.
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import type { Redis } from 'ioredis'
import { RedisFactory, Session, type SessionPluginOptions } from '../../src/index.js'
import { Client, buildApp, setCookies } from '../helpers/app.js'
import { keysUnder, randomPrefix, removeKeys, sharedClient, sharedRedisSkipReason, type TapTest } from '../helpers/redis.js'

const skip = await sharedRedisSkipReason()
if (skip !== null) t.plan(0, skip)
else registerTests()

function registerTests (): void {
  let redis: Redis
  t.before(async () => {
    redis = await sharedClient()
  })
  t.teardown(() => redis?.quit())

  /** A factory on its own prefix, whose keys are removed when the test ends. */
  function factoryFor (t: TapTest, options: { ttl?: number } = {}): { factory: RedisFactory, prefix: string } {
    const prefix = randomPrefix()
    t.teardown(() => removeKeys(redis, prefix))
    return { factory: new RedisFactory({ client: redis, prefix, ...options }), prefix }
  }

  /** A new session as the plugin hands it to save(): an id and an expiry. */
  function fresh (data: Record<string, unknown>, ttlMs = 60_000): Session {
    const session = new Session(data)
    session.id = `id-${Math.random().toString(36).slice(2)}`
    session.expiresAt = Date.now() + ttlMs
    // Still new: only markSaved (the plugin, after a save) clears that.
    return session
  }

  async function onlyKey (prefix: string): Promise<string> {
    const keys = await keysUnder(redis, prefix)
    if (keys.length !== 1) throw new Error(`expected one key under the prefix, found ${keys.length}`)
    return keys[0] as string
  }

  t.test('options are checked when the factory is made', async (t) => {
    const codes = { code: 'FST_SESSION_INVALID_OPTIONS' }
    t.throws(() => new RedisFactory(undefined as any), codes, 'no options')
    t.throws(() => new RedisFactory({ client: null as any }), codes, 'no client')
    t.throws(() => new RedisFactory({ client: { hgetall () {} } as any }), codes, 'not a Redis client')
    t.throws(() => new RedisFactory({ client: redis, prefix: 1 as any }), codes, 'a prefix that is not a string')
    t.throws(() => new RedisFactory({ client: redis, ttl: 0 }), codes, 'a ttl of 0')
    t.throws(() => new RedisFactory({ client: redis, ttl: 1.5 }), codes, 'a ttl that is not an integer')
    const plain = new RedisFactory({ client: redis })
    const id = await plain.save(fresh({ user: 'ada' }))
    t.teardown(() => redis.del(`sess:${id}`))
    t.equal((await plain.load(id))?.get('user'), 'ada', 'a client alone is enough: it saves and loads')
  })

  t.test('what fails at once (data JSON cannot hold, a client that throws) rejects, never throws', async (t) => {
    const { factory } = factoryFor(t)
    let saving!: Promise<string>
    t.doesNotThrow(() => { saving = factory.save(fresh({ big: 1n })) }, 'save() of a BigInt')
    await t.rejects(saving, TypeError)
    const broken = () => { throw new Error('the client threw') }
    // A cluster: commands go straight to the client, with no batch of ours in between.
    const cluster = new RedisFactory({ client: { isCluster: true, hgetall: broken, evalsha: broken, eval: broken } })
    let loading!: Promise<unknown>
    t.doesNotThrow(() => { loading = cluster.load('any') }, 'load() on a client that throws')
    await t.rejects(loading, { message: 'the client threw' })
  })

  t.test('the default prefix is sess:', async (t) => {
    const factory = new RedisFactory({ client: redis })
    const id = await factory.save(fresh({ user: 'ada' }))
    t.teardown(() => redis.del(`sess:${id}`))
    t.same(await redis.hget(`sess:${id}`, 'd:user'), '"ada"')
  })

  t.test('one hash per session: a JSON field per key, metadata apart, a TTL from expiresAt', async (t) => {
    const { factory, prefix } = factoryFor(t)
    const session = fresh({ user: 'ada', cart: [1, 2], 'm:createdAt': 'a user key that looks like metadata' }, 30_000)
    const id = await factory.save(session)
    t.equal(id, session.id, 'a store-backed factory keeps the id it was given')
    const key = `${prefix}${id}`
    t.same(await redis.hgetall(key), {
      'm:createdAt': String(session.createdAt),
      'm:touchedAt': String(session.touchedAt),
      'm:expiresAt': String(session.expiresAt),
      'd:user': '"ada"',
      'd:cart': '[1,2]',
      'd:m:createdAt': '"a user key that looks like metadata"'
    })
    const ttl = await redis.pttl(key)
    t.ok(ttl > 20_000 && ttl <= 30_000, `PTTL ${ttl} follows expiresAt`)
    const loaded = await factory.load(id) as Session
    t.equal(loaded.createdAt, session.createdAt, 'metadata is not taken for data')
    t.equal(loaded.get('m:createdAt'), 'a user key that looks like metadata')
  })

  t.test('a new session replaces whatever was stored under its id', async (t) => {
    const { factory } = factoryFor(t)
    const old = fresh({ a: 1, b: 2 })
    const id = await factory.save(old)
    const replacement = new Session({ c: 3 })
    replacement.id = id
    replacement.expiresAt = Date.now() + 60_000
    await factory.save(replacement)
    const loaded = await factory.load(id) as Session
    t.same({ ...loaded.data }, { c: 3 }, 'no key of the old record is left')
    t.equal(loaded.createdAt, replacement.createdAt)
  })

  t.test('a save outside the plugin gets an id and the factory ttl', async (t) => {
    const { factory, prefix } = factoryFor(t, { ttl: 5 })
    const session = new Session({ user: 'ada' })
    const id = await factory.save(session)
    t.ok(id.length >= 43, 'a generated id')
    const ttl = await redis.pttl(`${prefix}${id}`)
    t.ok(ttl > 3_000 && ttl <= 5_000, `PTTL ${ttl} is the factory's ttl`)
    await factory.touch(new Session({ user: 'never saved' }))
    t.same(await keysUnder(redis, prefix), [`${prefix}${id}`], 'touch() of a session without id does nothing')
  })

  t.test('a session whose expiresAt has passed is not kept', async (t) => {
    const { factory, prefix } = factoryFor(t)
    const session = fresh({ user: 'ada' }, -1_000)
    const id = await factory.save(session)
    await sleep(20)
    t.equal(await factory.load(id), null)
    t.same(await keysUnder(redis, prefix), [])
  })

  t.test('a value set to undefined is removed, as Session treats it as absent', async (t) => {
    const { factory } = factoryFor(t)
    const id = await factory.save(fresh({ keep: 1, none: undefined }))
    const loaded = await factory.load(id) as Session
    t.same({ ...loaded.data }, { keep: 1 })
    loaded.set('keep', undefined)
    loaded.expiresAt = Date.now() + 60_000
    await factory.save(loaded)
    const again = await factory.load(id) as Session
    t.same({ ...again.data }, {})
    t.equal(again.has('keep'), false)
  })

  t.test('a session with thousands of keys is written and changed in slices', async (t) => {
    const { factory } = factoryFor(t)
    const data: Record<string, number> = {}
    for (let i = 0; i < 2_500; i++) data[`k${i}`] = i
    const id = await factory.save(fresh(data))
    const loaded = await factory.load(id) as Session
    t.equal(Object.keys(loaded.data).length, 2_500)
    for (let i = 0; i < 2_200; i++) loaded.delete(`k${i}`)
    for (let i = 0; i < 1_200; i++) loaded.set(`n${i}`, -i)
    loaded.expiresAt = Date.now() + 60_000
    await factory.save(loaded)
    const again = await factory.load(id) as Session
    const expected: Record<string, number> = {}
    for (let i = 2_200; i < 2_500; i++) expected[`k${i}`] = i
    for (let i = 0; i < 1_200; i++) expected[`n${i}`] = -i
    t.same({ ...again.data }, expected)
  })

  t.test('what another writer left under our prefix', async (t) => {
    const { factory, prefix } = factoryFor(t)
    const meta = { 'm:createdAt': String(Date.now()), 'm:touchedAt': String(Date.now()) }

    t.test('fields outside our namespaces are ignored, reserved keys dropped', async (t) => {
      await redis.hset(`${prefix}foreign`, { ...meta, 'd:user': '"ada"', other: 'not ours', 'd:__proto__': '{"polluted":true}', 'd:constructor': '1' })
      const loaded = await factory.load('foreign') as Session
      t.same({ ...loaded.data }, { user: 'ada' })
      t.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype was polluted')
    })

    t.test('a value that is not JSON rejects with FST_SESSION_CORRUPT_RECORD', async (t) => {
      await redis.hset(`${prefix}garbage`, { ...meta, 'd:user': 'ada, not JSON' })
      await t.rejects(factory.load('garbage'), { code: 'FST_SESSION_CORRUPT_RECORD' })
    })

    t.test('a hash without our metadata loads with NaN clocks, which the plugin treats as expired (fails closed)', async (t) => {
      await redis.hset(`${prefix}nometa`, { 'd:user': '"ada"' })
      const session = await factory.load('nometa') as Session
      t.ok(Number.isNaN(session.createdAt))
      t.ok(Number.isNaN(session.touchedAt))
      await redis.hset(`${prefix}badmeta`, { 'm:createdAt': 'soon', 'm:touchedAt': '1', 'd:user': '"ada"' })
      await t.rejects(async () => await factory.load('badmeta'), { code: 'FST_SESSION_CORRUPT_RECORD' }, 'a clock present but not a number is corrupt')
    })

    t.test('a key of another type rejects with Redis\'s WRONGTYPE, on load and on save', async (t) => {
      await redis.set(`${prefix}string`, 'an express-session record, say')
      await t.rejects(factory.load('string'), /WRONGTYPE/)
      const session = new Session({ user: 'ada' }, 'string')
      session.set('late', true)
      session.expiresAt = Date.now() + 60_000
      await t.rejects(factory.save(session), /WRONGTYPE/)
      t.equal(await redis.get(`${prefix}string`), 'an express-session record, say', 'left as it was')
    })
  })

  /** A new session filed under `userId`, as the plugin stamps it before a save. */
  function freshOf (userId: string, ttlMs = 60_000): Session {
    const session = fresh({ user: userId }, ttlMs)
    session.filedUnder = userId
    return session
  }

  t.test('the user index: a sorted set per user, scored by expiresAt, alive as long as its longest session', async (t) => {
    const { factory, prefix } = factoryFor(t)
    const long = freshOf('ada', 60_000)
    const short = freshOf('ada', 10_000)
    await factory.save(long)
    await factory.save(short)
    const anonymous = await factory.save(fresh({ n: 1 }))
    t.equal(await redis.hget(`${prefix}${long.id}`, 'm:userId'), '"ada"', 'the record names its user, as JSON')
    t.equal(await redis.hexists(`${prefix}${anonymous}`, 'm:userId'), 0, 'an anonymous record names none')
    const index = `${prefix}user:{ada}`
    t.same(await redis.zrange(index, 0, -1, 'WITHSCORES'), [short.id, String(short.expiresAt), long.id, String(long.expiresAt)])
    const ttl = await redis.pttl(index)
    t.ok(ttl > 50_000 && ttl <= 60_000, `PTTL ${ttl} covers the longest session, not the one saved last`)
    t.same((await keysUnder(redis, prefix)).sort(), [long.id, short.id, anonymous].map((id) => `${prefix}${id}`).concat(index).sort(), 'one index, for the one user')

    await factory.destroy(long.id as string)
    await factory.destroy(short.id as string)
    t.equal(await redis.exists(index), 0, 'destroying its sessions empties the index, and Redis drops it')
  })

  t.test('the record, not the index, says whose session it is; entries of sessions that are gone are pruned', async (t) => {
    const { factory, prefix } = factoryFor(t)
    const kept = freshOf('ada')
    const evicted = freshOf('ada')
    await factory.save(kept)
    await factory.save(evicted)
    // A stray entry, as two saves racing on a cluster can leave: bob's index naming ada's session.
    await redis.zadd(`${prefix}user:{bob}`, Date.now() + 60_000, kept.id as string)
    t.same(await factory.sessionsOf('bob'), [], 'ada\'s session is not listed under bob')
    // A session key removed behind the factory's back (maxmemory eviction, say).
    await redis.del(`${prefix}${evicted.id}`)
    t.same((await factory.sessionsOf('ada')).map((entry) => entry.id), [kept.id])
    t.same(await redis.zrange(`${prefix}user:{ada}`, 0, -1), [kept.id], 'the entry of the evicted session was pruned')
  })

  t.test('odd user ids each get an index of their own', async (t) => {
    const { factory } = factoryFor(t)
    // Lone surrogates turn into U+FFFD on their way to Redis: kept apart only by their escapes.
    const users = ['ada', '"ada"', 'a}b{c', '', 'x\ud800', 'x\udc00', 'ünï 🍪', 'a\\u0041']
    const ids: string[] = []
    for (const user of users) ids.push(await factory.save(freshOf(user)))
    for (let i = 0; i < users.length; i++) {
      t.same((await factory.sessionsOf(users[i] as string)).map((entry) => entry.id), [ids[i]], `user #${i} lists its own session alone`)
    }
  })

  t.test('a touch keeps the session under the user its record names, with the new expiry', async (t) => {
    const { factory, prefix } = factoryFor(t)
    const session = freshOf('ada', 10_000)
    const id = await factory.save(session)
    let expiresAt = Date.now() + 90_000
    // Stamped with no user, or with another (a request that loaded before the user changed).
    for (const stamped of [null, 'bob']) {
      const loaded = await factory.load(id) as Session
      loaded.touchedAt = Date.now()
      loaded.expiresAt = ++expiresAt
      loaded.filedUnder = stamped
      await factory.touch(loaded)
      t.same(await factory.sessionsOf('ada'), [{ id, createdAt: session.createdAt, touchedAt: loaded.touchedAt, expiresAt }], `stamped ${String(stamped)}: still ada's`)
      t.equal(await redis.zscore(`${prefix}user:{ada}`, id), String(expiresAt), 'the index entry moved with the expiry')
      t.same(await factory.sessionsOf('bob'), [])
    }
  })

  t.test('through the plugin, a record it cannot read is a 503, never a crash', async (t) => {
    const { factory, prefix } = factoryFor(t)
    const app = await buildApp({ factory })
    t.teardown(() => app.close())
    const client = new Client(app)
    await client.post('/set', { user: 'ada' })
    const key = await onlyKey(prefix)
    await redis.hset(key, 'd:user', '{broken')
    const cookie = client.cookie

    const reply = await client.get('/read')
    t.equal(reply.statusCode, 503)
    t.equal(reply.json().code, 'FST_SESSION_STORE_UNAVAILABLE')
    t.same(setCookies(reply), [], 'the cookie is left as it was')
    t.equal(client.cookie, cookie)

    await redis.del(key)
    await redis.set(key, 'not a hash')
    const wrongType = await client.get('/read')
    t.equal(wrongType.statusCode, 503)
    t.equal(wrongType.json().code, 'FST_SESSION_STORE_UNAVAILABLE')
  })

  async function redisApp (t: TapTest, options: Partial<SessionPluginOptions> = {}): Promise<{ client: Client, prefix: string }> {
    const { factory, prefix } = factoryFor(t)
    const app = await buildApp({ factory, ...options })
    t.teardown(() => app.close())
    return { client: new Client(app), prefix }
  }

  t.test('PTTL follows the idle timeout, and a touch extends it', async (t) => {
    const { client, prefix } = await redisApp(t, { idleTimeout: 3, absoluteTimeout: 600 })
    await client.post('/set', { user: 'ada' })
    const key = await onlyKey(prefix)
    const first = await redis.pttl(key)
    t.ok(first > 2_000 && first <= 3_000, `PTTL ${first} is the idle timeout`)
    const touchedAt = await redis.hget(key, 'm:touchedAt')

    await sleep(1_000) // past a tenth of the idle timeout: the next read touches
    const before = await redis.pttl(key)
    const reply = await client.get('/read')
    t.same(reply.json().data, { user: 'ada' })
    const after = await redis.pttl(key)
    t.ok(after > before, `the touch extended PTTL from ${before} to ${after}`)
    t.ok(after > 2_000, `PTTL ${after} is back near the idle timeout`)
    t.not(await redis.hget(key, 'm:touchedAt'), touchedAt, 'touchedAt moved')
    t.same(setCookies(reply), [], 'a touch sends no cookie for a browser-session cookie')
  })

  t.test('PTTL follows the absolute timeout when that comes first', async (t) => {
    // idleTimeout may not exceed absoluteTimeout: the absolute one comes first once the session has aged.
    const { client, prefix } = await redisApp(t, { idleTimeout: 3, absoluteTimeout: 3 })
    await client.post('/set', { user: 'ada' })
    await sleep(1_100)
    await client.post('/set', { user: 'grace' })
    const ttl = await redis.pttl(await onlyKey(prefix))
    t.ok(ttl > 0 && ttl <= 2_000, `PTTL ${ttl} is what is left of the absolute timeout, not a new idle timeout`)
  })

  t.test('once Redis expires the key, the cookie gets a fresh session', async (t) => {
    const { client, prefix } = await redisApp(t, { idleTimeout: 1 })
    await client.post('/set', { user: 'ada' })
    const key = await onlyKey(prefix)
    await sleep(1_300)
    t.equal(await redis.exists(key), 0, 'Redis expired the key')
    const reply = await client.get('/read')
    t.equal(reply.statusCode, 200)
    t.same(reply.json().data, {}, 'nothing of the old session')
    t.equal(client.cookie, undefined, 'the stale cookie was cleared')
  })

  t.test('logout race: a request that loaded before a logout does not bring the session back', async (t) => {
    const { factory, prefix } = factoryFor(t)
    const app = await buildApp({ factory })
    t.teardown(() => app.close())
    let entered!: () => void
    const inHandler = new Promise<void>((resolve) => { entered = resolve })
    let release!: () => void
    const gate = new Promise<void>((resolve) => { release = resolve })
    app.post('/slow', async (request) => {
      entered()
      await gate
      request.session.set('late', true)
      return { ok: true }
    })
    await app.ready()
    const client = new Client(app)
    await client.post('/set', { user: 'ada' })
    const cookie = client.cookie as string

    const slow = app.inject({ method: 'POST', url: '/slow', headers: { cookie } })
    await inHandler // request A has loaded the session
    const logout = await client.post('/logout') // request B destroys it
    t.equal(logout.statusCode, 200)
    t.same(await keysUnder(redis, prefix), [], 'logout removed the key')
    release()
    t.equal((await slow).statusCode, 200, 'A\'s save succeeds')
    t.same(await keysUnder(redis, prefix), [], 'A\'s save did not recreate the key')

    const after = await app.inject({ method: 'GET', url: '/read', headers: { cookie } })
    t.same(after.json().data, {}, 'the old cookie opens nothing')
  })
}
