import t from 'tap'
import { Session, errors } from '../src/index.js'
import { assertJson } from '../src/session.js'

t.test('a new session is empty, unsaved and unmodified', async (t) => {
  const session = new Session()
  t.equal(session.id, null)
  t.equal(session.isNew, true)
  t.equal(session.isModified, false)
  t.same({ ...session.data }, {})
  t.equal(session.expiresAt, null)
  t.ok(session.createdAt <= Date.now())
  t.equal(session.createdAt, session.touchedAt)
})

t.test('a session built with an id is not new', async (t) => {
  const session = new Session({ a: 1 }, 'abc')
  t.equal(session.isNew, false)
  t.equal(session.id, 'abc')
  t.equal(session.get('a'), 1)
  t.equal(session.isModified, false, 'data given to the constructor is not a change')
})

t.test('get, set, has, delete and clear track changes per key', async (t) => {
  const session = new Session({ keep: 1, drop: 2, other: 3 }, 'id')
  t.equal(session.get('missing'), undefined)
  t.equal(session.get('missing', 'fallback'), 'fallback')
  t.equal(session.get('keep', 9), 1)
  t.equal(session.set('added', 'x'), session, 'set chains')
  t.ok(session.has('added'))
  t.equal(session.delete('drop'), true)
  t.equal(session.delete('drop'), false, 'deleting a missing key reports false')
  t.notOk(session.has('drop'))
  t.ok(session.isModified)
  t.same(session.changes(), { set: { added: 'x' }, deleted: ['drop'] })

  session.set('drop', 'back')
  t.same(session.changes(), { set: { added: 'x', drop: 'back' }, deleted: [] }, 'a re-set key is no longer deleted')
  session.delete('added')
  t.same(session.changes(), { set: { drop: 'back' }, deleted: ['added'] }, 'a deleted key is no longer set')

  session.clear()
  t.same({ ...session.data }, {})
  t.same(session.changes().deleted.sort(), ['added', 'drop', 'keep', 'other'])
})

t.test('reserved keys are refused on set and dropped from stored data', async (t) => {
  const session = new Session()
  for (const key of ['__proto__', 'constructor', 'prototype']) {
    t.throws(() => session.set(key, 1), { code: 'FST_SESSION_RESERVED_KEY' })
  }
  t.ok(errors.FST_SESSION_RESERVED_KEY)
  const fromStore = JSON.parse('{"__proto__": {"admin": true}, "constructor": 1, "prototype": 2, "name": "ada"}')
  const loaded = new Session(fromStore, 'id')
  t.same(Object.keys(loaded.data), ['name'])
  t.equal((loaded.data as Record<string, unknown>).admin, undefined)
  t.equal(({} as Record<string, unknown>).admin, undefined, 'Object.prototype untouched')
  t.equal(loaded.get('toString'), undefined, 'inherited names are not data')
  t.notOk(loaded.has('toString'))
})

t.test('toJSON and fromJSON round-trip a record', async (t) => {
  const session = new Session({ a: [1, 2], b: { c: 'd' } }, 'the-id')
  session.createdAt = 1000
  session.touchedAt = 2000
  session.expiresAt = 3000
  const record = JSON.parse(JSON.stringify(session))
  t.same(record, { id: 'the-id', data: { a: [1, 2], b: { c: 'd' } }, createdAt: 1000, touchedAt: 2000, expiresAt: 3000 })
  const back = Session.fromJSON(record)
  t.equal(back.id, 'the-id')
  t.equal(back.isNew, false)
  t.equal(back.createdAt, 1000)
  t.equal(back.touchedAt, 2000)
  t.equal(back.expiresAt, 3000, 'fromJSON keeps expiresAt')
  t.same({ ...back.data }, record.data)
})

t.test('fromJSON fails closed on timestamps: missing is expired, numeric strings are numbers, garbage is corrupt', async (t) => {
  const missing = Session.fromJSON({ id: null, data: null as never, createdAt: undefined as never, touchedAt: undefined as never })
  t.equal(missing.isNew, true)
  t.same({ ...missing.data }, {})
  t.ok(Number.isNaN(missing.createdAt), 'a missing createdAt is NaN, which every timeout check reads as expired')
  t.ok(Number.isNaN(missing.touchedAt))

  const bigint = Session.fromJSON({ id: 'x', data: {}, createdAt: '1000' as never, touchedAt: '2000' as never, expiresAt: '3000' as never })
  t.equal(bigint.createdAt, 1000, 'a BIGINT column\'s numeric string is read as a number')
  t.equal(bigint.touchedAt, 2000)
  t.equal(bigint.expiresAt, 3000)

  t.ok(Number.isNaN(Session.fromJSON({ id: 'x', data: {}, createdAt: Number.NaN, touchedAt: 1 }).createdAt), 'NaN stays NaN: missing, so expired')
  for (const bad of [Infinity, -Infinity, 'soon', '12abc', {}, true]) {
    t.throws(() => Session.fromJSON({ id: 'x', data: {}, createdAt: bad as never, touchedAt: 1 }), { code: 'FST_SESSION_CORRUPT_RECORD' }, `createdAt ${String(bad)}`)
    t.throws(() => Session.fromJSON({ id: 'x', data: {}, createdAt: 1, touchedAt: bad as never }), { code: 'FST_SESSION_CORRUPT_RECORD' }, `touchedAt ${String(bad)}`)
  }
})

t.test('regenerate and destroy are flags the plugin acts on; destroy empties the data', async (t) => {
  const session = new Session({ user: 'ada' }, 'id')
  session.regenerate()
  t.equal(session.get('user'), 'ada', 'regenerate keeps the data')
  session.destroy()
  t.same({ ...session.data }, {})
  t.equal(session.isModified, false)
  session.set('flash', 'bye')
  t.ok(session.isModified, 'data set after destroy is a change')
})

t.test('save() on a session no request owns rejects with FST_SESSION_DETACHED', async (t) => {
  await t.rejects(new Session().save(), { code: 'FST_SESSION_DETACHED' })
})

t.test('assertJson accepts what JSON carries and names the path of what it does not', async (t) => {
  t.doesNotThrow(() => assertJson({ a: [1, 'x', true, null, { b: 2 }], d: new Date(0), n: Object.create(null) }, '/v'))
  const shared = { x: 1 }
  t.doesNotThrow(() => assertJson({ one: shared, two: shared }, '/v'), 'a shared reference is not a cycle')
  const cycle: Record<string, unknown> = {}
  cycle.self = cycle
  const bad: Array<[unknown, string]> = [
    [10n, '/v'],
    [() => 1, '/v'],
    [Symbol('s'), '/v'],
    [undefined, '/v'],
    [Number.NaN, '/v'],
    [Infinity, '/v'],
    [{ deep: [1, { fn () {} }] }, '/v/*/1/*'],
    [cycle, '/v/*'],
    [new Map([[1, 2]]), '/v'],
    [new (class Point { x = 1 })(), '/v'],
    [Object.create(Object.create(null)), '/v']
  ]
  for (const [value, path] of bad) {
    const error = t.throws(() => assertJson(value, '/v'), { code: 'FST_SESSION_NOT_SERIALIZABLE' }) as Error
    t.match(error.message, `"${path}"`)
  }
})

t.test('regenerate(keep) keeps only the listed keys; a list built with Object.keys(session) keeps them all', async (t) => {
  const session = new Session({ passport: '1', cart: ['apple'], id: 'data key' }, 'abc')
  session.regenerate(['passport', 'id'])
  t.same({ ...session.data }, { passport: '1', id: 'data key' }, 'only the listed keys')
  t.same(session.changes().deleted, ['cart'], 'the others are deleted')

  const kept = new Session({ cart: ['apple'], theme: 'dark' }, 'abc')
  const keys = ['passport', ...Object.keys(kept)]
  t.same(Object.keys(kept).sort(), ['createdAt', 'expiresAt', 'id', 'touchedAt', 'userId'], 'the session\'s own fields, not its data')
  kept.regenerate(keys)
  t.same({ ...kept.data }, { cart: ['apple'], theme: 'dark' }, '@fastify/passport keepSessionInfo keeps everything')

  const partial = new Session({ cart: ['apple'], theme: 'dark' }, 'abc')
  partial.regenerate(['id', 'createdAt', 'theme'])
  t.same({ ...partial.data }, { theme: 'dark' }, 'a few field names are just keys')
})

t.test('a value read with get() and left alone does not modify the session; changed in place, it does', async (t) => {
  const session = Session.fromJSON({ id: 'abc', data: { cart: ['apple'], theme: 'dark' }, createdAt: 1, touchedAt: 1 })
  session.get('cart')
  t.equal(session.isModified, false, 'read only')
  t.same(session.changes(), { set: {}, deleted: [] })
  ;(session.get('cart') as string[]).push('pear')
  t.equal(session.isModified, true, 'pushed in place')
  t.same(session.changes().set, { cart: ['apple', 'pear'] })
})
