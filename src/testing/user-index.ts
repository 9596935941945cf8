// The user index group: `sessionsOf(user)` lists exactly the user's live sessions.
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import type { SessionFactory } from '../factory.js'
import { Session } from '../session.js'
import { byId, entryOf, listed, mustLoad, needs, prepare, saveNew } from './factory-helpers.js'
import type { Check } from './runner.js'

/** The checks of the user index group. */
export type UserIndexCheck = 'index-lists' | 'index-apart' | 'index-destroy' | 'index-expiry' | 'index-moves'

export const USER_INDEX_CHECKS: Array<Check<UserIndexCheck, SessionFactory<any>>> = [
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
  }
]
