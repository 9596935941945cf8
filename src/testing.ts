// The factory conformance suite: `runFactorySuite('my store', () => new MyFactory())` in a
// node:test file checks that a factory keeps the contract the plugin relies on.
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, it } from 'node:test'
import type { SessionFactory } from './factory.js'
import { generateId } from './options.js'
import { Session } from './session.js'

export interface FactorySuiteOptions {
  /**
   * The factory keeps nothing: the id it returns is the session itself (a sealed cookie).
   * Checks that need shared state (merging concurrent saves, destroy, revocation) are skipped.
   */
  stateless?: boolean
  /** Called after each check with the factory it used, before `close()`. */
  cleanup?: (factory: SessionFactory<any>) => Promise<void> | void
}

type Make = () => SessionFactory<any> | Promise<SessionFactory<any>>

// What the plugin does before a save: an id for a new session, and an expiry.
function prepare<D extends object> (session: Session<D>, ttlMs = 60_000): Session<D> {
  if (session.isNew) session.id = generateId()
  session.touchedAt = Date.now()
  session.expiresAt = Date.now() + ttlMs
  return session
}

async function saveNew (factory: SessionFactory<any>, data: Record<string, unknown>, ttlMs?: number): Promise<string> {
  return factory.save(prepare(new Session<any>(data), ttlMs))
}

async function mustLoad (factory: SessionFactory<any>, id: string): Promise<Session<any>> {
  const session = await factory.load(id)
  assert.ok(session instanceof Session, 'load() of a saved id must resolve to a Session')
  return session
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

/** Registers the conformance checks for one factory with node:test. */
export function runFactorySuite (name: string, make: Make, options: FactorySuiteOptions = {}): void {
  const stateful = options.stateless !== true

  async function use (check: (factory: SessionFactory<any>) => Promise<void>): Promise<void> {
    const factory = await make()
    try {
      await check(factory)
    } finally {
      await options.cleanup?.(factory)
      await factory.close?.()
    }
  }

  describe(`${name}: SessionFactory conformance`, () => {
    it('load() of an id it never issued resolves to null', () => use(async (factory) => {
      assert.equal(await factory.load(generateId()), null)
      assert.equal(await factory.load(''), null)
      assert.equal(await factory.load('not.even.close%00'), null)
    }))

    it('save() of a new session resolves to a non-empty id that load() opens', () => use(async (factory) => {
      const session = prepare(new Session<any>({ user: 'ada' }))
      const createdAt = session.createdAt
      const touchedAt = session.touchedAt
      const id = await factory.save(session)
      assert.equal(typeof id, 'string')
      assert.ok(id.length > 0)
      const loaded = await mustLoad(factory, id)
      assert.equal(loaded.isNew, false)
      assert.equal(loaded.isModified, false)
      assert.equal(loaded.get('user'), 'ada')
      assert.equal(loaded.createdAt, createdAt)
      assert.equal(loaded.touchedAt, touchedAt)
    }))

    it('data round-trips through JSON exactly, odd keys included', () => use(async (factory) => {
      const polluted = JSON.parse('{"__proto__": {"polluted": true}, "safe": 1}')
      const id = await saveNew(factory, { ...SAMPLE, polluted })
      const loaded = await mustLoad(factory, id)
      assert.deepEqual({ ...loaded.data, polluted: undefined }, { ...SAMPLE, polluted: undefined })
      const back = loaded.get('polluted') as Record<string, unknown>
      assert.equal(back.safe, 1)
      assert.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype was polluted')
    }))

    it('a loaded session is a copy: changing it without save() leaves the store alone', () => use(async (factory) => {
      const id = await saveNew(factory, { cart: ['apple'] })
      const loaded = await mustLoad(factory, id)
      ;(loaded.get('cart') as string[]).push('pear')
      loaded.set('extra', true)
      const again = await mustLoad(factory, id)
      assert.deepEqual(again.get('cart'), ['apple'])
      assert.equal(again.has('extra'), false)
    }))

    it('save() of a loaded session applies its sets and deletes and keeps the rest', () => use(async (factory) => {
      const id = await saveNew(factory, { keep: 1, change: 'old', drop: true })
      const loaded = await mustLoad(factory, id)
      loaded.set('change', 'new').set('add', [1])
      loaded.delete('drop')
      const next = await factory.save(prepare(loaded))
      const again = await mustLoad(factory, next)
      assert.deepEqual({ ...again.data }, { keep: 1, change: 'new', add: [1] })
    }))

    it('two concurrent saves of one session that change different keys both survive', { skip: !stateful && 'a stateless factory has no shared record to merge into' }, () => use(async (factory) => {
      const id = await saveNew(factory, { base: true })
      const [a, b] = await Promise.all([mustLoad(factory, id), mustLoad(factory, id)])
      a.set('a', 1)
      b.set('b', 2)
      b.delete('base')
      await Promise.all([factory.save(prepare(a)), factory.save(prepare(b))])
      const merged = await mustLoad(factory, id)
      assert.deepEqual({ ...merged.data }, { a: 1, b: 2 })
    }))

    it('destroy() forgets the session', { skip: !stateful && 'a stateless session lives in the cookie, which the plugin clears' }, () => use(async (factory) => {
      assert.equal(typeof factory.destroy, 'function', 'a store-backed factory must implement destroy()')
      const id = await saveNew(factory, { user: 'ada' })
      await factory.destroy!(id)
      assert.equal(await factory.load(id), null)
      await factory.destroy!(id) // destroying twice is not an error
    }))

    it('a save that races a destroy does not bring the session back (logout race)', { skip: !stateful && 'nothing to revoke' }, () => use(async (factory) => {
      const id = await saveNew(factory, { user: 'ada' })
      const racer = await mustLoad(factory, id)
      await factory.destroy!(id)
      racer.set('late', true)
      await factory.save(prepare(racer))
      assert.equal(await factory.load(id), null)
    }))

    it('a session past its expiresAt no longer loads', { skip: !stateful && 'the plugin enforces a stateless session\'s timeouts' }, () => use(async (factory) => {
      // Generous margins: a loaded machine may take a while between the save and the first load.
      const id = await saveNew(factory, { user: 'ada' }, 1000)
      assert.ok(await factory.load(id))
      await sleep(1500)
      assert.equal(await factory.load(id), null)
    }))

    it('touch() extends the expiry without changing data', { skip: !stateful && 'a stateless factory is rolled by save()' }, () => use(async (factory) => {
      if (factory.touch === undefined) return
      const id = await saveNew(factory, { user: 'ada' }, 250)
      const loaded = await mustLoad(factory, id)
      loaded.touchedAt = Date.now()
      loaded.expiresAt = Date.now() + 60_000
      await factory.touch(loaded)
      await sleep(400)
      const again = await mustLoad(factory, id)
      assert.equal(again.get('user'), 'ada')
      assert.equal(again.touchedAt, loaded.touchedAt)
    }))

    it('touch() of a destroyed session does not bring it back', { skip: !stateful && 'nothing to revoke' }, () => use(async (factory) => {
      if (factory.touch === undefined) return
      const id = await saveNew(factory, { user: 'ada' })
      const loaded = await mustLoad(factory, id)
      await factory.destroy!(id)
      loaded.expiresAt = Date.now() + 60_000
      await factory.touch(loaded)
      assert.equal(await factory.load(id), null)
    }))

    it('sessions are kept apart', () => use(async (factory) => {
      const ids = await Promise.all(Array.from({ length: 20 }, (_, i) => saveNew(factory, { n: i })))
      assert.equal(new Set(ids).size, ids.length)
      const loaded = await Promise.all(ids.map((id) => mustLoad(factory, id)))
      assert.deepEqual(loaded.map((s) => s.get('n')), ids.map((_, i) => i))
    }))
  })
}
