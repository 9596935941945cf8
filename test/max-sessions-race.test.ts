// maxSessionsPerUser with two instances logging the same user in at once (issue 25): two Fastify
// apps, each with a factory of its own on one shared store (Redis, PostgreSQL; Memory shares one
// MemoryFactory). Each login makes three kinds of factory call: its save, the user's listing
// (sessionsOf) and the destroys of what lies past the cap. A gated factory holds each until the
// test lets it through, in every order that keeps each login's own order (20), one test per
// order: no sleeps. Login A is stamped before login B, so B is the newest.
//
// Cap 2, the user at the cap already: once both have answered, the user has at most 2 sessions,
// and they are the two new ones (the newest survives, and so does the other login).
// Cap 1: at most 1 session is left, whatever the order. A login that lists both new sessions
// cannot know whether the other login has listed yet (if it has, only this one can still keep
// the cap), so it ends the other: when both list before either ends anything, each ends the
// other, the cap holds and both must sign in again (docs/max-sessions.md). In every other order
// exactly one login survives.
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import t from 'tap'
import type { SessionFactory } from '../src/index.js'
import { Client, buildApp, sessionCookie } from './helpers/app.js'
import { fakeClock } from './helpers/clock.js'
import { Gates, interleavings, type Step } from './helpers/interleavings.js'
import type { TapTest } from './helpers/redis.js'
import { sharedStores } from './helpers/shared-stores.js'

const LOGIN_A: Step[] = ['A:save', 'A:sessionsOf', 'A:destroy']
const LOGIN_B: Step[] = ['B:save', 'B:sessionsOf', 'B:destroy']

async function instanceApp (t: TapTest, factory: SessionFactory<any>, gates: Gates, max: number): Promise<FastifyInstance> {
  const app = await buildApp({ factory: gates.wrap(factory), userKey: 'user', maxSessionsPerUser: max })
  gates.install(app)
  t.teardown(() => app.close())
  await app.ready()
  return app
}

/** The user behind the cookie, or null when it opens nothing. */
async function userOf (app: FastifyInstance, cookie: string | undefined): Promise<unknown> {
  if (cookie === undefined) return null
  const reply = await app.inject({ method: 'GET', url: '/read', headers: { cookie } })
  return (reply.json() as { data: { user?: unknown } }).data.user ?? null
}

function loginAs (app: FastifyInstance, gates: Gates, actor: 'A' | 'B'): Promise<LightMyRequestResponse> {
  return gates.as(actor, () => app.inject({ method: 'POST', url: '/login', payload: { user: 'ada' }, headers: { 'x-actor': actor } }))
}

interface Outcome {
  happened: Step[]
  a: unknown
  b: unknown
  old: unknown[]
  count: number
}

/** The user at `before` sessions; then A (on one instance) and B (on the other) log in, their calls in `order`. */
async function race (t: TapTest, store: typeof sharedStores[number], max: number, before: number, order: Step[]): Promise<Outcome> {
  const clock = fakeClock(t)
  const { instance } = await store.open(t)
  const gates = new Gates()
  const one = await instanceApp(t, await instance(), gates, max)
  const two = await instanceApp(t, await instance(), gates, max)
  const old: Client[] = []
  for (let i = 0; i < before; i++) {
    const client = new Client(i % 2 === 0 ? one : two)
    await client.post('/login', { user: 'ada' })
    old.push(client)
    clock.advance(1000)
  }
  // A is stamped (just before its save) a second before B.
  const a = loginAs(one, gates, 'A')
  await gates.parked('A:save')
  clock.advance(1000)
  const b = loginAs(two, gates, 'B')
  await gates.parked('B:save')

  const happened: Step[] = []
  for (const step of order) {
    if (await gates.release(step)) happened.push(step)
  }
  gates.openAll()
  const [replyA, replyB] = await Promise.all([a, b])
  t.equal(replyA.statusCode, 200, 'A answered')
  t.equal(replyB.statusCode, 200, 'B answered')
  const count = (await one.sessions.list('ada')).length
  t.equal((await two.sessions.list('ada')).length, count, 'both instances see the same sessions')
  return {
    happened,
    a: await userOf(two, sessionCookie(replyA)),
    b: await userOf(one, sessionCookie(replyB)),
    old: await Promise.all(old.map((client) => userOf(one, client.cookie))),
    count
  }
}

for (const store of sharedStores) {
  t.test(`${store.name}: cap 2, at the cap, two instances log the user in at once`, { skip: store.skip }, async (t) => {
    for (const order of interleavings(LOGIN_A, LOGIN_B)) {
      t.test(order.join(' → '), async (t) => {
        const outcome = await race(t, store, 2, 2, order)
        t.comment(`calls in this order: ${outcome.happened.join(' → ')}`)
        t.ok(outcome.count <= 2, `at most the cap (${outcome.count})`)
        t.equal(outcome.b, 'ada', 'the newest login survives')
        t.equal(outcome.a, 'ada', 'so does the other')
        t.same(outcome.old, [null, null], 'the sessions seen least recently are ended')
      })
    }
  })

  t.test(`${store.name}: cap 1, two instances log the user in at once`, { skip: store.skip }, async (t) => {
    for (const order of interleavings(LOGIN_A, LOGIN_B)) {
      t.test(order.join(' → '), async (t) => {
        const outcome = await race(t, store, 1, 1, order)
        const ends = outcome.happened.filter((step) => !step.endsWith(':save'))
        const bothListedFirst = ends[0]?.endsWith(':sessionsOf') === true && ends[1]?.endsWith(':sessionsOf') === true
        t.comment(`calls in this order: ${outcome.happened.join(' → ')}; A ${outcome.a === null ? 'ended' : 'kept'}, B ${outcome.b === null ? 'ended' : 'kept'}`)
        t.ok(outcome.count <= 1, `at most the cap (${outcome.count})`)
        t.same(outcome.old, [null], 'the older session is ended')
        t.equal(outcome.count, [outcome.a, outcome.b].filter((user) => user !== null).length, 'what is left is a new login\'s session')
        // Each lists the other and itself: each ends the other. Otherwise one login survives.
        if (!bothListedFirst) t.equal(outcome.count, 1, 'one login survives')
      })
    }
  })
}
