// Issue 26 (DESIGN §4, caches): a cookie the handler did not cause (re-signing after a secret
// rotation, clearing a stale cookie, the rolling refresh of a persistent cookie, a reseal after a
// SealedCookieFactory key rotation) never goes on a response a shared cache may store. One test
// per shared-cacheable shape of Cache-Control for each such cookie: the cookie is held back there
// (whether or not the route reads the session), and goes on the next private response.
import { randomBytes } from 'node:crypto'
import { Signer } from '@fastify/cookie'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import t from 'tap'
import { MemoryFactory, SealedCookieFactory } from '../src/index.js'
import { OLD_SECRET, SECRET, attributesOf, buildApp, sessionCookie, sessionIdOf, setCookies, type Options } from './helpers/app.js'
import { fakeClock } from './helpers/clock.js'
import { signId } from './helpers/log-trap.js'
import type { TapTest } from './helpers/redis.js'

/** Cache-Control values a shared cache may store: each shape the plugin must recognise. */
const SHARED: Array<[string, string | string[]]> = [
  ['public', 'public'],
  ['s-maxage=600', 's-maxage=600'],
  ['max-age=600 alone', 'max-age=600'],
  ['an array of values (no-transform, max-age=600)', ['no-transform', 'max-age=600']]
]
/** The private response that follows. */
const PRIVATE = 'private, max-age=600'

/** buildApp plus GET /cached: the Cache-Control of its `cc` query (repeat it for an array), reading the session when `read` is set. */
async function cacheApp (t: TapTest, options: Options = {}): Promise<FastifyInstance> {
  const app = await buildApp(options)
  app.get<{ Querystring: { cc: string | string[], read?: string } }>('/cached', async (request, reply) => {
    reply.header('cache-control', request.query.cc)
    if (request.query.read !== undefined) request.session.get('user')
    return 'the same for everyone'
  })
  t.teardown(() => app.close())
  return app
}

function cachedUrl (cc: string | string[], read: boolean): string {
  const query = (Array.isArray(cc) ? cc : [cc]).map((value) => `cc=${encodeURIComponent(value)}`)
  if (read) query.push('read=1')
  return `/cached?${query.join('&')}`
}

/** The one Set-Cookie line for `sid` in a response, or undefined. */
function sidLine (response: LightMyRequestResponse): string | undefined {
  const lines = setCookies(response).filter((line) => line.startsWith('sid='))
  if (lines.length > 1) throw new Error('two Set-Cookie lines for sid')
  return lines[0]
}

/** The value of a `sid=value; ...` line, decoded. */
function valueOf (line: string): string {
  return decodeURIComponent(line.slice('sid='.length, line.indexOf(';') === -1 ? undefined : line.indexOf(';')))
}

interface OptionalCookie {
  name: string
  /** An app, and a Cookie header on which its next response would carry the optional cookie. */
  arrange: (t: TapTest) => Promise<{ app: FastifyInstance, cookie: string, expect: (t: TapTest, line: string | undefined) => Promise<void> }>
}

const optionalCookies: OptionalCookie[] = [
  {
    name: 'the re-signature after a secret rotation',
    async arrange (t) {
      const factory = new MemoryFactory()
      const before = await cacheApp(t, { factory, secret: OLD_SECRET })
      const cookie = sessionCookie(await before.inject({ method: 'POST', url: '/set', payload: { user: 'ada' } })) as string
      const app = await cacheApp(t, { factory, secret: [SECRET, OLD_SECRET] })
      return {
        app,
        cookie,
        async expect (t, line) {
          const signed = new Signer(SECRET).unsign(line === undefined ? '' : valueOf(line))
          t.ok(signed.valid, 're-signed with the first secret')
          t.equal(signed.value, sessionIdOf(cookie), 'the same session')
        }
      }
    }
  },
  {
    name: 'clearing a stale cookie',
    async arrange (t) {
      const app = await cacheApp(t)
      return {
        app,
        cookie: `sid=${encodeURIComponent(signId('a-session-that-no-longer-exists-0123456789', SECRET))}`,
        async expect (t, line) {
          t.equal(line === undefined ? undefined : valueOf(line), '', 'the stale cookie is cleared')
        }
      }
    }
  },
  {
    name: 'the rolling refresh of a persistent cookie',
    async arrange (t) {
      const clock = fakeClock(t)
      // A touch, and with it the cookie's refresh, is due every tenth of the idle timeout: 60 s.
      const app = await cacheApp(t, { idleTimeout: 600, cookie: { maxAge: 3600 } })
      const cookie = sessionCookie(await app.inject({ method: 'POST', url: '/set', payload: { user: 'ada' } })) as string
      clock.advance(100_000)
      return {
        app,
        cookie,
        async expect (t, line) {
          t.equal(line === undefined ? undefined : attributesOf(line)['Max-Age'], '3600', 'a refreshed persistent cookie')
          const signed = new Signer(SECRET).unsign(line === undefined ? '' : valueOf(line))
          t.ok(signed.valid && signed.value === sessionIdOf(cookie), 'of the same session')
        }
      }
    }
  },
  {
    name: 'the reseal after a SealedCookieFactory key rotation',
    async arrange (t) {
      const oldKey = randomBytes(32)
      const newKey = randomBytes(32)
      const before = await cacheApp(t, { factory: new SealedCookieFactory({ keys: oldKey }) })
      const cookie = sessionCookie(await before.inject({ method: 'POST', url: '/set', payload: { user: 'ada' } })) as string
      const app = await cacheApp(t, { factory: new SealedCookieFactory({ keys: [newKey, oldKey] }) })
      return {
        app,
        cookie,
        async expect (t, line) {
          // A seal authenticates itself: the cookie carries it without an HMAC.
          const opened = line === undefined ? null : await new SealedCookieFactory({ keys: newKey }).load(valueOf(line))
          t.equal(opened?.get('user'), 'ada', 'resealed: the new key alone opens it')
        }
      }
    }
  },
  {
    name: 'the unsigned re-issue of a sealed cookie signed as earlier releases did',
    async arrange (t) {
      const factory = new SealedCookieFactory({ keys: randomBytes(32) })
      const app = await cacheApp(t, { factory })
      const sealed = valueOf(sidLine(await app.inject({ method: 'POST', url: '/set', payload: { user: 'ada' } })) as string)
      return {
        app,
        cookie: `sid=${encodeURIComponent(signId(sealed, SECRET))}`,
        async expect (t, line) {
          t.equal(line === undefined ? undefined : valueOf(line), sealed, 'the same seal, unsigned')
        }
      }
    }
  }
]

for (const optional of optionalCookies) {
  for (const [shape, cc] of SHARED) {
    t.test(`${optional.name} is held back from a Cache-Control: ${shape} response, and sent on the next private one`, async (t) => {
      const { app, cookie, expect } = await optional.arrange(t)
      for (const read of [false, true]) {
        const shared = await app.inject({ url: cachedUrl(cc, read), headers: { cookie } })
        t.equal(shared.statusCode, 200)
        t.same(setCookies(shared), [], `no Set-Cookie on the shared-cacheable response (${read ? 'the route reads the session' : 'the route never reads it'})`)
      }
      const next = await app.inject({ url: cachedUrl(PRIVATE, false), headers: { cookie } })
      t.equal(next.statusCode, 200)
      t.equal(next.headers['cache-control'], PRIVATE, 'the app\'s own Cache-Control is kept')
      await expect(t, sidLine(next))
    })
  }
}
