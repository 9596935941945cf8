// "Sign out everywhere" across app instances: two Fastify instances share one store (Redis,
// then PostgreSQL), a user signs in on each, and either instance lists and ends the user's
// sessions, including one a request on the other instance holds in flight. Each step prints
// one line (t.comment) saying what happened.
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import type { Redis } from 'ioredis'
import type pg from 'pg'
import t from 'tap'
import { PostgresFactory, RedisFactory, type SessionFactory } from '../src/index.js'
import { Client, buildApp, sessionIdOf } from './helpers/app.js'
import { sharedPool, sharedPostgresSkipReason, uniqueName } from './helpers/postgres.js'
import { cleaningClient, keysUnder, randomPrefix, sharedClient, sharedRedisSkipReason, type TapTest } from './helpers/redis.js'

/** What the scenario needs of a store, read straight from it (never through the factory). */
interface Store {
  name: string
  /** The factory of one app instance: each has its own client or pool, as separate processes would. */
  factory (): Promise<SessionFactory<any>>
  /** The user the stored record is filed under (null: none), or undefined when there is no record. */
  record (id: string): Promise<{ user: string | null } | undefined>
  /** How many entries the store files under this user, live or not (what a stale index would show). */
  filedUnder (user: string): Promise<number>
}

/** A promise a route awaits, and the test resolves: a request held in its handler. */
class Hold {
  entered!: () => void
  release!: () => void
  readonly inHandler = new Promise<void>((resolve) => { this.entered = resolve })
  readonly released = new Promise<void>((resolve) => { this.release = resolve })
}

/** One app instance on the shared store, with `userKey: 'user'` and the routes the scenario uses. */
async function instance (t: TapTest, store: Store, hold: Hold): Promise<FastifyInstance> {
  const app = await buildApp({ factory: await store.factory(), userKey: 'user' })
  app.get('/me', async (request) => ({ user: request.session.get('user') ?? null, fresh: request.session.isNew }))
  app.post('/slow', async (request) => {
    hold.entered()
    await hold.released
    request.session.set('x', 1)
    return { ok: true }
  })
  app.post('/sign-out-others', async (request) => ({ ended: await app.sessions.endAll(request.session.get('user') as string, { except: request }) }))
  t.teardown(() => app.close())
  await app.ready()
  return app
}

async function signIn (app: FastifyInstance, user: string): Promise<Client> {
  const client = new Client(app)
  const reply = await client.post('/login', { user })
  if (reply.statusCode !== 200 || client.cookie === undefined) throw new Error(`login of ${user} failed: ${reply.statusCode}`)
  return client
}

/** GET /me on `app` with this cookie (the client's jar is left alone). */
async function me (app: FastifyInstance, cookie: string): Promise<{ user: string | null, fresh: boolean }> {
  const reply: LightMyRequestResponse = await app.inject({ method: 'GET', url: '/me', headers: { cookie } })
  return reply.json()
}

/** Runs the scenario; answers the ids of the sessions it leaves alive (bob's, and the laptop's last one). */
async function scenario (t: TapTest, store: Store): Promise<string[]> {
  const hold = new Hold()
  const a = await instance(t, store, hold)
  const b = await instance(t, store, hold)
  const say = (line: string): void => { t.comment(`${store.name}: ${line}`) }

  // 1. Signed in on both instances, and another user beside them.
  const laptop = await signIn(a, 'ada')
  const phone = await signIn(b, 'ada')
  const bob = await signIn(b, 'bob')
  const ids = [laptop, phone].map((client) => sessionIdOf(client.cookie as string))
  t.same([await store.record(ids[0] as string), await store.record(ids[1] as string)], [{ user: 'ada' }, { user: 'ada' }])
  say('ada signed in on instance A (laptop) and on instance B (phone); bob signed in on B')

  // 2. Either instance lists both sessions, by handle.
  const onA = await a.sessions.list('ada')
  const onB = await b.sessions.list('ada')
  t.equal(onA.length, 2, 'A lists both of ada\'s sessions')
  t.same(onB, onA, 'B lists the same sessions, with the same handles')
  t.ok(onA.every((entry) => /^[A-Za-z0-9_-]{22}$/.test(entry.handle)), 'each entry has a handle')
  const listing = JSON.stringify([onA, onB])
  t.notOk(ids.some((id) => listing.includes(id)), 'no session id in either listing')
  say(`A lists ${onA.length} sessions of ada, B the same ${onB.length} handles; neither listing holds a session id`)

  // 3. A request on A loads the laptop's session and waits in its handler.
  const late = a.inject({ method: 'POST', url: '/slow', headers: { cookie: laptop.cookie as string } })
  await hold.inHandler
  say('a request on A has loaded the laptop\'s session and waits in its handler')

  // 4. B ends every session of ada.
  const ended = await b.sessions.endAll('ada')
  t.equal(ended, 2)
  say(`B: sessions.endAll('ada') ended ${ended}`)

  // 5. The old cookies open nothing, on either instance.
  const seen: string[] = []
  for (const [device, client] of [['laptop', laptop], ['phone', phone]] as const) {
    for (const [name, app] of [['A', a], ['B', b]] as const) {
      const answer = await me(app, client.cookie as string)
      t.same(answer, { user: null, fresh: true }, `the ${device}'s old cookie on ${name}: a fresh anonymous session`)
      seen.push(`${device} cookie on ${name}: ${answer.user === null && answer.fresh ? 'anonymous' : 'STILL SIGNED IN'}`)
    }
  }
  t.same([await store.record(ids[0] as string), await store.record(ids[1] as string)], [undefined, undefined], 'both records are gone')
  say(`old cookies: ${seen.join('; ')}`)

  // 6. bob is untouched.
  const bobOn = [await me(a, bob.cookie as string), await me(b, bob.cookie as string)]
  t.same(bobOn, [{ user: 'bob', fresh: false }, { user: 'bob', fresh: false }])
  const bobListed = (await a.sessions.list('bob')).length
  t.equal(bobListed, 1)
  say(`bob's cookie: on A user=${String(bobOn[0]?.user)}, on B user=${String(bobOn[1]?.user)}; A lists ${bobListed} session of bob`)

  // 7. The request held since before endAll sets a key and saves: the session stays gone.
  hold.release()
  const lateReply = await late
  t.equal(lateReply.statusCode, 200)
  const lateRecord = await store.record(ids[0] as string)
  t.equal(lateRecord, undefined, 'its save did not recreate the record')
  const after = await me(a, laptop.cookie as string)
  t.same(after, { user: null, fresh: true }, 'the laptop\'s cookie is still anonymous')
  const adaListed = (await b.sessions.list('ada')).length
  t.equal(adaListed, 0)
  const adaFiled = await store.filedUnder('ada')
  t.equal(adaFiled, 0, 'nothing is filed under ada any more')
  say(`the request held on A since before endAll set x=1 and answered ${lateReply.statusCode}; then: record ${lateRecord === undefined ? 'absent' : 'PRESENT'}, ${adaFiled} entries filed under ada, ${adaListed} listed, the laptop cookie ${after.user === null && after.fresh ? 'anonymous' : 'STILL SIGNED IN'}`)

  // 8. "Sign out my other devices" from the laptop, signed in again on A.
  const laptop2 = await signIn(a, 'ada')
  const phone2 = await signIn(b, 'ada')
  const { ended: othersEnded } = (await laptop2.post('/sign-out-others')).json() as { ended: number }
  t.equal(othersEnded, 1)
  const phoneNow = await me(b, phone2.cookie as string)
  t.same(phoneNow, { user: null, fresh: true }, 'the phone is signed out')
  const laptopNow = await me(b, laptop2.cookie as string)
  t.same(laptopNow, { user: 'ada', fresh: false }, 'the laptop, which asked, stays signed in (on B too)')
  const left = await a.sessions.list('ada')
  t.equal(left.length, 1)
  say(`both signed in again; "sign out my other devices" from the laptop on A ended ${othersEnded}; the phone's cookie on B: user=${String(phoneNow.user)}; the laptop's cookie on B: user=${String(laptopNow.user)}; ${left.length} session of ada listed`)

  // 9. The index follows the user key through the plugin: set, changed, deleted.
  const id = sessionIdOf(laptop2.cookie as string)
  const steps: string[] = []
  const look = async (what: string, user: string | null, listedUnder: string[]): Promise<void> => {
    const record = await store.record(id)
    t.same(record, { user }, `${what}: the record is filed under ${String(user)}`)
    const listed: string[] = []
    for (const name of ['ada', 'eve']) {
      if ((await b.sessions.list(name)).length > 0) listed.push(name)
    }
    t.same(listed, listedUnder, `${what}: listed under ${listedUnder.join(', ') || 'no one'}`)
    steps.push(`${what} → filed under ${String(record?.user)}, listed under ${listed.join(', ') || 'no one'}`)
  }
  await look('signed in as ada', 'ada', ['ada'])
  await laptop2.post('/set', { user: 'eve' })
  await look('user key changed to eve', 'eve', ['eve'])
  await laptop2.post('/delete', ['user'])
  await look('user key deleted', null, [])
  t.equal(await store.filedUnder('eve'), 0)
  const alive = await me(a, laptop2.cookie as string)
  t.same(alive, { user: null, fresh: false }, 'the session itself lives on, anonymous')
  say(`the index follows userKey: ${steps.join('; ')}; the session lives on (${alive.fresh ? 'NEW' : 'same session'})`)
  return [sessionIdOf(bob.cookie as string), id]
}

t.test('Redis: two instances, one Redis', { skip: await sharedRedisSkipReason() ?? false }, async (t) => {
  const prefix = randomPrefix()
  const redis = await cleaningClient(t, prefix)
  const clients: Redis[] = []
  t.teardown(() => Promise.all(clients.map((client) => client.quit())))
  const kept = await scenario(t, {
    name: 'redis',
    async factory () {
      const client = await sharedClient()
      clients.push(client)
      return new RedisFactory({ client, prefix })
    },
    async record (id) {
      if (await redis.exists(prefix + id) === 0) return undefined
      const user = await redis.hget(prefix + id, 'm:userId')
      return { user: user === null ? null : JSON.parse(user) }
    },
    filedUnder: (user) => redis.zcard(`${prefix}user:{${user}}`)
  })
  // ada's generation stays: a request that loaded one of her sessions before endAll cannot rotate it back in.
  const expected = [...kept.map((id) => prefix + id), `${prefix}user:{bob}`, `${prefix}user:{ada}:generation`]
  t.same((await keysUnder(redis, prefix)).sort(), expected.sort(), 'left in Redis: the two live sessions, bob\'s index and ada\'s generation, none of ada\'s sessions')
})

t.test('PostgreSQL: two instances, one table', { skip: await sharedPostgresSkipReason() ?? false }, async (t) => {
  const table = uniqueName('signout')
  const admin = sharedPool()
  t.teardown(async () => {
    await admin.query(`DROP TABLE IF EXISTS "${table}", "${table}_users"`)
    await admin.end()
  })
  const pools: pg.Pool[] = []
  t.teardown(() => Promise.all(pools.map((pool) => pool.end())))
  const kept = await scenario(t, {
    name: 'postgres',
    async factory () {
      const pool = sharedPool()
      pools.push(pool)
      return new PostgresFactory({ pool, table, createTable: true, sweepInterval: 0 })
    },
    async record (id) {
      const { rows } = await admin.query(`SELECT user_id FROM "${table}" WHERE id = $1`, [id])
      return rows[0] === undefined ? undefined : { user: rows[0].user_id }
    },
    async filedUnder (user) {
      const { rows } = await admin.query(`SELECT count(*)::int AS n FROM "${table}" WHERE user_id = $1`, [user])
      return rows[0].n
    }
  })
  const { rows } = await admin.query(`SELECT id FROM "${table}"`)
  t.same(rows.map((row) => row.id).sort(), [...kept].sort(), 'left in the table: the two live sessions')
})
