// The recommended group: what a factory with shared state should do: merge concurrent saves,
// destroy for good, and touch without rewriting data.
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import type { SessionFactory } from '../factory.js'
import { generateId } from '../id.js'
import { Session } from '../session.js'
import { mustBeGone, mustLoad, needs, prepare, saveNew } from './factory-helpers.js'
import type { Check } from './runner.js'

/** The checks of the recommended group. */
export type RecommendedCheck =
  | 'merges-parallel-saves' | 'merges-a-then-b' | 'merges-b-then-a' | 'destroy-forgets' | 'destroy-result'
  | 'no-resurrection-by-save' | 'no-resurrection-by-touch' | 'touch-extends'

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

export const RECOMMENDED_CHECKS: Array<Check<RecommendedCheck, SessionFactory<any>>> = [
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
]
