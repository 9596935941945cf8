// The conformance suites themselves (src/testing.ts): each check can fail, and fails for the bug
// it names; groups, skip, todo and the runner option do what they say. The factories' own suite
// files (test/factories/*-suite.test.ts, test/examples/*-factory.test.ts) show them passing.
import { AssertionError } from 'node:assert'
import t from 'tap'
import { MapFactory } from '../examples/custom-factory.js'
import { MemoryFactory, Session, type IndexedSession, type SessionFactory } from '../src/index.js'
import { runFactorySuite, runPluginSuite, type FactoryCheck, type FactorySuiteOptions, type PluginSuiteOptions } from '../src/testing.js'
import { StaleIndexFactory } from './helpers/stale-index.js'
import { recordingRunner, USER_INDEX_CHECKS } from './helpers/suite-runners.js'

/** MemoryFactory with the bug issue 18 is about: a save writes the session's data whole, not its changes(). */
class WholeWrites extends MemoryFactory {
  override save (session: Session): string {
    if (session.isNew) return super.save(session)
    const whole = new Session({ ...session.data })
    Object.assign(whole, { id: session.id, createdAt: session.createdAt, touchedAt: session.touchedAt, expiresAt: session.expiresAt })
    return super.save(whole)
  }
}

/** A factory with only the methods named, on a MapFactory (which has them all). */
function only (...methods: Array<'destroy' | 'touch' | 'sessionsOf'>): SessionFactory {
  const full = new MapFactory()
  const factory: SessionFactory = { load: (id) => full.load(id), save: (session) => full.save(session) }
  for (const method of methods) Object.assign(factory, { [method]: full[method].bind(full) })
  return factory
}

async function outcomesOf (make: () => SessionFactory<any>, options: FactorySuiteOptions = {}, names?: string[]) {
  const recorder = recordingRunner()
  runFactorySuite('under test', make, { ...options, test: recorder.test })
  return recorder.run(names)
}

t.test('a factory that writes session.data whole fails the merge checks, in both orders', async (t) => {
  const merges = ['merges-parallel-saves', 'merges-a-then-b', 'merges-b-then-a']
  const buggy = await outcomesOf(() => new WholeWrites(), {}, merges)
  t.same([...buggy.values()].map((outcome) => outcome.status), ['fail', 'fail', 'fail'])
  // A then B: B's whole write puts A's counter back to 0. B then A: A's puts B's note back.
  t.match(buggy.get('merges-a-then-b')?.error, { code: 'ERR_ASSERTION', actual: 0, expected: 1 })
  t.match(buggy.get('merges-b-then-a')?.error, { code: 'ERR_ASSERTION', actual: 'before', expected: 'after' })
  const fixed = await outcomesOf(() => new MemoryFactory(), {}, merges)
  t.same([...fixed.values()].map((outcome) => outcome.status), ['pass', 'pass', 'pass'], 'MemoryFactory, which applies changes(), passes them')

  const required = await outcomesOf(() => new WholeWrites(), { groups: { recommended: false, userIndex: false } })
  t.same([...required.values()].filter((outcome) => outcome.status === 'fail'), [], 'the bug is no required check\'s business')
})

t.test('a check that needs a method the factory lacks says to implement it or switch its group off', async (t) => {
  const bare = await outcomesOf(() => only())
  for (const name of ['destroy-forgets', 'destroy-result', 'no-resurrection-by-save', 'no-resurrection-by-touch', 'touch-extends']) {
    t.equal(bare.get(name)?.status, 'fail', name)
    t.match(bare.get(name)?.error?.message, /groups: \{ recommended: false \}/, name)
  }
  for (const name of USER_INDEX_CHECKS) {
    t.equal(bare.get(name)?.status, 'fail', name)
    // Each names the first method it needs that the factory lacks (touch() or revokeUser() before sessionsOf() in two).
    t.match(bare.get(name)?.error?.message, /(sessionsOf|touch|revokeUser)\(\).*groups: \{ userIndex: false \}/, name)
  }
  t.equal(bare.get('merges-a-then-b')?.status, 'pass', 'a check that needs no optional method runs as usual')

  const indexOnly = await outcomesOf(() => only('sessionsOf'), {}, ['index-lists', 'index-destroy'])
  t.equal(indexOnly.get('index-lists')?.status, 'pass', 'without touch(), the listing is checked after saves only')
  t.match(indexOnly.get('index-destroy')?.error?.message, /destroy\(\).*groups: \{ userIndex: false \}/)
})

/** MapFactory with one method replaced; `inner` is the MapFactory's own (bound) method. */
function patched<M extends 'load' | 'save' | 'destroy' | 'touch' | 'sessionsOf'> (
  method: M,
  replace: (inner: MapFactory[M], factory: MapFactory) => (...args: any[]) => unknown
): () => MapFactory {
  return () => {
    const factory = new MapFactory()
    const inner = (factory[method] as (...args: any[]) => unknown).bind(factory) as MapFactory[M]
    return Object.assign(factory, { [method]: replace(inner, factory) })
  }
}

/** A user index kept beside the store and never pruned: it forgets neither destroyed, expired nor moved sessions. */
function naiveIndex (): SessionFactory {
  const factory = new MapFactory()
  const index = new Map<string, Map<string, IndexedSession>>()
  return {
    load: (id) => factory.load(id),
    save (session) {
      const id = factory.save(session)
      if (session.filedUnder !== null) {
        if (!index.has(session.filedUnder)) index.set(session.filedUnder, new Map())
        index.get(session.filedUnder)?.set(id, { id, createdAt: session.createdAt, touchedAt: session.touchedAt, expiresAt: session.expiresAt })
      }
      return id
    },
    destroy: (id) => factory.destroy(id),
    sessionsOf: (userId) => [...index.get(userId)?.values() ?? []]
  }
}

t.test('each check fails on a factory with the bug it names', async (t) => {
  const cases: Array<[FactoryCheck, () => SessionFactory<any>]> = [
    ['load-unknown', patched('load', () => (id: string) => new Session({}, id))],
    // Restarts the timeouts on every load, as the README warns.
    ['round-trip', patched('load', (load) => (id: string) => { const session = load(id); if (session !== null) session.createdAt = Date.now(); return session })],
    ['keeps-expires-at', patched('load', (load) => (id: string) => { const session = load(id); if (session !== null) session.expiresAt = null; return session })],
    // Stores its text as ASCII: every other character becomes "?".
    ['json-round-trip', patched('save', (save, factory) => (session: Session) => {
      const id = save(session)
      factory.rows.set(id, (factory.rows.get(id) as string).replace(/[^\x20-\x7e]/g, '?'))
      return id
    })],
    // Keeps the Session object itself.
    ['copy', () => {
      const kept = new Map<string, Session>()
      return { load: (id: string) => kept.get(id) ?? null, save: (session: Session) => { kept.set(session.id as string, session); return session.id as string } }
    }],
    ['applies-changes', patched('save', (save) => (session: Session) => session.isNew ? save(session) : session.id)],
    ['expiry', patched('save', (save) => (session: Session) => save(Object.assign(session, { expiresAt: Date.now() + 60_000 })))],
    ['kept-apart', patched('save', (save) => (session: Session) => save(Object.assign(session, { id: 'one' })))],
    ['destroy-forgets', patched('destroy', () => () => undefined)],
    ['destroy-result', patched('destroy', () => () => true)],
    ['no-resurrection-by-save', () => new WholeWrites()],
    // Writes the session back whole to set its expiry.
    ['no-resurrection-by-touch', patched('touch', (_touch, factory) => (session: Session) => { factory.save(Object.assign(new Session({ ...session.data }), { id: session.id, expiresAt: session.expiresAt })) })],
    ['touch-extends', patched('touch', () => () => undefined)],
    ['index-lists', patched('sessionsOf', () => () => [])],
    ['index-apart', patched('sessionsOf', (sessionsOf) => () => [...sessionsOf('u1'), ...sessionsOf('u2')])],
    ['index-destroy', naiveIndex],
    ['index-expiry', naiveIndex],
    ['index-moves', naiveIndex],
    // More stale indexes, each against the whole group: test/testing-user-index.test.ts.
    ['index-counts', () => new StaleIndexFactory('racy')]
  ]
  const outcomes = await Promise.all(cases.map(([name, make]) => outcomesOf(make, {}, [name])))
  cases.forEach(([name], i) => {
    const outcome = outcomes[i]?.get(name)
    t.equal(outcome?.status, 'fail', name)
    t.ok(outcome?.error instanceof AssertionError, `${name} fails an assertion`)
  })
  const healthy = await outcomesOf(() => new MapFactory(), {}, cases.map(([name]) => name))
  t.equal(healthy.size, cases.length)
  t.same([...healthy.values()].filter((outcome) => outcome.status !== 'pass'), [], 'and each passes on examples/custom-factory.ts')
})

t.test('groups, skip, todo and timeout reach the runner as skip, todo and timeout options', async (t) => {
  const recorder = recordingRunner()
  runFactorySuite('under test', () => new MapFactory(), {
    test: recorder.test,
    groups: { userIndex: false },
    skip: { 'touch-extends': 'not today' },
    todo: { expiry: 'soon', 'merges-a-then-b': 'later' },
    timeout: 1234
  })
  const outcomes = await recorder.run(['load-unknown', 'expiry', 'merges-a-then-b', 'touch-extends', 'index-lists'])
  t.match(outcomes.get('load-unknown'), { group: 'under test: SessionFactory conformance, required', status: 'pass', options: { skip: false, todo: false, timeout: 1234 } })
  t.match(outcomes.get('expiry'), { status: 'pass', options: { todo: 'soon' } }, 'a todo check still runs')
  t.match(outcomes.get('merges-a-then-b'), { group: 'under test: SessionFactory conformance, recommended', options: { todo: 'later' } })
  t.match(outcomes.get('touch-extends'), { status: 'skip', options: { skip: 'not today' } })
  t.match(outcomes.get('index-lists'), { group: 'under test: SessionFactory conformance, user index', status: 'skip', options: { skip: /switched off/ } })

  const cleaned: string[] = []
  const cleanup = (factory: SessionFactory<any>): void => { cleaned.push(factory instanceof MapFactory ? 'map' : 'other') }
  await outcomesOf(() => new MapFactory(), { cleanup }, ['copy', 'merges-a-then-b'])
  const plugin = recordingRunner()
  runPluginSuite('under test', () => new MapFactory(), { test: plugin.test, cleanup, timeout: 4321 })
  const first = await plugin.run(['first-visit'])
  t.match(first.get('first-visit'), { status: 'pass', options: { timeout: 4321 } })
  t.same(cleaned, ['map', 'map', 'map'], 'cleanup gets the factory of each check, in both suites')

  const off = await outcomesOf(() => new MapFactory(), { groups: { recommended: false } }, ['merges-a-then-b', 'index-apart'])
  t.match(off.get('merges-a-then-b'), { status: 'skip', options: { skip: /switched off/, timeout: 30_000 } })
  t.equal(off.get('index-apart')?.status, 'pass', 'the user index group is on by default')
})

t.test('a stateless factory skips what the plugin does for it, each with its reason', async (t) => {
  const factories = await outcomesOf(() => new MapFactory(), { stateless: true, groups: { userIndex: false } })
  t.match(factories.get('expiry'), { status: 'skip', options: { skip: /plugin/ } })
  for (const name of ['merges-parallel-saves', 'destroy-forgets', 'touch-extends']) {
    t.match(factories.get(name), { status: 'skip', options: { skip: /stateless/ } }, name)
  }
  t.equal(factories.get('copy')?.status, 'pass')

  const recorder = recordingRunner()
  runPluginSuite('under test', () => new MapFactory(), { test: recorder.test, stateless: true })
  const plugin = await recorder.run(['logout-kills-old-cookie', 'logout-clears-cookie'])
  t.match(plugin.get('logout-kills-old-cookie'), { status: 'skip', options: { skip: /stateless/ } })
  t.equal(plugin.get('logout-clears-cookie')?.status, 'pass')
})

t.test('options that would make the suite check less than it seems are refused at once', async (t) => {
  const make = (): MapFactory => new MapFactory()
  const test = recordingRunner().test
  t.throws(() => runFactorySuite('x', make, { test, groups: { required: false as unknown as true } }), TypeError, 'the required group stays on')
  t.throws(() => runFactorySuite('x', make, { test, skip: { copy: 'no' } }), TypeError, 'a required check is not skipped')
  t.throws(() => runFactorySuite('x', make, { test, skip: { 'merges-a-than-b': 'typo' } as FactorySuiteOptions['skip'] }), TypeError, 'a name that is no check')
  t.throws(() => runFactorySuite('x', make, { test, todo: { nope: 'typo' } as FactorySuiteOptions['todo'] }), TypeError)
  t.throws(() => runPluginSuite('x', make, { test, skip: { copy: 'no' } as PluginSuiteOptions['skip'] }), TypeError)
  t.throws(() => runPluginSuite('x', make, { test, todo: { nope: 'no' } as PluginSuiteOptions['todo'] }), TypeError)
  t.doesNotThrow(() => runFactorySuite('x', make, { test, groups: { required: true }, todo: { copy: 'a required check may be todo' } }))
})

t.test('the plugin suite fails a factory whose bug shows through the plugin', async (t) => {
  async function pluginOutcomes (make: () => SessionFactory<any>, names: string[]) {
    const recorder = recordingRunner()
    runPluginSuite('under test', make, { test: recorder.test })
    return recorder.run(names)
  }
  const amnesiac = await pluginOutcomes(patched('save', (save) => (session: Session) => session.isNew ? save(session) : session.id), ['returning-visit'])
  t.equal(amnesiac.get('returning-visit')?.status, 'fail', 'a save of a loaded session that stores nothing')
  const immortal = await pluginOutcomes(patched('destroy', () => () => undefined), ['logout-kills-old-cookie', 'login'])
  t.equal(immortal.get('logout-kills-old-cookie')?.status, 'fail', 'a destroy() that keeps the record')
  t.equal(immortal.get('login')?.status, 'pass', 'login keeps its promise: the old cookie never held the user')
  const closes: string[] = []
  const all = await pluginOutcomes(() => Object.assign(new MapFactory(), { close: () => { closes.push('closed') } }), ['first-visit', 'returning-visit', 'login', 'logout-clears-cookie', 'logout-kills-old-cookie', 'secret-rotation'])
  t.same([...all.values()].map((outcome) => outcome.status), ['pass', 'pass', 'pass', 'pass', 'pass', 'pass'])
  t.equal(closes.length, 6, 'each check closes its factory once, whatever number of apps it used')
})
