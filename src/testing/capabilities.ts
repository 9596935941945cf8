// The declared capabilities group: what a factory says it can do (`capabilities`), it does. A
// capability it does not declare is not checked here (its check passes with nothing to do).
import assert from 'node:assert/strict'
import type { SessionFactory } from '../factory.js'
import { generateId } from '../id.js'
import { mustLoad, prepare, saveNew } from './factory-helpers.js'
import type { Check } from './runner.js'

/** The checks of the declared capabilities group. */
export type CapabilityCheck = 'declares-destroy-reports' | 'declares-user-index' | 'declares-stateless'

export const CAPABILITY_CHECKS: Array<Check<CapabilityCheck, SessionFactory<any>>> = [
  {
    name: 'declares-destroy-reports',
    title: 'capabilities.destroyReports: destroy() answers true for a live record, then false once it is gone',
    async run (factory) {
      if (factory.capabilities?.destroyReports !== true) return
      assert.equal(typeof factory.destroy, 'function', 'capabilities.destroyReports needs a destroy(id) method')
      const destroy = (factory.destroy as (id: string) => unknown).bind(factory)
      const id = await saveNew(factory, { user: 'ada' })
      assert.equal(await destroy(id), true, 'destroy() of a live record must answer true (the plugin trusts it: no load checks first)')
      assert.equal(await destroy(id), false, 'destroy() of a record already gone must answer false (a regenerate then is a logout)')
      assert.equal(await destroy(generateId()), false, 'destroy() of an id never issued must answer false')
    }
  },
  {
    name: 'declares-user-index',
    title: 'capabilities.userIndex: the factory has sessionsOf() and revokeUser()',
    async run (factory) {
      if (factory.capabilities?.userIndex !== true) return
      assert.equal(typeof factory.sessionsOf, 'function', 'capabilities.userIndex needs a sessionsOf(userId) method')
      assert.equal(typeof factory.revokeUser, 'function', 'capabilities.userIndex needs a revokeUser(userId, keep) method')
    }
  },
  {
    name: 'declares-stateless',
    title: 'capabilities.stateless: the id is the session, so a changed session gets a new id and each id opens its own version',
    async run (factory) {
      if (factory.capabilities?.stateless !== true) return
      assert.equal(factory.touch, undefined, 'a stateless factory has no touch(): the plugin rolls its sessions with a save')
      const first = await saveNew(factory, { count: 1 })
      const loaded = await mustLoad(factory, first)
      loaded.set('count', 2)
      const second = await factory.save(prepare(loaded))
      assert.notEqual(second, first, 'a stateless factory keeps nothing: a changed session must come back under a new id')
      assert.equal((await mustLoad(factory, second)).get('count'), 2, 'the new id opens the changed session')
      assert.equal((await mustLoad(factory, first)).get('count'), 1, 'the first id still opens the first version: no server state replaced it')
    }
  }
]
