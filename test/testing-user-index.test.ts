// The kit's user index group sees a stale index through the public contract alone (issue 26):
// StaleIndexFactory re-reads every listed record, as RedisFactory does, so a check that only
// destroys a session or waits for it to expire cannot see its bugs; each one below fails the
// check that looks at the index's own behaviour, and only that one.
import { AssertionError } from 'node:assert'
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { MapFactory } from '../examples/custom-factory.js'
import type { Session, SessionFactory } from '../src/index.js'
import { runFactorySuite, type FactoryCheck } from '../src/testing.js'
import { StaleIndexFactory, type IndexBug } from './helpers/stale-index.js'
import { recordingRunner, USER_INDEX_CHECKS } from './helpers/suite-runners.js'

// StaleIndexFactory keeps no generations and refiles on every save: the sign-out checks (a stale
// save, touch filing, revokeUser) are not what its bugs are about; MapFactory runs them below.
const SIGN_OUT_CHECKS: FactoryCheck[] = ['index-stale-save', 'index-touch-files', 'index-revoke']
const INDEX_CHECKS = USER_INDEX_CHECKS.filter((name) => !SIGN_OUT_CHECKS.includes(name))

async function userIndexOutcomes (bug: IndexBug): Promise<Map<string, { status: string, error?: Error }>> {
  const recorder = recordingRunner()
  runFactorySuite('under test', () => new StaleIndexFactory(bug), { test: recorder.test })
  return recorder.run(INDEX_CHECKS)
}

const EXPECTED: Record<IndexBug, FactoryCheck[]> = {
  none: [],
  // The id comes back in a new record under another user: the stale entry lists it as the old user's.
  'destroy-keeps-id': ['index-destroy'],
  'never-prunes': ['index-destroy'],
  // The entry is pruned at the first expiry though a save or touch extended the session.
  'first-expiry-score': ['index-expiry'],
  // Concurrent saves for one user lose entries.
  racy: ['index-counts']
}

t.test('each stale-index bug fails the user index check that looks for it, and no other', async (t) => {
  const bugs = Object.keys(EXPECTED) as IndexBug[]
  // In parallel: the expiry check waits 1.5 s on each factory.
  const outcomes = await Promise.all(bugs.map(userIndexOutcomes))
  bugs.forEach((bug, i) => {
    const outcome = outcomes[i] as Map<string, { status: string, error?: Error }>
    t.same([...outcome.keys()].sort(), [...INDEX_CHECKS].sort(), `${bug}: every check of the group ran`)
    const failed = [...outcome].filter(([, { status }]) => status === 'fail')
    t.same(failed.map(([name]) => name), EXPECTED[bug], `${bug}: fails ${EXPECTED[bug].join(', ') || 'nothing'}`)
    for (const [name, { error }] of failed) t.ok(error instanceof AssertionError, `${bug}: ${name} fails an assertion, not a crash`)
  })
})

t.test('the group passes a sound index whatever ids the factory chooses, with or without touch()', async (t) => {
  // Ids of its own for new sessions: a record never comes back under a destroyed id.
  const ownIds = (): SessionFactory => {
    const factory = new MapFactory()
    return Object.assign(factory, { save: (session: Session) => MapFactory.prototype.save.call(factory, session.isNew ? Object.assign(session, { id: randomUUID() }) : session) })
  }
  const noTouch = (): SessionFactory => Object.assign(new MapFactory(), { touch: undefined })
  for (const [what, make] of [['ids of its own', ownIds], ['no touch()', noTouch]] as const) {
    const recorder = recordingRunner()
    runFactorySuite('under test', make, { test: recorder.test })
    const outcomes = await recorder.run(INDEX_CHECKS)
    t.same([...outcomes.values()].map((outcome) => outcome.status), INDEX_CHECKS.map(() => 'pass'), what)
  }
})

t.test('a factory whose revokeUser() raises nothing fails index-revoke, and only that check', async (t) => {
  const recorder = recordingRunner()
  runFactorySuite('under test', () => Object.assign(new MapFactory(), { revokeUser: () => {} }), { test: recorder.test })
  const outcomes = await recorder.run(USER_INDEX_CHECKS)
  const failed = [...outcomes].filter(([, { status }]) => status === 'fail')
  t.same(failed.map(([name]) => name), ['index-revoke'])
  t.ok(failed[0]?.[1].error instanceof AssertionError, 'an assertion, not a crash')
})
