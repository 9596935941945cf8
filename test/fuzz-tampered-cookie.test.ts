// Property: any change to a valid signed cookie (flip, truncate, append, prefix...) gives a fresh
// session, and the factory is never asked for what it holds; a factory whose ids authenticate
// themselves (sealed: no HMAC in the cookie) is asked to load it, and finds nothing.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import Fastify from 'fastify'
import t from 'tap'
import sessionPlugin from '../src/index.js'
import { OLD_SECRET, SECRET } from './helpers/app.js'
import { factoriesUnderTest, useFactory, wrapFactory } from './helpers/factories-under-test.js'
import { checkProperty } from './helpers/fuzz.js'
import { LogTrap, cookieValueIn, signId } from './helpers/log-trap.js'

// Whitespace around a value and a pair of double quotes are cookie syntax (RFC 6265), and ';'
// starts the next cookie: a change made only of those is not a change of the value.
const ALPHABET = [
  ...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=.%,:\\\'!~*()[]{}<>?#&@|^`$',
  '\u0000', '\u007f', '\u00a0', 'é', 'ß', '\u2028', '🍪', '\ud800'
]
const char = fc.constantFrom(...ALPHABET)
const chunk = fc.array(char, { minLength: 1, maxLength: 8 }).map((a) => a.join(''))

type Mutation = (value: string) => string

const mutation: fc.Arbitrary<{ kind: string, apply: Mutation }> = fc.oneof(
  fc.tuple(fc.nat(), char).map(([at, c]) => ({ kind: 'flip', apply: (v: string) => { const i = at % v.length; return v.slice(0, i) + c + v.slice(i + 1) } })),
  fc.nat().map((n) => ({ kind: 'truncate', apply: (v: string) => v.slice(0, n % v.length) })),
  fc.nat().map((n) => ({ kind: 'cut front', apply: (v: string) => v.slice(1 + (n % v.length)) })),
  chunk.map((s) => ({ kind: 'append', apply: (v: string) => v + s })),
  chunk.map((s) => ({ kind: 'prefix', apply: (v: string) => s + v })),
  fc.tuple(fc.nat(), chunk).map(([at, s]) => ({ kind: 'insert', apply: (v: string) => { const i = at % v.length; return v.slice(0, i) + s + v.slice(i) } })),
  fc.nat().map((at) => ({ kind: 'delete one', apply: (v: string) => { const i = at % v.length; return v.slice(0, i) + v.slice(i + 1) } })),
  fc.nat().map((at) => ({ kind: 'swap', apply: (v: string) => { const i = at % (v.length - 1); return v.slice(0, i) + v[i + 1] + v[i] + v.slice(i + 2) } })),
  fc.nat().map((at) => ({ kind: 'case', apply: (v: string) => { const i = at % v.length; const c = v[i] as string; return v.slice(0, i) + (c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase()) + v.slice(i + 1) } })),
  fc.nat().map((at) => ({ kind: 'move the dot', apply: (v: string) => { const bare = v.replace('.', ''); const i = at % bare.length; return bare.slice(0, i) + '.' + bare.slice(i) } }))
)

/** The id inside a cookie value: before the signature, or the whole (unsigned) value. */
function idOf (value: string): string {
  const dot = value.lastIndexOf('.')
  return dot === -1 ? value : value.slice(0, dot)
}

for (const under of factoriesUnderTest) {
  t.test(`${under.name}: a tampered session cookie gives a fresh session and never reaches the factory`, { skip: under.skip ?? false }, async (t) => {
    const { factory, dispose } = await useFactory(under)
    const selfAuthenticating = factory.capabilities?.selfAuthenticatingIds === true
    // What the factory may be asked about a tampered cookie: nothing, or (self-authenticating) to load it.
    const allowed = selfAuthenticating ? ['load'] : []
    const calls: string[] = []
    const trap = new LogTrap()
    const app = Fastify({ logger: trap.logger })
    await app.register(sessionPlugin, {
      factory: wrapFactory(factory, { onCall: (method) => calls.push(method) }),
      secret: [SECRET, OLD_SECRET]
    })
    app.get('/whoami', async (request) => ({ user: request.session.get('user') ?? null, isNew: request.session.isNew }))
    app.post<{ Body: { user: string } }>('/login', async (request) => {
      request.session.regenerate()
      request.session.set('user', request.body.user)
      return { ok: true }
    })
    app.post('/note', async (request) => {
      request.session.set('note', 'written')
      return { ok: true }
    })
    t.teardown(async () => { await app.close(); await dispose() })

    const genuine: Array<{ value: string, user: string }> = []
    for (let i = 0; i < 4; i++) {
      const user = `user-${randomBytes(8).toString('hex')}`
      const value = cookieValueIn((await app.inject({ method: 'POST', url: '/login', payload: { user } })).headers['set-cookie']) as string
      genuine.push({ value, user })
      trap.rememberCookie(value)
      trap.remember(user)
    }
    // The older secret's signature is as genuine as the current one's.
    const last = genuine[3] as { value: string, user: string }
    genuine.push({ value: signId(idOf(last.value), OLD_SECRET), user: last.user })
    // So is the earlier release's signed form of a self-authenticating id.
    if (selfAuthenticating) genuine.push({ value: signId(last.value, SECRET), user: last.user })
    const kinds = new Map<string, number>()

    await checkProperty(fc.asyncProperty(fc.constantFrom(...genuine), mutation, fc.boolean(), async (cookie, change, write) => {
      const tampered = change.apply(cookie.value)
      fc.pre(tampered !== cookie.value)
      // A signed form cut back to its self-authenticating id is that genuine id, not a forgery.
      fc.pre(!selfAuthenticating || !genuine.some((g) => idOf(g.value) === tampered))
      kinds.set(change.kind, (kinds.get(change.kind) ?? 0) + 1)
      calls.length = 0
      const read = await app.inject({ method: 'GET', url: '/whoami', headers: { cookie: `sid=${tampered}` } })
      assert.equal(read.statusCode, 200)
      assert.deepEqual(read.json(), { user: null, isNew: true })
      assert.deepEqual(calls.filter((call) => !allowed.includes(call)), [], 'the factory was asked about a tampered cookie')
      assert.ok(calls.length <= 1, 'one load at most')
      if (write) {
        const written = await app.inject({ method: 'POST', url: '/note', headers: { cookie: `sid=${tampered}` } })
        assert.equal(written.statusCode, 200)
        if (!selfAuthenticating) assert.equal(calls.filter((call) => call === 'load').length, 0, 'the factory was asked to load a tampered cookie')
        const issued = cookieValueIn(written.headers['set-cookie']) as string
        assert.notEqual(idOf(issued), idOf(cookie.value), 'a tampered cookie chose its id')
        assert.notEqual(idOf(issued), idOf(tampered), 'a tampered cookie chose its id')
        trap.rememberCookie(issued)
      }
      // The genuine cookie still opens its own, unchanged session.
      const still = await app.inject({ method: 'GET', url: '/whoami', headers: { cookie: `sid=${cookie.value}` } })
      assert.equal((still.json() as { user: string }).user, cookie.user)
    }), 100)

    t.equal(kinds.size, 10, `every kind of mutation ran: ${JSON.stringify(Object.fromEntries(kinds))}`)
    t.same(trap.errors(), [], 'nothing was logged at error level')
    t.same(trap.leaks(), [], 'no session id, cookie value or session value reached the log')
  })
}
