// The user index group: `sessionsOf(user)` lists exactly the user's live sessions.
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import type { SessionFactory } from '../factory.js'
import { Session, internals } from '../session.js'
import { byId, entryOf, listed, mustBeGone, mustLoad, needs, prepare, saveNew } from './factory-helpers.js'
import type { Check } from './runner.js'

/** The checks of the user index group. */
export type UserIndexCheck = 'index-lists' | 'index-apart' | 'index-destroy' | 'index-expiry' | 'index-moves' | 'index-counts'
  | 'index-stale-save' | 'index-touch-files' | 'index-revoke'

/** The ids sessionsOf(user) lists, in code unit order (as `[...ids].sort()` puts the expected ones). */
async function idsOf (factory: SessionFactory<any>, userId: string): Promise<string[]> {
  return (await listed(factory, userId)).map((entry) => entry.id).sort()
}

function expiring<S extends Session<any>> (session: S, expiresAt: number): S {
  session.expiresAt = expiresAt
  return session
}

/** Saves a new session under `userId` that expires at `expiresAt`, with the id `id` if given (as the plugin gives one). */
async function saveAt (factory: SessionFactory<any>, expiresAt: number, userId: string | null, id?: string): Promise<string> {
  const session = prepare(new Session<any>({ n: 0 }), 0, userId)
  if (id !== undefined) session.id = id
  return factory.save(expiring(session, expiresAt))
}

/** Loads the session, changes it, and saves it under `userId` with a new expiry, as a later request would. */
async function resave (factory: SessionFactory<any>, id: string, expiresAt: number, userId: string | null): Promise<void> {
  const session = await mustLoad(factory, id)
  session.set('n', Number(session.get('n')) + 1)
  await factory.save(expiring(prepare(session, 0, userId), expiresAt))
}

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
      assert.deepEqual(await idsOf(factory, 'u1'), [mine])
      assert.deepEqual(await idsOf(factory, 'u2'), [theirs])
    }
  },
  {
    name: 'index-destroy',
    title: 'a destroyed session leaves the index for good: its id is not listed again, even once a new record takes that id under another user or none',
    async run (factory) {
      needs(factory, 'sessionsOf', 'userIndex')
      const destroy = needs(factory, 'destroy', 'userIndex')
      const kept = await saveNew(factory, { n: 1 }, 60_000, 'u1')
      const gone = await saveNew(factory, { n: 2 }, 60_000, 'u1')
      await destroy(gone)
      // Before any listing could prune a stale entry, a new session is saved with the id of the
      // destroyed one: the factory may keep that id or choose another.
      const back = await saveAt(factory, Date.now() + 60_000, 'u2', gone)
      assert.deepEqual(await idsOf(factory, 'u1'), [kept], 'a destroyed session\'s id must leave its user\'s index, whatever record has that id later')
      if (back === gone) {
        assert.deepEqual(await idsOf(factory, 'u2'), [gone], 'the new record is listed under its own user')
        await destroy(gone)
        await saveAt(factory, Date.now() + 60_000, null, gone)
        assert.deepEqual([...await idsOf(factory, 'u1'), ...await idsOf(factory, 'u2')], [kept], 'an anonymous record with that id is under no user')
      }
    }
  },
  {
    name: 'index-expiry',
    title: 'an entry leaves the index once its latest expiresAt passes: in expiry order, not creation order, and not earlier when a later save or touch extended it',
    async run (factory) {
      // Deadlines from one start, with generous margins: a loaded machine may pause between steps.
      const start = Date.now()
      const soon = start + 1500
      const later = start + 60_000
      const long = await saveAt(factory, later, 'u1')
      const short = await saveAt(factory, soon, 'u1')
      const extended = await saveAt(factory, soon, 'u1')
      await resave(factory, extended, later, 'u1')
      const shortened = await saveAt(factory, later, 'u1')
      await resave(factory, shortened, soon, 'u1')
      const touched = factory.touch === undefined ? [] : [await saveAt(factory, soon, 'u1')]
      for (const id of touched) await factory.touch?.(expiring(prepare(await mustLoad(factory, id), 0, 'u1'), later))
      assert.deepEqual(await idsOf(factory, 'u1'), [long, short, extended, shortened, ...touched].sort(), 'all are listed while alive')
      await sleep(soon + 400 - Date.now())
      const left = await listed(factory, 'u1')
      assert.deepEqual(left.map((entry) => entry.id).sort(), [long, extended, ...touched].sort(),
        'sessionsOf() must leave out each session past its latest expiresAt, and only those: a save or touch that extends the expiry keeps the entry listed')
      assert.deepEqual(left.map((entry) => entry.expiresAt), left.map(() => later), 'each entry shows its latest expiresAt')
    }
  },
  {
    name: 'index-moves',
    title: 'a later save with another userId moves the session: listed under that user only, once; with userId null it leaves the index',
    async run (factory) {
      const id = await saveNew(factory, { n: 1 }, 60_000, 'u1')
      const other = await saveNew(factory, { n: 1 }, 60_000, 'u1')
      await resave(factory, id, Date.now() + 60_000, 'u2')
      assert.deepEqual(await idsOf(factory, 'u1'), [other], 'no longer under its old user')
      assert.deepEqual(await idsOf(factory, 'u2'), [id], 'listed under its new user')
      await resave(factory, id, Date.now() + 60_000, 'u3')
      assert.deepEqual(await idsOf(factory, 'u2'), [], 'a second move takes it off the user it had')
      await resave(factory, id, Date.now() + 60_000, 'u1')
      assert.deepEqual(await idsOf(factory, 'u1'), [id, other].sort(), 'moved back, it is listed once under its first user')
      assert.deepEqual([...await idsOf(factory, 'u2'), ...await idsOf(factory, 'u3')], [], 'and under no other')
      await resave(factory, id, Date.now() + 60_000, null)
      assert.deepEqual(await idsOf(factory, 'u1'), [other], 'a session saved with userId null is in no list')
    }
  },
  {
    name: 'index-counts',
    title: 'after many saves, touches and destroys, sessionsOf(user) lists each live session exactly once',
    async run (factory) {
      needs(factory, 'sessionsOf', 'userIndex')
      const destroy = needs(factory, 'destroy', 'userIndex')
      const mine = await Promise.all(Array.from({ length: 12 }, (_, n) => saveNew(factory, { n }, 60_000, 'u1')))
      const theirs = await Promise.all(Array.from({ length: 4 }, (_, n) => saveNew(factory, { n }, 60_000, 'u2')))
      const ended = mine.filter((_, i) => i % 3 === 0)
      const live = mine.filter((id) => !ended.includes(id))
      for (let round = 0; round < 3; round++) {
        await Promise.all(mine.map(async (id) => {
          await resave(factory, id, Date.now() + 60_000, 'u1')
          await factory.touch?.(expiring(prepare(await mustLoad(factory, id), 0, 'u1'), Date.now() + 60_000))
        }))
      }
      await Promise.all(ended.map((id) => destroy(id)))
      await Promise.all(ended.map((id) => destroy(id)))
      assert.deepEqual(await idsOf(factory, 'u1'), [...live].sort(), `${live.length} live sessions, each listed once`)
      await Promise.all(live.map((id) => resave(factory, id, Date.now() + 60_000, 'u1')))
      const added = await saveNew(factory, { n: 12 }, 60_000, 'u1')
      assert.deepEqual(await idsOf(factory, 'u1'), [...live, added].sort(), 'still once each after another round of saves, and a new one counts')
      assert.deepEqual(await idsOf(factory, 'u2'), [...theirs].sort(), 'another user\'s count is untouched')
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
      assert.deepEqual(await idsOf(factory, 'u1'), [id], 'save() must file or unfile only when session.filedUnder differs from the user of the record it was loaded from')
    }
  },
  {
    name: 'index-touch-files',
    title: 'touch() files a session that was never filed (saved before userKey was set)',
    async run (factory) {
      const touch = needs(factory, 'touch', 'userIndex')
      const id = await saveNew(factory, { user: 'u1' }, 60_000, null)
      await touch(prepare(await mustLoad(factory, id), 60_000, 'u1'))
      assert.deepEqual(await idsOf(factory, 'u1'), [id])
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
      assert.deepEqual(await idsOf(factory, 'u1'), [id], 'nor file anything')
      // A login after revokeUser takes the user's new generation: its rotations go through.
      const login = await saveNew(factory, { user: 'u1' }, 60_000, 'u1')
      const after = await mustLoad(factory, login)
      internals.markNew(after)
      const rotated = await factory.save(prepare(after, 60_000, 'u1'))
      assert.deepEqual(await idsOf(factory, 'u1'), [id, login, rotated].sort(), 'a session signed in after revokeUser rotates as before')
    }
  }
]
