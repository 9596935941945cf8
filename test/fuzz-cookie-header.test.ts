// Property: whatever Cookie header arrives, the plugin answers (never a 5xx, never a throw), and
// the factory is asked only for ids whose signature verifies; a factory whose ids authenticate
// themselves (sealed) is asked for what the cookie holds, and a session appears only from a
// value it issued.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import sessionPlugin from '../src/index.js'
import { OLD_SECRET, SECRET } from './helpers/app.js'
import { factoriesUnderTest, useFactory, wrapFactory } from './helpers/factories-under-test.js'
import { checkProperty } from './helpers/fuzz.js'
import { LogTrap, cookieValueIn, signId } from './helpers/log-trap.js'

const FOREIGN_SECRET = 'a-secret-this-app-has-never-heard-of-0000000'

interface Minted {
  /** Signed with a secret the app holds: the factory may be asked for its id. */
  valid: string[]
  /** Signed with a secret the app does not hold. */
  forged: string[]
  /** The ids inside the valid values. */
  ids: Set<string>
  users: Set<string>
}

interface Harness {
  /** The factory's ids authenticate themselves: its cookie carries the id with no HMAC. */
  selfAuthenticating: boolean
  app: FastifyInstance
  trap: LogTrap
  loads: string[]
  minted: Minted
  dispose: () => Promise<void>
}

/** The id inside a cookie value: before the signature, or the whole (unsigned) value. */
function idOf (value: string): string {
  const dot = value.lastIndexOf('.')
  return dot === -1 ? value : value.slice(0, dot)
}

async function harness (under: (typeof factoriesUnderTest)[number]): Promise<Harness> {
  const { factory, dispose } = await useFactory(under)
  const selfAuthenticating = factory.capabilities?.selfAuthenticatingIds === true
  const loads: string[] = []
  const trap = new LogTrap()
  const app = Fastify({ logger: trap.logger })
  await app.register(sessionPlugin, {
    factory: wrapFactory(factory, { onCall: (method, arg) => { if (method === 'load') loads.push(arg as string) } }),
    secret: [SECRET, OLD_SECRET]
  })
  app.get('/whoami', async (request) => ({ user: request.session.get('user') ?? null, isNew: request.session.isNew }))
  app.post<{ Body: { user: string } }>('/login', async (request) => {
    request.session.regenerate()
    request.session.set('user', request.body.user)
    return { ok: true }
  })

  const minted: Minted = { valid: [], forged: [], ids: new Set(), users: new Set() }
  const earlier: string[] = []
  for (let i = 0; i < 3; i++) {
    const user = `user-${randomBytes(8).toString('hex')}`
    const response = await app.inject({ method: 'POST', url: '/login', payload: { user } })
    const value = cookieValueIn(response.headers['set-cookie'])
    assert.ok(value, 'login sets the session cookie')
    minted.users.add(user)
    minted.valid.push(value, signId(idOf(value), OLD_SECRET))
    minted.forged.push(signId(idOf(value), FOREIGN_SECRET))
    trap.rememberCookie(value)
    trap.remember(user)
    // The earlier release signed a self-authenticating id too: that form still opens.
    if (selfAuthenticating) earlier.push(signId(value, SECRET))
  }
  minted.valid.push(...earlier)
  // A genuine signature over an id the factory never issued: it may be asked, and must say null.
  const unknown = randomBytes(32).toString('base64url')
  minted.valid.push(signId(unknown, SECRET), signId(unknown, OLD_SECRET))
  for (const value of minted.valid) minted.ids.add(idOf(value))
  loads.length = 0
  return { selfAuthenticating, app, trap, loads, minted, dispose: async () => { await app.close(); await dispose() } }
}

/** UTF-16 code units one by one: lone surrogates included. */
const utf16 = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 40 })

const PERCENT_BITS = ['%', '%%', '%0', '%00', '%zz', '%25', '%2e', '%2E', '%3B', '%3b', '%E0%A4%A', '%C0%AF', '%ff', '%FE%FF', '%uD800', '%F0%9F%8D%AA']

/** Thousands of cookies with the session cookie first or last. */
function manyCookies ([count, value, last]: [number, string, boolean]): string {
  const many = Array.from({ length: count }, (_, i) => `c${i}=v${i}`)
  if (last) many.push(`sid=${value}`)
  else many.unshift(`sid=${value}`)
  return many.join('; ')
}

function headers (minted: Minted): fc.Arbitrary<string> {
  const name = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom('sid', ' sid', 'sid ', '\tsid', 'sid\t') },
    { weight: 3, arbitrary: fc.constantFrom('SID', 'si d', 'sid\u0000', 'sïd', '🍪', '__Host-sid', '', '=', '"sid"') },
    { weight: 3, arbitrary: fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__') },
    { weight: 2, arbitrary: fc.string({ maxLength: 12 }) },
    { weight: 1, arbitrary: utf16 }
  )
  const valid = fc.constantFrom(...minted.valid)
  const value = fc.oneof(
    { weight: 4, arbitrary: valid },
    { weight: 2, arbitrary: fc.constantFrom(...minted.forged) },
    { weight: 2, arbitrary: valid.map((v) => `"${v}"`) },
    { weight: 2, arbitrary: valid.map((v) => encodeURIComponent(v)) },
    { weight: 2, arbitrary: fc.tuple(valid, fc.string({ maxLength: 6 })).map(([v, s]) => v + s) },
    { weight: 3, arbitrary: fc.array(fc.oneof(fc.constantFrom(...PERCENT_BITS), fc.string({ maxLength: 3 })), { maxLength: 12 }).map((a) => a.join('')) },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 48 }) },
    { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 24 }) },
    { weight: 1, arbitrary: utf16 },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom('a', '%', '.', '=', '"', ' ', '\t', '%41', '.sig'), fc.integer({ min: 1_000, max: 120_000 })).map(([s, n]) => s.repeat(Math.ceil(n / s.length))) }
  )
  const pair = fc.tuple(name, fc.constantFrom('=', '=', '=', ' = ', '==', ''), value).map(([n, eq, v]) => n + eq + v)
  const separator = fc.constantFrom('; ', '; ', ';', ' ; ', ';;', ',', ', ', '')
  return fc.oneof(
    { weight: 8, arbitrary: fc.array(fc.tuple(pair, separator), { minLength: 1, maxLength: 24 }).map((parts) => parts.map(([p, s]) => p + s).join('')) },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
    { weight: 1, arbitrary: utf16 },
    { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 100, max: 6_000 }), valid, fc.boolean()).map(manyCookies) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom(';', 'a;', ' ;', '=;', 'sid;', ';=', 'a=', '"'), fc.integer({ min: 1_000, max: 60_000 })).map(([s, n]) => s.repeat(n)) }
  )
}

function assertPrototypesClean (): void {
  assert.deepEqual(Object.keys(Object.prototype), [], 'Object.prototype gained a key')
  assert.equal(({} as Record<string, unknown>).polluted, undefined)
}

for (const under of factoriesUnderTest) {
  t.test(`${under.name}: any Cookie header`, { skip: under.skip ?? false }, async (t) => {
    const h = await harness(under)
    t.teardown(h.dispose)
    const loaded = { sessions: 0, renewed: 0, fresh: 0 }

    await checkProperty(fc.asyncProperty(headers(h.minted), async (cookie) => {
      h.loads.length = 0
      const response = await h.app.inject({ method: 'GET', url: '/whoami', headers: { cookie } })
      assert.equal(response.statusCode, 200, `status ${response.statusCode}`)
      const body = response.json() as { user: string | null, isNew: boolean }
      // One load, and a second of the same id only to check the record is still there before its cookie is re-issued.
      assert.ok(h.loads.length <= 2 && new Set(h.loads).size <= 1, 'the factory is asked about one id, at most twice')
      if (!h.selfAuthenticating) for (const id of h.loads) assert.ok(h.minted.ids.has(id), 'the factory was asked for an id whose signature does not verify')
      if (body.user !== null) {
        assert.ok(h.minted.users.has(body.user), 'a session appeared that nobody made')
        assert.ok(h.loads.length >= 1)
        loaded.sessions++
      } else {
        assert.equal(body.isNew, true)
        loaded.fresh++
      }
      const set = cookieValueIn(response.headers['set-cookie'])
      if (set !== undefined && set !== '') {
        // A read-only request re-issues only a cookie signed with the older secret (or, for a
        // self-authenticating id, signed at all), for the same id.
        assert.ok(h.loads.length >= 1)
        assert.equal(set, h.selfAuthenticating ? h.loads[0] : signId(h.loads[0] as string, SECRET))
        loaded.renewed++
      }
      assertPrototypesClean()
    }), 180)

    t.ok(loaded.sessions > 10, `valid cookies were found among the junk (${loaded.sessions} times)`)
    t.ok(loaded.renewed > 0, `cookies signed with the older secret were re-issued (${loaded.renewed} times)`)
    t.ok(loaded.fresh > 60, `junk gave fresh sessions (${loaded.fresh} times)`)
    t.same(h.trap.errors(), [], 'nothing was logged at error level')
    t.same(h.trap.leaks(), [], 'no session id, cookie value or session value reached the log')
  })

  t.test(`${under.name}: the session cookie is found wherever it sits among junk cookies`, { skip: under.skip ?? false }, async (t) => {
    const h = await harness(under)
    t.teardown(h.dispose)
    const junkName = fc.string({ maxLength: 10 }).filter((n) => !n.includes(';') && !n.includes('=') && n.replace(/^[ \t]+|[ \t]+$/g, '') !== 'sid')
    const junkValue = fc.string({ maxLength: 16 }).filter((v) => !v.includes(';'))
    const junk = fc.array(fc.tuple(junkName, junkValue).map(([n, v]) => `${n}=${v}`), { maxLength: 10 })
    const current = h.minted.valid.filter((_, i) => i % 2 === 0 && i < 6)

    await checkProperty(fc.asyncProperty(junk, junk, fc.constantFrom(...current), async (before, after, value) => {
      h.loads.length = 0
      const cookie = [...before, `sid=${value}`, ...after].join('; ')
      const response = await h.app.inject({ method: 'GET', url: '/whoami', headers: { cookie } })
      assert.equal(response.statusCode, 200)
      assert.deepEqual(h.loads, [idOf(value)])
      assert.ok(h.minted.users.has((response.json() as { user: string }).user))
      assertPrototypesClean()
    }), 60)
    t.same(h.trap.leaks(), [], 'no session id, cookie value or session value reached the log')
  })
}
