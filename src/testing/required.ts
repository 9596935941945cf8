// The required group: what every factory must do, stateless ones included (their expiry aside).
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import type { SessionFactory } from '../factory.js'
import { generateId } from '../id.js'
import { Session } from '../session.js'
import { mustBeGone, mustLoad, prepare, saveNew } from './factory-helpers.js'
import type { Check } from './runner.js'

/** The checks of the required group. */
export type RequiredCheck = 'load-unknown' | 'round-trip' | 'keeps-expires-at' | 'json-round-trip' | 'copy' | 'applies-changes' | 'expiry' | 'kept-apart'

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

export const REQUIRED_CHECKS: Array<Check<RequiredCheck, SessionFactory<any>>> = [
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
]
