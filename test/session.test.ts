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

t.test('regenerate() empties the data, as on the peers (passport\'s logout relies on it); destroy empties it too', async (t) => {
  const session = new Session({ user: 'ada', cart: ['book'] }, 'id')
  session.options({ maxAge: 60 })
  session.regenerate()
  t.same(Object.keys(session), [], 'regenerate() with no list empties the session')
  t.same({ ...session.data }, {}, 'the remember-me lifetime goes with it: an emptied session starts anew')
  t.same(session.changes().deleted.sort(), ['$cookieMaxAge', 'cart', 'user'])
  const other = new Session({ user: 'ada' }, 'id')
  other.destroy()
  t.same({ ...other.data }, {})
  t.equal(other.isModified, false)
  other.set('flash', 'bye')
  t.ok(other.isModified, 'data set after destroy is a change')
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

t.test('regenerate(keep) keeps only the listed keys; Object.keys(session) lists the data keys, so passport\'s keepSessionInfo keeps them all', async (t) => {
  const session = new Session({ passport: '1', cart: ['apple'], id: 'data key' }, 'abc')
  session.options({ maxAge: 60 })
  session.regenerate(['passport', 'id'])
  t.same({ ...session.data }, { passport: '1', id: 'data key', $cookieMaxAge: 60 }, 'only the listed keys (and the lifetime)')
  t.same(Object.keys(session), ['passport'], 'a data key named like a member is reached with get(), not as a property')
  t.same(session.changes().deleted, ['cart'], 'the others are deleted')
  t.equal(session.data.$cookieMaxAge, 60, 'a kept session keeps its remember-me lifetime')

  const kept = new Session({ cart: ['apple'], theme: 'dark' }, 'abc')
  t.same(Object.keys(kept), ['cart', 'theme'], 'the data keys, not the session\'s own fields')
  kept.regenerate(['session', ...Object.keys(kept)])
  t.same({ ...kept }, { cart: ['apple'], theme: 'dark' }, '@fastify/passport keepSessionInfo keeps everything')

  const partial = new Session({ cart: ['apple'], theme: 'dark' }, 'abc')
  partial.regenerate(['id', 'createdAt', 'theme'])
  t.same({ ...partial }, { theme: 'dark' }, 'the names of the session\'s fields are just keys in a list')
})

t.test('data keys are the session\'s properties: write, read, delete, in, keys, spread, nested changes, all tracked', async (t) => {
  const session = Session.fromJSON<Record<string, any>>({ id: 'abc', data: { user: 'ada', cart: ['apple'], prefs: { theme: 'dark' } }, createdAt: 1, touchedAt: 1 })
  t.equal(session.user, 'ada', 'read')
  t.ok('user' in session, 'in')
  t.notOk('nobody' in session)
  t.ok('get' in session, 'a member is in the session too')
  t.same(Object.keys(session), ['user', 'cart', 'prefs'], 'Object.keys lists the data keys')
  t.equal(session.isModified, false, 'reads change nothing')

  session.state = { nonce: 'n1' }
  t.same(session.get('state'), { nonce: 'n1' }, 'a property write is a set()')
  t.equal(session.state.nonce, 'n1', 'read back as a property (passport-oauth2\'s state store)')
  delete session.user
  t.equal(session.has('user'), false, 'delete is a delete()')
  session.cart.push('pear')
  session.prefs.theme = 'light'
  t.same(session.changes(), { set: { state: { nonce: 'n1' }, cart: ['apple', 'pear'], prefs: { theme: 'light' } }, deleted: ['user'] }, 'every change, nested ones included, is tracked')
  t.same({ ...session }, { cart: ['apple', 'pear'], prefs: { theme: 'light' }, state: { nonce: 'n1' } }, 'spread')
  t.same(JSON.parse(JSON.stringify(session)).data, { ...session }, 'JSON is the record (toJSON)')

  session.maybe = undefined
  t.notOk('maybe' in session, 'a write of undefined deletes, as set() does')
  t.equal(session.set('a', 1).a, 1, 'set() answers the session, properties and all')
  const get = session.get
  t.equal((get as (key: string) => unknown).call(session, 'a'), 1, 'a method called on the session it was taken from')
  t.equal(session.get, get, 'is the same function each time')
  t.ok(session instanceof Session)

  for (const member of ['get', 'set', 'save', 'regenerate', 'isNew', 'isModified', 'data', 'toJSON']) {
    t.throws(() => { session[member] = 'x' }, TypeError, `session.${member} = … throws a TypeError`)
  }
  const error = t.throws(() => { (session as Record<string, unknown>).save = 'x' }) as Error
  t.match(error.message, "session.set('save'", 'naming set(), which reaches any key')
  session.set('save', 'a data key')
  t.equal(session.get('save'), 'a data key')
  t.equal(typeof session.save, 'function', 'the property stays the member')
  session.id = 'other'
  t.equal(session.id, 'other', 'the session\'s writable fields are fields, not data')
  t.notOk(session.has('id'))
  const proto = '__proto__'
  t.throws(() => { (session as Record<string, unknown>)[proto] = {} }, TypeError, '__proto__ never reaches the prototype')
  t.throws(() => session.set('prototype', {}), { code: 'FST_SESSION_RESERVED_KEY' })
  t.throws(() => Object.defineProperty(session, 'get', { value: 1 }), TypeError)
  Object.defineProperty(session, 'defined', { value: 2 })
  t.equal(session.get('defined'), 2, 'defineProperty with a value is a set()')
})

t.test('the remember-me lifetime is kept outside the data: no data key reaches it, a bad stored one is dropped', async (t) => {
  const session = new Session<Record<string, any>>({}, 'abc')
  t.throws(() => session.set('$cookieMaxAge', 'abc'), { code: 'FST_SESSION_RESERVED_KEY' })
  t.throws(() => { session.$cookieMaxAge = 1e12 }, { code: 'FST_SESSION_RESERVED_KEY' })
  t.throws(() => session.delete('$cookieMaxAge'), { code: 'FST_SESSION_RESERVED_KEY' })
  session.options({ maxAge: 60 })
  t.equal(session.get('$cookieMaxAge'), undefined, 'get() does not see it')
  t.same(Object.keys(session), [], 'nor Object.keys')
  session.clear()
  t.equal(session.data.$cookieMaxAge, 60, 'clear() leaves it')
  for (const bad of ['abc', 1e12, -5, 1.5, null]) {
    const loaded = Session.fromJSON({ id: 'x', data: { $cookieMaxAge: bad, user: 'ada' }, createdAt: 1, touchedAt: 1 })
    t.same({ ...loaded.data }, { user: 'ada' }, `a stored lifetime of ${String(bad)} is dropped (a browser-session cookie)`)
  }
  t.equal(Session.fromJSON({ id: 'x', data: { $cookieMaxAge: 0 }, createdAt: 1, touchedAt: 1 }).data.$cookieMaxAge, 0)
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
