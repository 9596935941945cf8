// A model-based test (fast-check commands) of a user's life on a fake clock: visit, write, log in
// (regenerate), log out (destroy), go idle, stay active past the absolute timeout, rotate the
// secret, replay any cookie ever issued. After every step the real app must show what a small
// model of the rules (DESIGN §4) says the user should see, and send the cookie it says.
import assert from 'node:assert/strict'
import fc from 'fast-check'
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import t from 'tap'
import sessionPlugin, { type SessionFactory } from '../src/index.js'
import { fakeClock } from './helpers/clock.js'
import { statefulFactories, useFactory, wrapFactory, type FactoryUnderTest } from './helpers/factories-under-test.js'
import { checkProperty, freshSeed } from './helpers/fuzz.js'
import { LogTrap, cookieValueIn, signId } from './helpers/log-trap.js'

const START = Date.UTC(2030, 0, 1)
const IDLE_S = 600
const ABSOLUTE_S = 3_600
const IDLE = IDLE_S * 1000
const ABSOLUTE = ABSOLUTE_S * 1000
const TOUCH_EVERY = IDLE / 10
/** Secret n signs after n rotations; the app keeps the current one and the one before. */
const SECRETS = Array.from({ length: 8 }, (_, i) => `model-test-secret-number-${i}-padding-to-be-long`)

type Route = 'me' | 'visit' | 'note' | 'login' | 'logout'

interface View { user: string | null, counter: number, note: string | null }

interface Issued { value: string, id: string, epoch: number }

interface Stored { data: Record<string, unknown>, createdAt: number, touchedAt: number }

/** What should be true: the sessions the server holds, and the user's cookie jar. */
interface Model {
  now: number
  epoch: number
  sessions: Map<string, Stored>
  jar: Issued | null
  /** Every cookie the server ever sent, to replay. */
  issued: Issued[]
  /** How often each rule applied, so the test can show it exercised them all. */
  outcomes: Map<string, number>
}

function count (model: Model, kind: string): void {
  model.outcomes.set(kind, (model.outcomes.get(kind) ?? 0) + 1)
}

interface Real {
  clock: ReturnType<typeof fakeClock>
  /** The factory itself, to compare the store with the model. */
  store: SessionFactory<any>
  /** What the app uses: the same factory, kept open across secret rotations. */
  factory: SessionFactory<any>
  app: FastifyInstance
  trap: LogTrap
}

type Outcome = { kind: 'none' } | { kind: 'clear' } | { kind: 'set', id: string | null }

function viewOf (data: Record<string, unknown>): View {
  return { user: (data.user as string) ?? null, counter: (data.counter as number) ?? 0, note: (data.note as string) ?? null }
}

/**
 * The rules, as the user sees them: what the request shows, what cookie comes back, and the
 * record a new session creates (stored once its real id is known).
 */
function predict (model: Model, route: Route, cookie: Issued | null, arg: string): { view: View, outcome: Outcome, created: Stored | null } {
  const now = model.now
  let loaded: { id: string, stored: Stored } | null = null
  let stale = false
  let renew = false
  if (cookie !== null && cookie.epoch < model.epoch - 1) count(model, 'forged')
  if (cookie !== null && cookie.epoch >= model.epoch - 1) {
    renew = cookie.epoch !== model.epoch
    const stored = model.sessions.get(cookie.id)
    if (stored === undefined) {
      stale = true
      count(model, 'replayed-dead')
    } else if (now - stored.touchedAt >= IDLE || now - stored.createdAt >= ABSOLUTE) {
      model.sessions.delete(cookie.id)
      stale = true
      count(model, 'expired')
    } else loaded = { id: cookie.id, stored }
  }
  const data = loaded === null ? {} : { ...loaded.stored.data }
  const fresh = (changed: Record<string, unknown>): { view: View, outcome: Outcome, created: Stored } =>
    ({ view: viewOf(changed), outcome: { kind: 'set', id: null }, created: { data: changed, createdAt: now, touchedAt: now } })
  const save = (changed: Record<string, unknown>): { view: View, outcome: Outcome, created: Stored | null } => {
    if (loaded === null) return fresh(changed)
    loaded.stored.data = changed
    loaded.stored.touchedAt = now
    // The same id: the browser's cookie stays right, so none is sent unless it must be re-signed.
    if (!renew) count(model, 'kept')
    return { view: viewOf(changed), outcome: renew ? { kind: 'set', id: loaded.id } : { kind: 'none' }, created: null }
  }

  switch (route) {
    case 'me': {
      if (loaded === null) return { view: viewOf(data), outcome: { kind: stale ? 'clear' : 'none' }, created: null }
      if (now - loaded.stored.touchedAt >= TOUCH_EVERY) loaded.stored.touchedAt = now
      return { view: viewOf(data), outcome: renew ? { kind: 'set', id: loaded.id } : { kind: 'none' }, created: null }
    }
    case 'visit':
      return save({ ...data, counter: ((data.counter as number) ?? 0) + 1 })
    case 'note':
      return save({ ...data, note: arg })
    case 'login':
      // regenerate() empties the session, as on the peers: only the user goes on, under a new id.
      if (loaded !== null) model.sessions.delete(loaded.id)
      return fresh({ user: arg })
    case 'logout':
      if (loaded !== null) model.sessions.delete(loaded.id)
      return { view: viewOf({}), outcome: { kind: cookie === null ? 'none' : 'clear' }, created: null }
  }
}

async function send (real: Real, route: Route, cookie: Issued | null, arg: string): Promise<LightMyRequestResponse> {
  const headers = cookie === null ? {} : { cookie: `sid=${encodeURIComponent(cookie.value)}` }
  switch (route) {
    case 'me': return real.app.inject({ method: 'GET', url: '/me', headers })
    case 'visit': return real.app.inject({ method: 'GET', url: '/visit', headers })
    case 'note': return real.app.inject({ method: 'POST', url: '/note', headers, payload: { note: arg } })
    case 'login': return real.app.inject({ method: 'POST', url: '/login', headers, payload: { user: arg } })
    case 'logout': return real.app.inject({ method: 'POST', url: '/logout', headers })
  }
}

/** Every session the model holds alive is in the store as the model says: data, created, touched. */
async function checkStore (model: Model, real: Real): Promise<void> {
  for (const [id, stored] of model.sessions) {
    if (model.now - stored.touchedAt >= IDLE || model.now - stored.createdAt >= ABSOLUTE) continue
    const session = await real.store.load(id)
    assert.ok(session !== null, 'a live session is missing from the store')
    assert.deepEqual({ ...session.data }, stored.data, 'stored data')
    assert.equal(session.createdAt, stored.createdAt, 'createdAt')
    assert.equal(session.touchedAt, stored.touchedAt, 'touchedAt (idle timeout rolls only on a save or a due touch)')
  }
}

/** One request, checked against the model; returns the cookie the browser now holds. */
async function step (model: Model, real: Real, route: Route, cookie: Issued | null, arg: string): Promise<{ jar: Issued | null | undefined }> {
  const expected = predict(model, route, cookie, arg)
  const response = await send(real, route, cookie, arg)
  assert.equal(response.statusCode, 200, `${route}: status ${response.statusCode} ${response.body}`)
  assert.deepEqual(response.json(), expected.view, `${route}: the user sees what the model says`)
  const value = cookieValueIn(response.headers['set-cookie'])
  switch (expected.outcome.kind) {
    case 'none':
      assert.equal(value, undefined, `${route}: no Set-Cookie expected`)
      return { jar: undefined }
    case 'clear':
      assert.equal(value, '', `${route}: the cookie should be cleared`)
      count(model, 'cleared')
      break
    case 'set': {
      assert.ok(value, `${route}: a session cookie should be set`)
      const id = value.slice(0, value.lastIndexOf('.'))
      assert.equal(value, signId(id, SECRETS[model.epoch] as string), `${route}: signed with the current secret`)
      if (expected.outcome.id === null) {
        assert.ok(!model.sessions.has(id) && !model.issued.some((i) => i.id === id), `${route}: a new session gets a new id`)
        model.sessions.set(id, expected.created as Stored)
        count(model, 'new')
      } else {
        assert.equal(id, expected.outcome.id, `${route}: the session keeps its id`)
        count(model, cookie?.epoch === model.epoch ? 'kept' : 'renewed')
      }
      real.trap.rememberCookie(value)
      break
    }
  }
  // Any response that sets or clears the cookie must not be stored by a shared cache.
  assert.match(String(response.headers.vary), /\bCookie\b/, `${route}: Vary: Cookie`)
  assert.equal(response.headers['cache-control'], 'private', `${route}: Cache-Control: private`)
  await checkStore(model, real)
  if (value === '') return { jar: null }
  const issued = { value: value as string, id: (value as string).slice(0, (value as string).lastIndexOf('.')), epoch: model.epoch }
  model.issued.push(issued)
  return { jar: issued }
}

async function buildApp (factory: SessionFactory<any>, epoch: number, trap: LogTrap): Promise<FastifyInstance> {
  const app = Fastify({ logger: trap.logger })
  const secret = epoch === 0 ? [SECRETS[0] as string] : [SECRETS[epoch] as string, SECRETS[epoch - 1] as string]
  await app.register(sessionPlugin, { factory, secret, idleTimeout: IDLE_S, absoluteTimeout: ABSOLUTE_S })
  const view = (data: Record<string, unknown>): View => viewOf(data)
  app.get('/me', async (request) => view(request.session.data))
  app.get('/visit', async (request) => {
    request.session.set('counter', request.session.get('counter', 0) + 1)
    return view(request.session.data)
  })
  app.post<{ Body: { note: string } }>('/note', async (request) => {
    request.session.set('note', request.body.note)
    return view(request.session.data)
  })
  app.post<{ Body: { user: string } }>('/login', async (request) => {
    request.session.regenerate()
    request.session.set('user', request.body.user)
    return view(request.session.data)
  })
  app.post('/logout', async (request) => {
    request.session.destroy()
    return view(request.session.data)
  })
  return app
}

type Command = fc.AsyncCommand<Model, Real, false>

class UserRequest implements Command {
  constructor (readonly route: Route, readonly arg: string) {}
  check (): boolean { return true }
  async run (model: Model, real: Real): Promise<void> {
    const { jar } = await step(model, real, this.route, model.jar, this.arg)
    if (jar !== undefined) model.jar = jar
  }

  toString (): string { return `${this.route}(${this.arg})` }
}

class Wait implements Command {
  constructor (readonly ms: number) {}
  check (): boolean { return true }
  async run (model: Model, real: Real): Promise<void> {
    model.now += this.ms
    real.clock.advance(this.ms)
  }

  toString (): string { return `wait(${this.ms / 1000}s)` }
}

/** Comes back every five minutes (each visit touches the session) for longer than the absolute timeout. */
class StayActive implements Command {
  constructor (readonly ms: number) {}
  check (model: Model): boolean { return model.jar !== null }
  async run (model: Model, real: Real): Promise<void> {
    for (let waited = 0; waited < this.ms; waited += 300_000) {
      model.now += 300_000
      real.clock.advance(300_000)
      const { jar } = await step(model, real, 'me', model.jar, '')
      if (jar !== undefined) model.jar = jar
    }
  }

  toString (): string { return `stayActive(${this.ms / 1000}s)` }
}

/** A deploy with a new first secret; the previous one still verifies, older ones no longer do. */
class RotateSecret implements Command {
  check (model: Model): boolean { return model.epoch < SECRETS.length - 1 }
  async run (model: Model, real: Real): Promise<void> {
    model.epoch++
    await real.app.close()
    real.app = await buildApp(real.factory, model.epoch, real.trap)
  }

  toString (): string { return 'rotateSecret' }
}

/** Someone sends a cookie the server issued earlier (a stolen one, an old tab): the jar is untouched. */
class Replay implements Command {
  constructor (readonly index: number, readonly route: Route) {}
  check (model: Model): boolean { return model.issued.length > 0 }
  async run (model: Model, real: Real): Promise<void> {
    await step(model, real, this.route, model.issued[this.index % model.issued.length] as Issued, 'mallory')
  }

  toString (): string { return `replay(#${this.index}, ${this.route})` }
}

const commands = [
  fc.constantFrom<Route>('me', 'visit', 'logout').map((route) => new UserRequest(route, '')),
  fc.constantFrom('ada-lovelace', 'grace-hopper').map((user) => new UserRequest('login', user)),
  fc.nat({ max: 1e9 }).map((n) => new UserRequest('note', `note-${n.toString(36).padStart(8, '0')}`)),
  fc.oneof(
    fc.integer({ min: 1_000, max: IDLE + 60_000 }),
    fc.integer({ min: TOUCH_EVERY - 2_000, max: TOUCH_EVERY + 2_000 }),
    fc.integer({ min: IDLE - 2_000, max: IDLE + 2_000 }),
    fc.integer({ min: ABSOLUTE, max: ABSOLUTE + 120_000 })
  ).map((ms) => new Wait(ms)),
  fc.integer({ min: 1_000_000, max: 4_000_000 }).map((ms) => new StayActive(ms)),
  fc.constant(new RotateSecret()),
  fc.tuple(fc.nat(), fc.constantFrom<Route>('me', 'me', 'visit', 'logout')).map(([i, route]) => new Replay(i, route))
]

for (const under of statefulFactories) {
  t.test(`${under.name}: a user's life matches the model at every step`, { skip: under.skip ?? false }, async (t) => {
    const clock = fakeClock(t, START)
    const trap = new LogTrap()
    let runs = 0
    let commandsRun = 0
    const outcomes = new Map<string, number>()
    // A new seed every run, so the model keeps finding new lives; a failure names it for FC_SEED.
    const seed = freshSeed()
    t.comment(`fast-check seed ${seed}: replay with FC_SEED=${seed}`)

    await checkProperty(fc.asyncProperty(fc.commands(commands, { maxCommands: 40, size: 'max' }), async (cmds) => {
      const made = await useFactory(under as FactoryUnderTest)
      const factory = wrapFactory(made.factory, { keepOpen: true })
      clock.advance(START - clock.now()) // each life starts at the same instant
      const model: Model = { now: START, epoch: 0, sessions: new Map(), jar: null, issued: [], outcomes: new Map() }
      const real: Real = { clock, store: made.factory, factory, app: await buildApp(factory, 0, trap), trap }
      try {
        await fc.asyncModelRun(() => ({ model, real }), cmds)
      } finally {
        await real.app.close()
        await made.dispose()
      }
      runs++
      commandsRun += [...cmds].length
      for (const [kind, count] of model.outcomes) outcomes.set(kind, (outcomes.get(kind) ?? 0) + count)
    }), 20, seed)

    t.ok(runs >= 20 && commandsRun > 200, `${runs} lives checked, ${commandsRun} commands`)
    // Each rule the model encodes was exercised, not just the easy ones.
    for (const kind of ['new', 'kept', 'renewed', 'cleared', 'expired', 'forged', 'replayed-dead']) {
      t.ok((outcomes.get(kind) ?? 0) > 0, `${kind}: ${outcomes.get(kind) ?? 0} times`)
    }
    t.same(trap.errors(), [], 'nothing was logged at error level')
    t.same(trap.leaks(), [], 'no session id, cookie value or session value reached the log')
  })
}
