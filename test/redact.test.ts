// A factory's error may name the session it failed on, however it is built: deep in a cause
// chain, frozen, with a read-only message, a DOMException, an AggregateError. The plugin logs it
// as the cause of the 503 with the id replaced by its short hash.
import Fastify from 'fastify'
import t from 'tap'
import sessionPlugin from '../src/index.js'
import { idHash, redactId } from '../src/redact.js'
import { SECRET } from './helpers/app.js'
import { LogTrap, signId } from './helpers/log-trap.js'

const ID = 'b7Qm1xZk4p9VtR2sLw8eNc3yHa6JdF0gUo5iKrEqTz1'
const MARK = `[session #${idHash(ID)}]`

/** Everything a logger could print of a value: own and inherited keys, message, stack, causes. */
function everything (value: unknown, seen = new Set<unknown>()): string {
  if (typeof value === 'string') return value
  if (typeof value !== 'object' || value === null || seen.has(value)) return String(value)
  seen.add(value)
  const parts: string[] = []
  const keys = new Set(['message', 'stack', 'name', 'code', 'cause', 'errors'])
  for (const key in value) keys.add(key)
  for (const key of Object.getOwnPropertyNames(value)) keys.add(key)
  for (const key of keys) {
    let inner: unknown
    try {
      inner = (value as Record<string, unknown>)[key]
    } catch {
      continue
    }
    parts.push(everything(inner, seen))
  }
  return parts.join('\n')
}

function causeChain (length: number, bottom: Error): Error {
  let error = bottom
  for (let i = 1; i < length; i++) error = new Error(`layer ${i}`, { cause: error })
  return error
}

/** The errors factories have been seen to reject with, each naming the session somewhere. */
function leakyErrors (id: string): Record<string, () => unknown> {
  return {
    'fifty causes deep': () => causeChain(50, new Error(`no record for ${id}`)),
    'a frozen error': () => Object.freeze(Object.assign(new Error(`get sess:${id} failed`), { code: 'ECONNRESET' })),
    'a frozen cause under a frozen error': () =>
      Object.freeze(new Error('outer', { cause: Object.freeze(new Error(`inner ${id}`)) })),
    'a read-only message': () => {
      const error = new Error(`timeout on ${id}`)
      Object.defineProperty(error, 'message', { value: error.message, writable: false, configurable: false })
      Object.defineProperty(error, 'stack', { value: error.stack, writable: false, configurable: false })
      return error
    },
    'a DOMException': () => new DOMException(`aborted while loading ${id}`, 'AbortError'),
    'a frozen DOMException': () => Object.freeze(new DOMException(`aborted while loading ${id}`, 'AbortError')),
    'an AggregateError': () => new AggregateError([new Error(`node 1: ${id}`), Object.freeze(new Error(`node 2: ${id}`))], `all nodes failed for ${id}`),
    'a cycle of causes': () => {
      const a = new Error(`a ${id}`)
      const b = Object.freeze(new Error(`b ${id}`, { cause: a }))
      ;(a as { cause?: unknown }).cause = b
      return a
    },
    'a frozen object as cause': () => new Error(`query failed for ${id}`, { cause: Object.freeze({ key: `sess:${id}`, args: Object.freeze([id]) }) }),
    'a plain object ten levels deep': () => {
      let inner: Record<string, unknown> = { key: id }
      for (let i = 0; i < 10; i++) inner = { inner }
      return Object.assign(new Error(`query failed for ${id}`), { detail: inner })
    }
  }
}

for (const [name, make] of Object.entries(leakyErrors(ID))) {
  t.test(`redactId: ${name}`, async (t) => {
    const error = make()
    t.match(everything(error), ID, 'the id is there to begin with')
    const clean = redactId(error, ID)
    t.notMatch(everything(clean), ID, 'the id is gone from everything a logger could read')
    t.match(everything(clean), MARK, 'its hash stands in for it')
  })
}

t.test('redactId: a chain too deep to walk is not logged at all', async (t) => {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0 // stacks would cost seconds here, and say nothing
  const error = causeChain(50_000, new Error(`no record for ${ID}`))
  Error.stackTraceLimit = limit
  const clean = redactId(error, ID) as Error
  t.not(clean, error)
  t.equal(clean.cause, undefined)
  t.notMatch(clean.message, ID)
  t.match(clean.message, MARK)
})

t.test('redactId: what can be changed in place keeps its identity and class', async (t) => {
  const deep = causeChain(50, Object.assign(new Error(`no record for ${ID}`), { code: 'E_MISSING' }))
  t.equal(redactId(deep, ID), deep)
  const dom = new DOMException(`aborted ${ID}`, 'AbortError')
  t.equal(redactId(dom, ID), dom, 'a DOMException shadows its message getter')
  t.equal(dom.message, `aborted ${MARK}`)
  t.equal(dom.name, 'AbortError')
  const readOnly = Object.defineProperty(new Error('x'), 'message', { value: ID, writable: false, configurable: true })
  t.equal(redactId(readOnly, ID), readOnly, 'a read-only but configurable message is redefined')
  t.equal(readOnly.message, MARK)
  const aggregate = new AggregateError([new Error(ID)])
  t.equal(redactId(aggregate, ID), aggregate)
  t.equal(aggregate.errors[0].message, MARK)
})

t.test('redactId: what cannot be changed is copied, with its name, code and causes', async (t) => {
  class StoreError extends Error {
    override name = 'StoreError'
  }
  const root = Object.freeze(Object.assign(new Error(`inner ${ID}`), { code: 'E_INNER' }))
  const frozen = Object.freeze(Object.assign(new StoreError(`get ${ID}`, { cause: root }), { code: 'E_STORE', host: `redis for ${ID}` }))
  const copy = redactId(frozen, ID) as Error & { code?: string, host?: string, cause?: Error & { code?: string } }
  t.not(copy, frozen)
  t.ok(copy instanceof Error)
  t.equal(copy.name, 'StoreError')
  t.equal(copy.code, 'E_STORE')
  t.equal(copy.message, `get ${MARK}`)
  t.equal(copy.host, `redis for ${MARK}`, 'other properties are kept, redacted')
  t.match(copy.stack, `get ${MARK}`)
  t.equal(copy.cause?.message, `inner ${MARK}`)
  t.equal(copy.cause?.code, 'E_INNER')
  t.equal(frozen.message, `get ${ID}`, 'the original is as it was')

  const stackless = Object.freeze(Object.assign(new Error(ID), { stack: undefined }))
  t.equal((redactId(stackless, ID) as Error).stack, undefined, 'no stack invented for an error that had none')

  const list = Object.freeze([ID, 1])
  t.same(redactId(list, ID), [MARK, 1], 'a frozen array is copied')
  const dom = redactId(Object.freeze(new DOMException(`aborted ${ID}`, 'AbortError')), ID) as Error
  t.equal(dom.name, 'AbortError')
  t.equal(dom.message, `aborted ${MARK}`)
  t.equal((dom as Error & { code?: number }).code, 20, 'its code is copied, and its constants are not')
  t.same(Object.keys(dom), ['code'])
})

t.test('redactId: leaves alone what holds no id, and what it cannot read', async (t) => {
  t.equal(redactId('no id here', ID), 'no id here')
  t.equal(redactId(42, ID), 42)
  const error = Object.freeze(new Error('nothing to hide'))
  t.equal(redactId(error, ID), error, 'a frozen error without the id is not copied')
  t.equal(redactId(error, ''), error, 'an empty id redacts nothing')
  t.equal(redactId(error, undefined), error)
  const throwing = Object.defineProperty(new Error(ID), 'detail', { enumerable: true, get () { throw new Error('no') } })
  t.equal((redactId(throwing, ID) as Error).message, MARK, 'a getter that throws is skipped')
  let deep: Record<string, unknown> = { key: ID }
  for (let i = 0; i < 30; i++) deep = { inner: deep }
  redactId(deep, ID)
  t.match(JSON.stringify(deep), ID, 'plain nesting past 20 levels is not walked (a cause chain is)')
  const payload = Buffer.from(ID)
  const withBuffer = Object.freeze(Object.assign(new Error('binary'), { payload }))
  t.equal(redactId(withBuffer, ID), withBuffer, 'a Buffer is bytes, not walked')
})

t.test('through the plugin, a factory that rejects with any of these logs no id', async (t) => {
  for (const [name, make] of Object.entries(leakyErrors(ID))) {
    for (const sync of [false, true]) {
      const trap = new LogTrap()
      const app = Fastify({ logger: trap.logger })
      await app.register(sessionPlugin, {
        secret: SECRET,
        factory: {
          load: () => {
            if (sync) throw make()
            return Promise.reject(make())
          },
          save: () => 'never'
        }
      })
      app.get('/', async (request) => request.session.get('user') ?? null)
      trap.remember(ID)
      const response = await app.inject({ url: '/', headers: { cookie: `sid=${encodeURIComponent(signId(ID, SECRET))}` } })
      await app.close()
      const how = `${name} (${sync ? 'thrown' : 'rejected'})`
      t.equal(response.statusCode, 503, how)
      t.equal(trap.errors().length, 1, `${how}: logged once`)
      t.match(trap.errors()[0], MARK, `${how}: the hash is in the log`)
      t.same(trap.leaks(), [], `${how}: the id is not`)
    }
  }
})
