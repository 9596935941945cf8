// Property: any JSON value stored under any key comes back identical through the plugin and each
// built-in factory; the three keys that could reach a prototype are refused, and dropped on load.
import assert from 'node:assert/strict'
import fc from 'fast-check'
import Fastify from 'fastify'
import t from 'tap'
import sessionPlugin, { Session } from '../src/index.js'
import { SECRET } from './helpers/app.js'
import { factoriesUnderTest, useFactory } from './helpers/factories-under-test.js'
import { checkProperty } from './helpers/fuzz.js'
import { LogTrap, cookieValueIn } from './helpers/log-trap.js'

const RESERVED = ['__proto__', 'constructor', 'prototype']
const OBJECT_PROTOTYPE_NAMES = Object.getOwnPropertyNames(Object.prototype)

/** UTF-16 code units one by one: lone surrogates included. */
const utf16 = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 12 })

const key = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...OBJECT_PROTOTYPE_NAMES, '', ' ', '0', '-1', '1e3', 'length', 'then', 'toJSON', 'a.b', 'a/b', '%2F', 'ü', '🍪', '\u0000') },
  { weight: 3, arbitrary: fc.string({ maxLength: 16 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 8 }) },
  { weight: 1, arbitrary: utf16 }
)

// Own properties even for '__proto__', as JSON.parse makes them.
function objectOf (entries: Array<[string, unknown]>): Record<string, unknown> {
  const object: Record<string, unknown> = {}
  for (const [k, v] of entries) Object.defineProperty(object, k, { value: v, enumerable: true, writable: true, configurable: true })
  return object
}

// -0 is left out: JSON writes it as 0, and refusing it would punish Math.round(-0.4).
const leaf = fc.oneof(
  fc.constant(null), fc.boolean(), fc.integer(), fc.maxSafeInteger(),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => (d === 0 ? 0 : d)),
  fc.string({ maxLength: 24 }), fc.string({ unit: 'grapheme', maxLength: 12 }), utf16
)
const nestedKey = fc.oneof({ weight: 1, arbitrary: fc.constantFrom(...RESERVED, 'toString', 'valueOf') }, { weight: 3, arbitrary: key })
const { json } = fc.letrec<{ json: unknown, array: unknown[], object: Record<string, unknown> }>((tie) => ({
  json: fc.oneof({ depthSize: 'small' }, leaf, tie('array'), tie('object')),
  array: fc.array(tie('json'), { maxLength: 5 }),
  object: fc.array(fc.tuple(nestedKey, tie('json')), { maxLength: 5 }).map(objectOf)
}))
const value = fc.oneof(json, fc.jsonValue())

for (const under of factoriesUnderTest) {
  t.test(`${under.name}: any JSON value under any key round-trips identically`, { skip: under.skip ?? false }, async (t) => {
    const { factory, dispose } = await useFactory(under)
    const trap = new LogTrap()
    const app = Fastify({ logger: trap.logger })
    await app.register(sessionPlugin, { factory, secret: SECRET })
    // Values travel in and out through closures, not HTTP bodies, so nothing but the factory
    // (and the plugin) touches them on the way.
    let write: Array<[string, unknown]> = []
    let seen: Record<string, unknown> = {}
    app.post('/write', async (request) => {
      for (const [k, v] of write) request.session.set(k, v)
      return { ok: true }
    })
    app.get('/read', async (request) => {
      seen = objectOf(Object.entries(request.session.data))
      return { ok: true }
    })
    t.teardown(async () => { await app.close(); await dispose() })
    let stored = 0

    await checkProperty(fc.asyncProperty(key, value, key, value, async (first, firstValue, second, secondValue) => {
      fc.pre(!RESERVED.includes(first) && !RESERVED.includes(second) && first !== second)
      trap.remember(firstValue, secondValue)
      // A new session is written whole...
      write = [[first, firstValue]]
      const created = await app.inject({ method: 'POST', url: '/write' })
      assert.equal(created.statusCode, 200)
      let cookie = `sid=${encodeURIComponent(cookieValueIn(created.headers['set-cookie']) as string)}`
      // ...a loaded one by its changes, merged into the stored record.
      write = [[second, secondValue]]
      const changed = await app.inject({ method: 'POST', url: '/write', headers: { cookie } })
      assert.equal(changed.statusCode, 200)
      // A stateless factory seals the session into a new cookie at every save; a store keeps the id, and the cookie.
      const resealed = cookieValueIn(changed.headers['set-cookie'])
      if (resealed !== undefined) cookie = `sid=${encodeURIComponent(resealed)}`
      assert.equal((await app.inject({ method: 'GET', url: '/read', headers: { cookie } })).statusCode, 200)
      assert.deepStrictEqual(seen, objectOf([[first, firstValue], [second, secondValue]]))
      assert.deepEqual(Object.keys(Object.prototype), [], 'Object.prototype gained a key')
      stored++
    }), 80)
    t.ok(stored > 60, `${stored} pairs round-tripped`)
    t.same(trap.errors(), [], 'nothing was logged at error level')
    t.same(trap.leaks(), [], 'no session value reached the log')
  })

  t.test(`${under.name}: the keys __proto__, constructor and prototype are refused with FST_SESSION_RESERVED_KEY`, { skip: under.skip ?? false }, async (t) => {
    const { factory, dispose } = await useFactory(under)
    const app = Fastify()
    await app.register(sessionPlugin, { factory, secret: SECRET })
    let write: [string, unknown] = ['', null]
    app.post('/write', async (request) => {
      request.session.set(write[0], write[1])
      return { ok: true }
    })
    t.teardown(async () => { await app.close(); await dispose() })

    await checkProperty(fc.asyncProperty(fc.constantFrom(...RESERVED), value, async (reserved, anything) => {
      write = [reserved, anything]
      const response = await app.inject({ method: 'POST', url: '/write' })
      assert.equal(response.statusCode, 500)
      assert.equal((response.json() as { code: string }).code, 'FST_SESSION_RESERVED_KEY')
      assert.equal(response.headers['set-cookie'], undefined, 'nothing was stored')
      assert.deepEqual(Object.keys(Object.prototype), [])
    }), 15)
    t.pass('every reserved key was refused, and nothing was stored')
  })
}

t.test('the keys __proto__, constructor and prototype coming back from a store are dropped, others kept', async (t) => {
  await checkProperty(fc.property(fc.array(fc.tuple(nestedKey, value), { maxLength: 8 }), (entries) => {
    const record = JSON.parse(JSON.stringify(objectOf(entries))) as Record<string, unknown>
    const expected = objectOf(Object.entries(record).filter(([k]) => !RESERVED.includes(k)))
    for (const session of [new Session(record, 'id'), Session.fromJSON({ id: 'id', data: record, createdAt: 1, touchedAt: 2 })]) {
      assert.deepStrictEqual(objectOf(Object.entries(session.data)), expected)
      for (const reserved of RESERVED) assert.equal(Object.hasOwn(session.data, reserved), false)
      // Nothing to reach through the prototype: its one prototype is empty, frozen and has none itself.
      const prototype = Object.getPrototypeOf(session.data) as object | null
      assert.equal(prototype === null || (Reflect.ownKeys(prototype).length === 0 && Object.isFrozen(prototype) && Object.getPrototypeOf(prototype) === null), true, 'data inherits nothing')
      assert.equal('toString' in session.data, Object.hasOwn(session.data, 'toString'))
      assert.deepEqual(Object.keys(Object.prototype), [])
    }
  }), 300)
  t.pass('checked')
})
