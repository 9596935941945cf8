// Sign out everywhere against a rotation, at every interleaving (issue 22, "endAll races a
// rotation"). A request R rotates a signed-in session (regenerate(['user']): the plugin destroys
// the old id, then saves the new one) while E runs sessions.endAll() (the factory's revokeUser,
// then sessionsOf, then a destroy of each session listed). A gated factory holds each of those
// calls until the test lets it through, in one of the ten orders that keep R's and E's own order;
// one test per order, on every factory with a user index. Whatever the order, no session of the
// user is alive afterwards: neither the old cookie nor a new one R may have sent opens it.
// Then a thief with a stolen cookie loops a rotating route while endAll runs: 0 survivors.
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import type { SessionFactory } from '../src/index.js'
import { Client, buildApp, sessionCookie } from './helpers/app.js'
import { Gates, interleavings, type Step } from './helpers/interleavings.js'
import { indexStores, stopCluster } from './helpers/index-stores.js'
import type { TapTest } from './helpers/redis.js'

t.teardown(stopCluster)

const ROTATION: Step[] = ['R:destroy', 'R:save']
const END_ALL: Step[] = ['E:revokeUser', 'E:sessionsOf', 'E:destroy']

async function userApp (t: TapTest, factory: SessionFactory<any>, gates?: Gates): Promise<FastifyInstance> {
  const app = await buildApp({ factory, userKey: 'user' })
  gates?.install(app)
  // A rotating route, as apps run one on privilege changes: a new id, the user kept.
  app.post('/rotate', async (request) => {
    await request.session.regenerate(['user'])
    return { user: request.session.get('user') ?? null }
  })
  app.get('/me', async (request) => ({ user: request.session.get('user') ?? null }))
  t.teardown(() => app.close())
  await app.ready()
  return app
}

async function userOf (app: FastifyInstance, cookie: string | undefined): Promise<string | null> {
  if (cookie === undefined) return null
  const reply = await app.inject({ method: 'GET', url: '/me', headers: { cookie } })
  return (reply.json() as { user: string | null }).user
}

for (const store of indexStores) {
  t.test(`${store.name}: endAll and a rotation, at each interleaving`, { skip: store.skip }, async (t) => {
    for (const order of interleavings(ROTATION, END_ALL)) {
      t.test(order.join(' → '), async (t) => {
        const gates = new Gates()
        const app = await userApp(t, gates.wrap(await store.make(t)), gates)
        const thief = new Client(app)
        await thief.post('/login', { user: 'ada' })
        const stolen = thief.cookie as string
        t.ok(stolen, 'signed in')

        const rotation = gates.as('R', () => app.inject({ method: 'POST', url: '/rotate', headers: { cookie: stolen, 'x-actor': 'R' } }))
        const endAll = gates.as('E', () => app.sessions.endAll('ada'))
        const happened: Step[] = []
        for (const step of order) {
          if (await gates.release(step)) happened.push(step)
        }
        gates.openAll()
        const [reply, ended] = await Promise.all([rotation, endAll])
        t.comment(`calls in this order: ${happened.join(' → ')}; endAll ended ${ended}`)
        t.equal(reply.statusCode, 200)

        const rotated = sessionCookie(reply)
        t.equal(await userOf(app, stolen), null, 'the old cookie opens no session of ada')
        t.equal(await userOf(app, rotated), null, 'nor does a cookie the rotation sent')
        t.same(await app.sessions.list('ada'), [], 'no session of ada is left')
      })
    }
  })

  t.test(`${store.name}: a thief looping a rotating route with a stolen cookie is signed out by endAll, every time`, { skip: store.skip }, async (t) => {
    const app = await userApp(t, await store.make(t))
    const rounds = 20
    let survivors = 0
    for (let round = 0; round < rounds; round++) {
      const thief = new Client(app)
      await thief.post('/login', { user: 'ada' })
      let rotations = 0
      let ending: Promise<number> | null = null
      let afterEnd = 0
      // The thief rotates as fast as it can, until it is signed out (or has rotated 20 times past endAll).
      const loop = (async () => {
        while (thief.cookie !== undefined) {
          const reply = await thief.post('/rotate')
          if ((reply.json() as { user: string | null }).user === null) return
          rotations++
          // endAll starts while the thief's requests are in flight, a few rotations in.
          if (rotations === 3) ending = app.sessions.endAll('ada')
          if (ending !== null && ++afterEnd > 20) return
        }
      })()
      await loop
      await ending
      const survived = await userOf(app, thief.cookie) !== null || (await app.sessions.list('ada')).length > 0
      if (survived) survivors++
      // Each round starts from no session of ada.
      if (survived) await app.sessions.endAll('ada')
    }
    t.comment(`${store.name}: ${survivors} of ${rounds} endAll calls left the thief signed in`)
    t.equal(survivors, 0, 'no round leaves the thief signed in')
  })
}
