// The conformance suites for a factory (`fastify-session-factory/testing`). `runFactorySuite`
// checks the factory on its own, in groups (required, recommended, user index); `runPluginSuite`
// checks it behind the plugin, over `inject`. Both register with node:test unless handed another
// runner's `describe` and `it`.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import * as nodeTest from 'node:test'
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import type { IndexedSession, MaybePromise, SessionFactory } from './factory.js'
import sessionPlugin from './index.js'
import { generateId } from './id.js'
import { Session, internals } from './session.js'
import { Sessions } from './sessions.js'

/** What a check hands its runner: node:test's test options (a reason string, or false). */
/**
 * The Cookie header (`sid=<signed id>`) of a new session holding `data`, stored in the app's own
 * factory and signed with its secret: send it with `inject` to start a test logged in. The
 * app must have registered the plugin; `decorator` names the registration (default 'session').
 */
export async function sessionCookie (app: FastifyInstance, data: Record<string, unknown>, options: { decorator?: string } = {}): Promise<string> {
  await app.ready()
  const name = `${options.decorator ?? 'session'}s`
  const sessions: unknown = (app as unknown as Record<string, unknown>)[name]
  if (!(sessions instanceof Sessions)) {
    throw new TypeError(`sessionCookie(): app.${name} is not there; register fastify-session-factory on this app (with decorator '${options.decorator ?? 'session'}') before calling it`)
  }
  return await sessions.cookieFor(data)
}

export interface CheckOptions {
  skip: string | false
  todo: string | false
  timeout: number
}

/** A test runner, in node:test's shape: `import { describe, it } from 'node:test'`. */
export interface TestFunctions {
  describe (name: string, fn: () => void): unknown
  it (name: string, options: CheckOptions, fn: () => Promise<void>): unknown
}

/** The checks of `runFactorySuite`, by the name `skip` and `todo` take. */
export type FactoryCheck =
  // required
  | 'load-unknown' | 'round-trip' | 'keeps-expires-at' | 'json-round-trip' | 'copy' | 'applies-changes'
  | 'expiry' | 'kept-apart'
  // recommended
  | 'merges-parallel-saves' | 'merges-a-then-b' | 'merges-b-then-a' | 'destroy-forgets' | 'destroy-result'
  | 'no-resurrection-by-save' | 'no-resurrection-by-touch' | 'touch-extends'
  // userIndex
  | 'index-lists' | 'index-apart' | 'index-destroy' | 'index-expiry' | 'index-moves' | 'index-stale-save'
  | 'index-touch-files' | 'index-revoke'

/** The checks of `runPluginSuite`. */
export type PluginCheck =
  | 'first-visit' | 'returning-visit' | 'login' | 'logout-clears-cookie' | 'logout-kills-old-cookie' | 'secret-rotation'

type Make = () => MaybePromise<SessionFactory<any>>

interface CommonOptions {
  /** The runner to register with; node:test's `describe` and `it` by default. */
  test?: TestFunctions
  /**
   * The factory keeps nothing: the id it returns is the session itself (a sealed cookie). Checks
   * that need shared state (merging, destroy, revocation, expiry, which the plugin enforces) are skipped.
   */
  stateless?: boolean
  /** Called after each check with the factory it used, before the factory is closed. */
  cleanup?: (factory: SessionFactory<any>) => MaybePromise<void>
  /** Milliseconds a check may take; 30,000 by default. */
  timeout?: number
}

export interface FactorySuiteOptions extends CommonOptions {
  /**
   * Which groups run. `required` always does. `recommended` (merging concurrent saves, destroy,
   * touch) and `userIndex` (`sessionsOf`) are on unless set to false; a factory without the
   * method a group needs fails that group's checks with a message saying to switch it off.
   */
  groups?: { required?: true, recommended?: boolean, userIndex?: boolean }
  /** Recommended or user index checks to skip, each with the reason the report shows. */
  skip?: Partial<Record<FactoryCheck, string>>
  /** Checks known to fail for now, each with the reason: the runner reports them as todo, not as failures. */
  todo?: Partial<Record<FactoryCheck, string>>
}

export interface PluginSuiteOptions extends CommonOptions {
  /** Plugin checks to skip, each with its reason. */
  skip?: Partial<Record<PluginCheck, string>>
  /** Plugin checks known to fail for now, each with the reason. */
  todo?: Partial<Record<PluginCheck, string>>
}

type Group = 'required' | 'recommended' | 'userIndex'

interface Check<Name extends string, Context> {
  name: Name
  title: string
  /** Why the check does not apply to a stateless factory. */
  stateless?: string
  run (context: Context): Promise<void>
}

const GROUP_TITLES: Record<Group, string> = { required: 'required', recommended: 'recommended', userIndex: 'user index' }
const DEFAULT_TIMEOUT = 30_000

// What the plugin does before a save: an id for a new session, an expiry, the user to file it under.
function prepare<D extends object> (session: Session<D>, ttlMs = 60_000, userId: string | null = null): Session<D> {
  if (session.isNew) session.id = generateId()
  session.touchedAt = Date.now()
  session.expiresAt = Date.now() + ttlMs
  session.filedUnder = userId
  return session
}

async function saveNew (factory: SessionFactory<any>, data: Record<string, unknown>, ttlMs?: number, userId?: string | null): Promise<string> {
  return factory.save(prepare(new Session<any>(data), ttlMs, userId))
}

async function mustLoad (factory: SessionFactory<any>, id: string): Promise<Session<any>> {
  const session = await factory.load(id)
  assert.ok(session instanceof Session, 'load() of a saved id must answer with a Session')
  return session
}

// Checks the answer without printing it: a failure report shows no session id or data.
async function mustBeGone (factory: SessionFactory<any>, id: string, message: string): Promise<void> {
  assert.ok(await factory.load(id) === null, message)
}

type Method = 'destroy' | 'touch' | 'sessionsOf' | 'revokeUser'

/** The factory's optional method that a group needs, or a failure that says how to switch the group off. */
function needs<M extends Method> (factory: SessionFactory<any>, method: M, group: Exclude<Group, 'required'>): NonNullable<SessionFactory<any>[M]> {
  const fn = factory[method]
  if (typeof fn !== 'function') {
    assert.fail(`the ${GROUP_TITLES[group]} checks need ${method}(), which this factory lacks: implement it, or switch the group off with groups: { ${group}: false } (or skip the checks that need it)`)
  }
  return fn.bind(factory) as NonNullable<SessionFactory<any>[M]>
}

/** A user index's entries, reduced to what the contract lists and in a stable order. */
async function listed (factory: SessionFactory<any>, userId: string): Promise<IndexedSession[]> {
  const entries = await needs(factory, 'sessionsOf', 'userIndex')(userId)
  assert.ok(Array.isArray(entries), 'sessionsOf() must answer with an array')
  return entries
    .map(({ id, createdAt, touchedAt, expiresAt }) => ({ id, createdAt, touchedAt, expiresAt }))
    .sort(byId)
}

function byId (a: IndexedSession, b: IndexedSession): number {
  return a.id.localeCompare(b.id)
}

function entryOf (id: string, session: Session<any>): IndexedSession {
  return { id, createdAt: session.createdAt, touchedAt: session.touchedAt, expiresAt: session.expiresAt }
}

const SAMPLE = {
  text: 'héllo ✓ 🍪',
  count: 42,
  ratio: -0.5,
  flag: false,
  nothing: null,
  list: [1, 'two', { three: [3] }],
  nested: { deep: { deeper: { value: 'yes' } } },
  toString: 'not a function',
  hasOwnProperty: 1,
  'key with spaces and ünïcode': true
}

// Two loads of one session side by side: A changes `counter`, B changes `note`; both must survive.
async function mergesInOrder (factory: SessionFactory<any>, first: 'a' | 'b'): Promise<void> {
  const id = await saveNew(factory, { counter: 0, note: 'before' })
  const [a, b] = await Promise.all([mustLoad(factory, id), mustLoad(factory, id)])
  a.set('counter', 1)
  b.set('note', 'after')
  const order = first === 'a' ? [a, b] : [b, a]
  for (const session of order) await factory.save(prepare(session))
  const merged = await mustLoad(factory, id)
  const lost = 'save() must apply session.changes() to the stored record, not write session.data whole'
  assert.equal(merged.get('counter'), 1, `A's counter was lost when B saved: ${lost}`)
  assert.equal(merged.get('note'), 'after', `B's note was lost when A saved: ${lost}`)
}

const FACTORY_CHECKS: Record<Group, Array<Check<FactoryCheck, SessionFactory<any>>>> = {
  required: [
    {
      name: 'load-unknown',
      title: 'load() of an id it never issued answers null',
      async run (factory) {
        await mustBeGone(factory, generateId(), 'load() of an unknown id must answer null')
        await mustBeGone(factory, '', 'load(\'\') must answer null')
        await mustBeGone(factory, 'not.even.close%00', 'load() of a malformed id must answer null')
      }
    },
    {
      name: 'round-trip',
      title: 'save() of a new session answers a non-empty id that load() opens, timestamps kept',
      async run (factory) {
        const session = prepare(new Session<any>({ user: 'ada' }))
        session.createdAt -= 5000
        session.touchedAt -= 1000
        const id = await factory.save(session)
        assert.equal(typeof id, 'string', 'save() must answer with the id, a string')
        assert.ok(id.length > 0, 'save() must answer with a non-empty id')
        const loaded = await mustLoad(factory, id)
        assert.equal(loaded.isNew, false, 'a loaded session is not new: build it with Session.fromJSON or with an id')
        assert.equal(loaded.isModified, false)
        assert.equal(loaded.get('user'), 'ada')
        assert.equal(loaded.createdAt, session.createdAt, 'createdAt must survive the round trip (the absolute timeout counts from it)')
        assert.equal(loaded.touchedAt, session.touchedAt, 'touchedAt must survive the round trip (the idle timeout counts from it)')
      }
    },
    {
      name: 'keeps-expires-at',
      title: 'load() gives back the expiresAt of the last save',
      async run (factory) {
        const session = prepare(new Session<any>({ user: 'ada' }))
        const id = await factory.save(session)
        const loaded = await mustLoad(factory, id)
        assert.equal(loaded.expiresAt, session.expiresAt, 'expiresAt must survive the round trip (Session.fromJSON keeps it)')
        loaded.set('user', 'grace')
        const later = prepare(loaded, 120_000)
        const again = await mustLoad(factory, await factory.save(later))
        assert.equal(again.expiresAt, later.expiresAt, 'a later save sets the new expiresAt')
      }
    },
    {
      name: 'json-round-trip',
      title: 'data round-trips through JSON exactly, odd keys included',
      async run (factory) {
        const polluted = JSON.parse('{"__proto__": {"polluted": true}, "safe": 1}')
        const id = await saveNew(factory, { ...SAMPLE, polluted })
        const loaded = await mustLoad(factory, id)
        assert.deepEqual({ ...loaded.data, polluted: undefined }, { ...SAMPLE, polluted: undefined })
        const back = loaded.get('polluted') as Record<string, unknown>
        assert.equal(back.safe, 1)
        assert.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype was polluted')
      }
    },
    {
      name: 'copy',
      title: 'the store holds a copy: a session changed without save() leaves it alone',
      async run (factory) {
        const saved = prepare(new Session<any>({ cart: ['apple'] }))
        const id = await factory.save(saved)
        ;(saved.get('cart') as string[]).push('plum')
        const loaded = await mustLoad(factory, id)
        ;(loaded.get('cart') as string[]).push('pear')
        loaded.set('extra', true)
        const again = await mustLoad(factory, id)
        assert.deepEqual(again.get('cart'), ['apple'], 'the store must not keep a reference to a session\'s values')
        assert.equal(again.has('extra'), false)
      }
    },
    {
      name: 'applies-changes',
      title: 'save() of a loaded session applies its sets, deletes and in-place changes, and keeps the rest',
      async run (factory) {
        const id = await saveNew(factory, { keep: 1, change: 'old', drop: true, list: [1] })
        const loaded = await mustLoad(factory, id)
        loaded.set('change', 'new').set('add', [1])
        loaded.delete('drop')
        ;(loaded.get('list') as number[]).push(2)
        const next = await factory.save(prepare(loaded))
        const again = await mustLoad(factory, next)
        assert.deepEqual({ ...again.data }, { keep: 1, change: 'new', add: [1], list: [1, 2] })
      }
    },
    {
      name: 'expiry',
      title: 'a session past its expiresAt no longer loads',
      stateless: 'the plugin enforces a stateless session\'s timeouts',
      async run (factory) {
        // Generous margins: a loaded machine may take a while between the save and the first load.
        const id = await saveNew(factory, { user: 'ada' }, 1000)
        assert.ok(await factory.load(id), 'loads while it is alive')
        await sleep(1500)
        await mustBeGone(factory, id, 'load() must answer null once session.expiresAt has passed')
      }
    },
    {
      name: 'kept-apart',
      title: 'sessions are kept apart',
      async run (factory) {
        const ids = await Promise.all(Array.from({ length: 20 }, (_, i) => saveNew(factory, { n: i })))
        assert.equal(new Set(ids).size, ids.length, 'each session has an id of its own')
        const loaded = await Promise.all(ids.map((id) => mustLoad(factory, id)))
        assert.deepEqual(loaded.map((s) => s.get('n')), ids.map((_, i) => i))
      }
    }
  ],
  recommended: [
    {
      name: 'merges-parallel-saves',
      title: 'two concurrent saves of one session that change different keys both survive',
      async run (factory) {
        const id = await saveNew(factory, { base: true })
        const [a, b] = await Promise.all([mustLoad(factory, id), mustLoad(factory, id)])
        a.set('a', 1)
        b.set('b', 2)
        b.delete('base')
        await Promise.all([factory.save(prepare(a)), factory.save(prepare(b))])
        const merged = await mustLoad(factory, id)
        assert.deepEqual({ ...merged.data }, { a: 1, b: 2 })
      }
    },
    {
      name: 'merges-a-then-b',
      title: 'two loads of one session: A changes counter, B changes note, A saves then B: both kept',
      run: (factory) => mergesInOrder(factory, 'a')
    },
    {
      name: 'merges-b-then-a',
      title: 'two loads of one session: A changes counter, B changes note, B saves then A: both kept',
      run: (factory) => mergesInOrder(factory, 'b')
    },
    {
      name: 'destroy-forgets',
      title: 'destroy() forgets the session, and destroying twice is no error',
      async run (factory) {
        const destroy = needs(factory, 'destroy', 'recommended')
        const id = await saveNew(factory, { user: 'ada' })
        await destroy(id)
        await mustBeGone(factory, id, 'load() of a destroyed session must answer null')
        await destroy(id)
      }
    },
    {
      name: 'destroy-result',
      title: 'destroy() answers true (or nothing) for a live record, false (or nothing) for a missing one',
      async run (factory) {
        const destroy = needs(factory, 'destroy', 'recommended')
        const id = await saveNew(factory, { user: 'ada' })
        const live = await destroy(id)
        assert.ok(live === true || live === undefined, `destroy() of a live record answered ${String(live)}: true, or nothing`)
        const again = await destroy(id)
        assert.ok(again === false || again === undefined, `destroy() of a destroyed record answered ${String(again)}: false, or nothing`)
        const never = await destroy(generateId())
        assert.ok(never === false || never === undefined, `destroy() of an id never issued answered ${String(never)}: false, or nothing`)
      }
    },
    {
      name: 'no-resurrection-by-save',
      title: 'a save that races a destroy does not bring the session back (logout race)',
      async run (factory) {
        const destroy = needs(factory, 'destroy', 'recommended')
        const id = await saveNew(factory, { user: 'ada' })
        const racer = await mustLoad(factory, id)
        await destroy(id)
        racer.set('late', true)
        await factory.save(prepare(racer))
        await mustBeGone(factory, id, 'save() of a loaded session must not recreate a record destroyed meanwhile')
      }
    },
    {
      name: 'no-resurrection-by-touch',
      title: 'a touch that races a destroy does not bring the session back',
      async run (factory) {
        const destroy = needs(factory, 'destroy', 'recommended')
        const touch = needs(factory, 'touch', 'recommended')
        const id = await saveNew(factory, { user: 'ada' })
        const loaded = await mustLoad(factory, id)
        await destroy(id)
        loaded.touchedAt = Date.now()
        loaded.expiresAt = Date.now() + 60_000
        await touch(loaded)
        await mustBeGone(factory, id, 'touch() must not recreate a record destroyed meanwhile')
      }
    },
    {
      name: 'touch-extends',
      title: 'touch() extends the expiry without rewriting data',
      async run (factory) {
        const touch = needs(factory, 'touch', 'recommended')
        const id = await saveNew(factory, { user: 'ada' }, 1000)
        const [loaded, other] = await Promise.all([mustLoad(factory, id), mustLoad(factory, id)])
        other.set('cart', ['apple'])
        await factory.save(prepare(other, 1000))
        loaded.touchedAt = Date.now()
        loaded.expiresAt = Date.now() + 60_000
        await touch(loaded)
        await sleep(1500)
        const again = await factory.load(id)
        assert.ok(again instanceof Session, 'the session must outlive its first expiry once touched')
        assert.deepEqual({ ...again.data }, { user: 'ada', cart: ['apple'] }, 'touch() must not rewrite the data (another request\'s save stays)')
        assert.equal(again.touchedAt, loaded.touchedAt, 'touch() stores touchedAt')
      }
    }
  ],
  userIndex: [
    {
      name: 'index-lists',
      title: 'sessionsOf(user) lists the user\'s sessions as { id, createdAt, touchedAt, expiresAt }, kept current',
      async run (factory) {
        const first = prepare(new Session<any>({ n: 1 }), 60_000, 'u1')
        first.createdAt -= 5000
        const firstId = await factory.save(first)
        const second = prepare(new Session<any>({ n: 2 }), 90_000, 'u1')
        const secondId = await factory.save(second)
        assert.deepEqual(await listed(factory, 'u1'), [entryOf(firstId, first), entryOf(secondId, second)].sort(byId))
        assert.deepEqual(await listed(factory, 'nobody'), [], 'a user without sessions has an empty list')

        await sleep(5)
        const loaded = await mustLoad(factory, firstId)
        loaded.set('n', 3)
        const saved = prepare(loaded, 120_000, 'u1')
        await factory.save(saved)
        assert.deepEqual(await listed(factory, 'u1'), [entryOf(firstId, saved), entryOf(secondId, second)].sort(byId), 'a later save updates touchedAt and expiresAt')
        if (factory.touch !== undefined) {
          await sleep(5)
          const touched = prepare(await mustLoad(factory, secondId), 150_000, 'u1')
          await factory.touch(touched)
          assert.deepEqual(await listed(factory, 'u1'), [entryOf(firstId, saved), entryOf(secondId, touched)].sort(byId), 'a touch updates touchedAt and expiresAt')
        }
      }
    },
    {
      name: 'index-apart',
      title: 'sessionsOf(user) lists none of another user\'s sessions, nor anonymous ones',
      async run (factory) {
        const mine = await saveNew(factory, { n: 1 }, 60_000, 'u1')
        const theirs = await saveNew(factory, { n: 2 }, 60_000, 'u2')
        await saveNew(factory, { n: 3 }, 60_000, null)
        assert.deepEqual((await listed(factory, 'u1')).map((entry) => entry.id), [mine])
        assert.deepEqual((await listed(factory, 'u2')).map((entry) => entry.id), [theirs])
      }
    },
    {
      name: 'index-destroy',
      title: 'a destroyed session leaves the index',
      async run (factory) {
        needs(factory, 'sessionsOf', 'userIndex')
        const destroy = needs(factory, 'destroy', 'userIndex')
        const gone = await saveNew(factory, { n: 1 }, 60_000, 'u1')
        const kept = await saveNew(factory, { n: 2 }, 60_000, 'u1')
        await destroy(gone)
        assert.deepEqual((await listed(factory, 'u1')).map((entry) => entry.id), [kept])
      }
    },
    {
      name: 'index-expiry',
      title: 'an expired session leaves the index',
      async run (factory) {
        const short = await saveNew(factory, { n: 1 }, 1000, 'u1')
        const long = await saveNew(factory, { n: 2 }, 60_000, 'u1')
        assert.equal((await listed(factory, 'u1')).length, 2, 'both are listed while alive')
        await sleep(1500)
        const ids = (await listed(factory, 'u1')).map((entry) => entry.id)
        assert.equal(ids.includes(short), false, 'sessionsOf() must leave out a session past its expiresAt')
        assert.deepEqual(ids, [long])
      }
    },
    {
      name: 'index-moves',
      title: 'a later save with another userId moves the session; with userId null it leaves the index',
      async run (factory) {
        const id = await saveNew(factory, { n: 1 }, 60_000, 'u1')
        const moved = await mustLoad(factory, id)
        moved.set('n', 2)
        await factory.save(prepare(moved, 60_000, 'u2'))
        assert.deepEqual(await listed(factory, 'u1'), [], 'no longer under its old user')
        assert.deepEqual((await listed(factory, 'u2')).map((entry) => entry.id), [id], 'listed under its new user')
        const anonymous = await mustLoad(factory, id)
        anonymous.set('n', 3)
        await factory.save(prepare(anonymous, 60_000, null))
        assert.deepEqual(await listed(factory, 'u2'), [], 'a session saved with userId null is in no list')
      }
    },
    {
      name: 'index-stale-save',
      title: 'a save that did not change the user (a stale request) leaves the session where another request filed it',
      async run (factory) {
        const id = await saveNew(factory, { step: 'password' }, 60_000, null)
        const stale = await mustLoad(factory, id)
        const signedIn = await mustLoad(factory, id)
        signedIn.set('user', 'u1')
        await factory.save(prepare(signedIn, 60_000, 'u1'))
        stale.set('poll', 1)
        await factory.save(prepare(stale, 60_000, null))
        assert.deepEqual((await listed(factory, 'u1')).map((entry) => entry.id), [id], 'save() must file or unfile only when session.filedUnder differs from the user of the record it was loaded from')
      }
    },
    {
      name: 'index-touch-files',
      title: 'touch() files a session that was never filed (saved before userKey was set)',
      async run (factory) {
        const touch = needs(factory, 'touch', 'userIndex')
        const id = await saveNew(factory, { user: 'u1' }, 60_000, null)
        await touch(prepare(await mustLoad(factory, id), 60_000, 'u1'))
        assert.deepEqual((await listed(factory, 'u1')).map((entry) => entry.id), [id])
      }
    },
    {
      name: 'index-revoke',
      title: 'after revokeUser(user), a session of the user from before cannot be saved under a new id; one signed in after can',
      async run (factory) {
        const revoke = needs(factory, 'revokeUser', 'userIndex')
        const id = await saveNew(factory, { user: 'u1' }, 60_000, 'u1')
        const before = await mustLoad(factory, id)
        await revoke('u1', null)
        // A rotation (regenerate): the same session, new again, under a new id.
        internals.markNew(before)
        let refused: unknown = null
        try {
          await factory.save(prepare(before, 60_000, 'u1'))
        } catch (error) {
          refused = error
        }
        assert.equal((refused as { code?: unknown } | null)?.code, 'FST_SESSION_GONE', 'save() must throw errors.FST_SESSION_GONE for a rotation of a session loaded before revokeUser')
        await mustBeGone(factory, before.id as string, 'the refused rotation must store nothing')
        assert.deepEqual((await listed(factory, 'u1')).map((entry) => entry.id), [id], 'nor file anything')
        // A login after revokeUser takes the user's new generation: its rotations go through.
        const login = await saveNew(factory, { user: 'u1' }, 60_000, 'u1')
        const after = await mustLoad(factory, login)
        internals.markNew(after)
        const rotated = await factory.save(prepare(after, 60_000, 'u1'))
        assert.deepEqual((await listed(factory, 'u1')).map((entry) => entry.id).sort(), [id, login, rotated].sort(), 'a session signed in after revokeUser rotates as before')
      }
    }
  ]
}

/** The title a check is reported under: what it checks, then the name `skip` and `todo` take. */
function titleOf (check: Check<string, unknown>): string {
  return `${check.title} [${check.name}]`
}

/** Rejects names that are no check of the suite, so a typo cannot silently skip nothing. */
function checkNames (label: string, given: Record<string, unknown> | undefined, known: Set<string>): void {
  for (const name of Object.keys(given ?? {})) {
    if (!known.has(name)) throw new TypeError(`${label}: "${name}" is not a check of this suite`)
  }
}

/** Registers every check of `groups` in a describe of its own, each on a fresh factory. */
function register<Name extends string, Context> (
  name: string,
  groups: Array<[string, Array<Check<Name, Context>>, string | false]>,
  options: CommonOptions & { skip?: Partial<Record<Name, string>>, todo?: Partial<Record<Name, string>> },
  run: (check: Check<Name, Context>) => Promise<void>
): void {
  const { describe, it } = options.test ?? nodeTest
  const skips: Partial<Record<string, string>> = options.skip ?? {}
  const todos: Partial<Record<string, string>> = options.todo ?? {}
  for (const [title, checks, off] of groups) {
    describe(`${name}: ${title}`, () => {
      for (const check of checks) {
        const skip = off !== false
          ? off
          : skips[check.name] ?? (options.stateless === true && check.stateless !== undefined ? check.stateless : false)
        it(titleOf(check), { skip, todo: todos[check.name] ?? false, timeout: options.timeout ?? DEFAULT_TIMEOUT }, () => run(check))
      }
    })
  }
}

/**
 * Registers the factory conformance checks for the factory `make` builds (a fresh one per check),
 * with node:test, or with the runner in `options.test`.
 */
export function runFactorySuite (name: string, make: Make, options: FactorySuiteOptions = {}): void {
  const groups = options.groups ?? {}
  if ((groups.required as boolean | undefined) === false) {
    throw new TypeError('runFactorySuite: the required group cannot be switched off (mark a check todo instead)')
  }
  const known = new Set(Object.values(FACTORY_CHECKS).flat().map((check) => check.name))
  checkNames('runFactorySuite skip', options.skip, known)
  checkNames('runFactorySuite todo', options.todo, known)
  for (const check of FACTORY_CHECKS.required) {
    if (options.skip?.[check.name] !== undefined) {
      throw new TypeError(`runFactorySuite skip: "${check.name}" is a required check, which cannot be skipped (mark it todo instead)`)
    }
  }
  const stateless = options.stateless === true && 'a stateless factory has no shared record to merge into, destroy or touch'
  const selected: Array<[string, Array<Check<FactoryCheck, SessionFactory<any>>>, string | false]> = [
    ['SessionFactory conformance, required', FACTORY_CHECKS.required, false],
    ['SessionFactory conformance, recommended', FACTORY_CHECKS.recommended, groups.recommended === false ? 'the recommended group is switched off' : stateless],
    ['SessionFactory conformance, user index', FACTORY_CHECKS.userIndex, groups.userIndex === false && 'the user index group is switched off']
  ]
  register(name, selected, options, async (check) => {
    const factory = await make()
    try {
      await check.run(factory)
    } finally {
      await options.cleanup?.(factory)
      await factory.close?.()
    }
  })
}

// --- The plugin suite ---------------------------------------------------------------------------

interface PluginContext {
  /** A fresh app with the plugin on the check's factory, closed after the check. */
  app (secret: string | string[]): Promise<FastifyInstance>
}

function secret (): string {
  return randomBytes(32).toString('base64url')
}

/** The factory's methods without `close`: several apps share one factory, which the check closes once. */
function viewOf (factory: SessionFactory<any>): SessionFactory<any> {
  const view: SessionFactory<any> = { load: (id) => factory.load(id), save: (session) => factory.save(session) }
  for (const method of ['destroy', 'touch', 'sessionsOf'] as const) {
    const fn = factory[method]
    if (typeof fn === 'function') Object.assign(view, { [method]: fn.bind(factory) })
  }
  return view
}

/** The value of the response's (last) `sid` Set-Cookie, which it must have: '' when it clears the cookie. */
function sidOf (response: LightMyRequestResponse, what: string): string {
  const cookies = response.cookies as Array<{ name: string, value: string, maxAge?: number, expires?: Date }>
  const cookie = cookies.findLast((c) => c.name === 'sid')
  assert.ok(cookie !== undefined, `${what}: the response must have a session Set-Cookie`)
  const expired = (cookie.expires?.getTime() ?? Infinity) <= Date.now() || cookie.maxAge === 0
  return expired ? '' : cookie.value
}

/** The session cookie a successful response sets, ready for a Cookie header. */
/** The session cookie a response sets, if any. */
function cookieOf (response: LightMyRequestResponse): string | undefined {
  const cookie = response.cookies.find((c) => c.name === 'sid')
  return cookie === undefined || cookie.value === '' ? undefined : `sid=${cookie.value}`
}

function mustSetCookie (response: LightMyRequestResponse, what: string): string {
  assert.equal(response.statusCode, 200, `${what}: status ${response.statusCode}`)
  const value = sidOf(response, what)
  assert.notEqual(value, '', `${what}: the response must set the session cookie, not clear it`)
  return `sid=${value}`
}

async function dataOf (app: FastifyInstance, cookie: string): Promise<Record<string, unknown>> {
  const response = await app.inject({ url: '/', headers: { cookie } })
  assert.equal(response.statusCode, 200, `GET /: status ${response.statusCode}`)
  return response.json().data
}

function post (app: FastifyInstance, url: string, payload: object, cookie?: string): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url, payload, headers: cookie === undefined ? {} : { cookie } })
}

async function buildPluginApp (factory: SessionFactory<any>, secret: string | string[]): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(sessionPlugin, { factory, secret })
  // Each answer reads the session, and says up front that no shared cache may keep it.
  app.addHook('preHandler', async (_request, reply) => { reply.header('cache-control', 'private, no-store') })
  app.get('/', async (request) => ({ data: { ...request.session.data } }))
  app.post<{ Body: Record<string, unknown> }>('/set', async (request) => {
    for (const [key, value] of Object.entries(request.body)) request.session.set(key, value)
    return { data: { ...request.session.data } }
  })
  app.post<{ Body: { user: string } }>('/login', async (request) => {
    await request.session.regenerate()
    request.session.set('user', request.body.user)
    return { user: request.body.user }
  })
  app.post('/logout', async (request) => {
    await request.session.destroy()
    return { ok: true }
  })
  return app
}

const PLUGIN_CHECKS: Array<Check<PluginCheck, PluginContext>> = [
  {
    name: 'first-visit',
    title: 'a first visit that stores data gets a session cookie',
    async run ({ app }) {
      const server = await app(secret())
      const response = await post(server, '/set', { visits: 1 })
      assert.deepEqual(response.json(), { data: { visits: 1 } })
      mustSetCookie(response, 'POST /set')
    }
  },
  {
    name: 'returning-visit',
    title: 'a returning visit sees its data, and its changes are kept',
    async run ({ app }) {
      const server = await app(secret())
      const first = mustSetCookie(await post(server, '/set', { visits: 1, cart: ['apple'] }), 'first visit')
      assert.deepEqual(await dataOf(server, first), { visits: 1, cart: ['apple'] })
      // A changed session is saved; a new cookie comes only when the id changed (a stateless factory's does).
      const changed = await post(server, '/set', { visits: 2 }, first)
      assert.equal(changed.statusCode, 200, `second visit: status ${changed.statusCode}`)
      const second = cookieOf(changed) ?? first
      assert.deepEqual(await dataOf(server, second), { visits: 2, cart: ['apple'] })
    }
  },
  {
    name: 'login',
    title: 'login with regenerate() changes the cookie; the old cookie does not load the logged-in data',
    async run ({ app }) {
      const server = await app(secret())
      const before = mustSetCookie(await post(server, '/set', { cart: ['apple'] }), 'POST /set')
      const after = mustSetCookie(await post(server, '/login', { user: 'ada' }, before), 'POST /login')
      assert.notEqual(after, before, 'regenerate() must give the session a new cookie')
      assert.deepEqual(await dataOf(server, after), { cart: ['apple'], user: 'ada' })
      assert.equal((await dataOf(server, before)).user, undefined, 'the cookie from before the login must not reach the logged-in session')
    }
  },
  {
    name: 'logout-clears-cookie',
    title: 'logout with destroy() clears the cookie',
    async run ({ app }) {
      const server = await app(secret())
      const cookie = mustSetCookie(await post(server, '/login', { user: 'ada' }), 'POST /login')
      const response = await post(server, '/logout', {}, cookie)
      assert.equal(response.statusCode, 200)
      assert.equal(sidOf(response, 'POST /logout'), '', 'the logout response must clear the session cookie')
    }
  },
  {
    name: 'logout-kills-old-cookie',
    title: 'after logout, the old cookie loads nothing',
    stateless: 'a stateless session lives in the cookie: an old copy stays valid until it expires',
    async run ({ app }) {
      const server = await app(secret())
      const cookie = mustSetCookie(await post(server, '/login', { user: 'ada' }), 'POST /login')
      assert.equal((await post(server, '/logout', {}, cookie)).statusCode, 200)
      assert.deepEqual(await dataOf(server, cookie), {}, 'the logged-out session must be gone')
    }
  },
  {
    name: 'secret-rotation',
    title: 'a cookie signed with the old secret works after a new one is prepended, and is re-signed',
    async run ({ app }) {
      const oldSecret = secret()
      const newSecret = secret()
      const before = await app(oldSecret)
      const cookie = mustSetCookie(await post(before, '/set', { visits: 1 }), 'POST /set')
      const rotated = await app([newSecret, oldSecret])
      const response = await rotated.inject({ url: '/', headers: { cookie } })
      assert.deepEqual(response.json(), { data: { visits: 1 } }, 'the old signature still verifies')
      const resigned = mustSetCookie(response, 'GET / with an old signature')
      assert.notEqual(resigned, cookie, 'the cookie is re-signed')
      const after = await app(newSecret)
      assert.deepEqual(await dataOf(after, resigned), { visits: 1 }, 'the new cookie is signed with the new secret')
      assert.deepEqual(await dataOf(after, cookie), {}, 'and the old one was not')
    }
  }
]

/**
 * Registers checks of the factory behind the plugin: a fresh Fastify app per check (and a fresh
 * factory from `make`), driven with `inject`; with node:test, or with the runner in `options.test`.
 */
export function runPluginSuite (name: string, make: Make, options: PluginSuiteOptions = {}): void {
  const known = new Set<string>(PLUGIN_CHECKS.map((check) => check.name))
  checkNames('runPluginSuite skip', options.skip, known)
  checkNames('runPluginSuite todo', options.todo, known)
  register(name, [['the plugin on this factory', PLUGIN_CHECKS, false]], options, async (check) => {
    const factory = await make()
    const apps: FastifyInstance[] = []
    const app = async (secret: string | string[]): Promise<FastifyInstance> => {
      const server = await buildPluginApp(viewOf(factory), secret)
      apps.push(server)
      return server
    }
    try {
      await check.run({ app })
    } finally {
      await options.cleanup?.(factory)
      for (const server of apps) await server.close()
      await factory.close?.()
    }
  })
}
