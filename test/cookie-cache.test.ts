import t from 'tap'
import Fastify from 'fastify'
import fastifyCookie, { Signer } from '@fastify/cookie'
import { SessionCookie } from '../src/cookie.js'
import { defaults } from '../src/options.js'
import { OLD_SECRET, SECRET } from './helpers/app.js'

// The cache of verified signatures must never change what unsign answers.
const cookieOptions = { ...defaults.cookie }
const app = Fastify()
await app.register(fastifyCookie)
t.teardown(() => app.close())

t.test('a cached value answers as the first check did, a tampered one is still refused', async (t) => {
  const cookie = new SessionCookie(app, cookieOptions, [SECRET])
  const value = cookie.sign('some-id')
  t.same(cookie.unsign(value), { id: 'some-id', renew: false })
  t.same(cookie.unsign(value), { id: 'some-id', renew: false }, 'second answer, from the cache')
  t.equal(cookie.unsign(`${value.slice(0, -1)}${value.endsWith('A') ? 'B' : 'A'}`), null)
  t.equal(cookie.unsign(`other-id.${value.split('.')[1] as string}`), null)
})

t.test('a value signed with an older secret is reported for renewal every time', async (t) => {
  const cookie = new SessionCookie(app, cookieOptions, [SECRET, OLD_SECRET])
  const old = new Signer([OLD_SECRET], 'sha256').sign('old-id')
  t.same(cookie.unsign(old), { id: 'old-id', renew: true })
  t.same(cookie.unsign(old), { id: 'old-id', renew: true })
})

t.test('the cache is bounded: the oldest value goes, and is verified again when it returns', async (t) => {
  const cookie = new SessionCookie(app, cookieOptions, [SECRET], false, 2)
  const values = ['a', 'b', 'c'].map((id) => cookie.sign(id))
  // A cached answer is the very object the first check made; a fresh check makes a new one.
  const first = cookie.unsign(values[0] as string)
  t.equal(cookie.unsign(values[0] as string), first, 'a is answered from the cache')
  for (const value of values.slice(1)) t.not(cookie.unsign(value), null)
  const again = cookie.unsign(values[0] as string)
  t.same(again, { id: 'a', renew: false })
  t.not(again, first, 'a was evicted by c, and verified again')
  t.equal(cookie.unsign(values[2] as string), cookie.unsign(values[2] as string), 'c is still cached')
})
