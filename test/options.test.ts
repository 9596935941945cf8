import t from 'tap'
import Fastify from 'fastify'
import sessionPlugin, { MemoryFactory, optionsSchema } from '../src/index.js'
import { defaults, resolveOptions } from '../src/options.js'
import { SECRET } from './helpers/app.js'

const factory = new MemoryFactory()
const base = { factory, secret: SECRET }

async function registrationError (options: unknown): Promise<Error & { code?: string }> {
  const app = Fastify()
  try {
    await app.register(sessionPlugin, options as never)
    await app.ready()
  } catch (error) {
    return error as Error & { code?: string }
  } finally {
    await app.close()
  }
  throw new Error('registration should have failed')
}

t.test('defaults are applied in one place', async (t) => {
  const resolved = resolveOptions(base)
  t.same(resolved.cookie, {
    name: 'sid', path: '/', domain: undefined, httpOnly: true, secure: 'auto', sameSite: 'lax', partitioned: undefined, priority: undefined, maxAge: undefined
  })
  t.equal(resolved.idleTimeout, 86_400)
  t.equal(resolved.absoluteTimeout, 604_800)
  t.equal(resolved.rolling, true)
  t.equal(resolved.saveUninitialized, false)
  t.equal(resolved.decorator, 'session')
  t.equal(resolved.storeTimeout, 5_000)
  t.equal(resolved.idGenerator, defaults.idGenerator)
  t.same(resolved.secrets, [SECRET])
  t.match(resolved.idGenerator(), /^[A-Za-z0-9_-]{43}$/, '32 random bytes, base64url')
  t.not(resolved.idGenerator(), resolved.idGenerator())
})

t.test('given options win over defaults', async (t) => {
  const idGenerator = (): string => 'fixed'
  const resolved = resolveOptions({
    ...base,
    secret: [SECRET, SECRET + 'x'],
    cookie: { name: '__Host-sid', secure: true, sameSite: 'strict', maxAge: 0, priority: 'high', partitioned: true, httpOnly: false },
    idleTimeout: 60,
    absoluteTimeout: 120,
    rolling: false,
    saveUninitialized: true,
    decorator: 'adminSession',
    storeTimeout: 100,
    idGenerator
  })
  t.match(resolved, {
    secrets: [SECRET, SECRET + 'x'],
    cookie: { name: '__Host-sid', secure: true, sameSite: 'strict', maxAge: 0, priority: 'high', partitioned: true, httpOnly: false, path: '/' },
    idleTimeout: 60,
    absoluteTimeout: 120,
    rolling: false,
    saveUninitialized: true,
    decorator: 'adminSession',
    storeTimeout: 100,
    idGenerator
  })
})

t.test('the schema is exported and refuses unknown keys', async (t) => {
  t.equal(optionsSchema.type, 'object')
  t.equal((optionsSchema as { additionalProperties?: unknown }).additionalProperties, false)
  const error = await registrationError({ ...base, maxAge: 10 })
  t.equal(error.code, 'FST_SESSION_INVALID_OPTIONS')
  t.match(error.message, '/maxAge')
})

const invalid: Array<[string, Record<string, unknown>, string[]]> = [
  ['missing factory and secret', {}, ['/factory', '/secret']],
  ['a factory without save', { ...base, factory: { load () {} } }, ['/factory']],
  ['a factory whose load is not a function', { ...base, factory: { load: 1, save () {} } }, ['/factory/load']],
  ['a short secret', { ...base, secret: 'short' }, ['/secret']],
  ['an empty secret array', { ...base, secret: [] }, ['/secret']],
  ['one short secret in the array', { ...base, secret: [SECRET, 'short'] }, ['/secret/1']],
  ['a negative maxAge', { ...base, cookie: { maxAge: -1 } }, ['/cookie/maxAge must be >= 0']],
  ['a fractional maxAge', { ...base, cookie: { maxAge: 1.5 } }, ['/cookie/maxAge']],
  ['an unknown cookie key', { ...base, cookie: { expires: 1 } }, ['/cookie']],
  ['a cookie name that is not a token', { ...base, cookie: { name: 'my sid' } }, ['/cookie/name']],
  ['a cookie name with a separator', { ...base, cookie: { name: 'sid;x' } }, ['/cookie/name']],
  ['a path with a semicolon', { ...base, cookie: { path: '/a;b' } }, ['/cookie/path']],
  ['a path with a comma', { ...base, cookie: { path: '/a,b' } }, ['/cookie/path']],
  ['a path with a space', { ...base, cookie: { path: '/a b' } }, ['/cookie/path']],
  ['a path with CR/LF', { ...base, cookie: { path: '/a\r\nSet-Cookie: x=1' } }, ['/cookie/path']],
  ['a path with non-ASCII', { ...base, cookie: { path: '/é' } }, ['/cookie/path']],
  ['a relative path', { ...base, cookie: { path: 'app' } }, ['/cookie/path']],
  ['a domain with a semicolon', { ...base, cookie: { domain: 'a.com;x' } }, ['/cookie/domain']],
  ['a domain with a space', { ...base, cookie: { domain: 'a .com' } }, ['/cookie/domain']],
  ['a domain with CR/LF', { ...base, cookie: { domain: 'a.com\r\n' } }, ['/cookie/domain']],
  ['a non-ASCII domain', { ...base, cookie: { domain: 'exämple.com' } }, ['/cookie/domain']],
  ['a domain with a comma', { ...base, cookie: { domain: 'a.com,b.com' } }, ['/cookie/domain']],
  ['an unknown sameSite', { ...base, cookie: { sameSite: 'Lax' } }, ['/cookie/sameSite']],
  ['a string secure other than auto', { ...base, cookie: { secure: 'yes' } }, ['/cookie/secure']],
  ['a zero idleTimeout', { ...base, idleTimeout: 0 }, ['/idleTimeout']],
  ['a fractional absoluteTimeout', { ...base, absoluteTimeout: 1.5 }, ['/absoluteTimeout']],
  ['a zero storeTimeout', { ...base, storeTimeout: 0 }, ['/storeTimeout']],
  ['a string rolling', { ...base, rolling: 'yes' }, ['/rolling']],
  ['a decorator that is not an identifier', { ...base, decorator: 'my-session' }, ['/decorator']],
  ['an idGenerator that is not a function', { ...base, idGenerator: 'x' }, ['/idGenerator']],
  ['__Host- without secure: true', { ...base, cookie: { name: '__Host-sid' } }, ['/cookie/secure must be true for a __Host- cookie']],
  ['__Host- with a domain', { ...base, cookie: { name: '__Host-sid', secure: true, domain: 'example.com' } }, ['/cookie/domain']],
  ['__Host- with a path', { ...base, cookie: { name: '__Host-sid', secure: true, path: '/app' } }, ['/cookie/path']],
  ['__host- in lower case', { ...base, cookie: { name: '__host-sid', secure: 'auto' } }, ['/cookie/secure']],
  ['__Secure- with secure auto', { ...base, cookie: { name: '__Secure-sid' } }, ['/cookie/secure must be true for a __Secure- cookie']],
  ['sameSite none without Secure', { ...base, cookie: { sameSite: 'none', secure: false } }, ['/cookie/secure']],
  ['partitioned without Secure', { ...base, cookie: { partitioned: true, secure: false } }, ['/cookie/secure']]
]

for (const [name, options, paths] of invalid) {
  t.test(`refused at registration: ${name}`, async (t) => {
    const error = await registrationError(options)
    t.equal(error.code, 'FST_SESSION_INVALID_OPTIONS')
    for (const path of paths) t.match(error.message, path)
  })
}

t.test('every offending path is named at once', async (t) => {
  const error = await registrationError({ ...base, idleTimeout: -1, storeTimeout: 'soon', cookie: { maxAge: -1, path: 'x' } })
  for (const path of ['/idleTimeout', '/storeTimeout', '/cookie/maxAge', '/cookie/path']) t.match(error.message, path)
})

t.test('valid edge cases are accepted', async (t) => {
  t.doesNotThrow(() => resolveOptions({ ...base, cookie: { domain: '.example.com', path: '/a/b-c_d~e!$&\'()*+=:@' } }))
  t.doesNotThrow(() => resolveOptions({ ...base, cookie: { name: '__Secure-sid', secure: true, sameSite: 'none', partitioned: true } }))
  t.doesNotThrow(() => resolveOptions({ ...base, cookie: { name: '__Host-sid', secure: true, path: '/' } }))
  t.doesNotThrow(() => resolveOptions({ ...base, cookie: { sameSite: 'none' } }), 'auto can be Secure')
})

t.test('patterns are explained in words', async (t) => {
  const error = await registrationError({ ...base, decorator: '1x', cookie: { name: 'a b', path: 'x', domain: 'a b' } })
  t.match(error.message, '/cookie/name must be a cookie name')
  t.match(error.message, '/cookie/path must start with "/"')
  t.match(error.message, '/cookie/domain must be a hostname')
  t.match(error.message, '/decorator must be a JavaScript identifier')
  t.notMatch(error.message, '^[', 'no regular expression in the message')
})
