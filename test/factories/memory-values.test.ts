import t from 'tap'
import { MemoryFactory, Session } from '../../src/index.js'

t.test('values come back as a JSON round trip would give them', async (t) => {
  const factory = new MemoryFactory()
  t.teardown(() => factory.close())
  const data = { zero: -0, nan: NaN, inf: -Infinity, text: 'x', yes: true, none: null, list: [1, { a: 'b' }] }
  const id = await factory.save(new Session<any>(data))
  const loaded = (await factory.load(id))!
  t.ok(Object.is(loaded.get('zero'), 0), '-0 comes back as 0')
  t.same(loaded.data, JSON.parse(JSON.stringify(data)))
  const prototype = Object.getPrototypeOf(loaded.data) as object
  t.same([Reflect.ownKeys(prototype), Object.isFrozen(prototype), Object.getPrototypeOf(prototype)], [[], true, null], 'the data object inherits nothing')
  t.notOk('toString' in loaded.data)
})

t.test('a loaded object is a copy: changing it without set() changes nothing stored', async (t) => {
  const factory = new MemoryFactory()
  t.teardown(() => factory.close())
  const id = await factory.save(new Session<any>({ list: ['a'] }))
  ;((await factory.load(id))!.get('list') as string[]).push('b')
  t.same((await factory.load(id))!.get('list'), ['a'])
})

t.test('a new session saved under an id already held replaces that record', async (t) => {
  const factory = new MemoryFactory({ maxSessions: 2 })
  t.teardown(() => factory.close())
  const first = new Session<any>({ a: 1 })
  first.id = 'same-id'
  await factory.save(first)
  const second = new Session<any>({ b: 2 })
  second.id = 'same-id'
  await factory.save(second)
  t.equal(factory.size, 1)
  t.same((await factory.load('same-id'))!.data, { b: 2 })
  // The replaced record left the recency list too: two more sessions fit before eviction.
  const other = await factory.save(new Session<any>({ c: 3 }))
  t.equal(factory.size, 2)
  t.ok(await factory.load(other))
  t.ok(await factory.load('same-id'))
})
