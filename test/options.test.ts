import t from 'tap'
import { MemoryFactory, optionsSchema } from '../src/index.js'
import { defaults, resolveOptions } from '../src/options.js'
import { SECRET } from './helpers/app.js'
import { registrationError } from './helpers/registration.js'

const factory = new MemoryFactory()
const base = { factory, secret: SECRET }

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

/** The messages of a registration that must fail, one per offending path, in order. */
async function problemsOf (options: Record<string, unknown>): Promise<string> {
  const error = await registrationError(options)
  if (error.code !== 'FST_SESSION_INVALID_OPTIONS') throw new Error(`got ${String(error.code)}`)
  return error.message
}

t.test('a missing secret says what to give and how to make one, in one message', async (t) => {
  const withoutKey = await problemsOf({ factory })
  const undefinedValue = await problemsOf({ factory, secret: process.env.NO_SUCH_SESSION_SECRET })
  for (const message of [withoutKey, undefinedValue]) {
    t.match(message, '/secret is required')
    t.match(message, 'at least 32 characters')
    t.match(message, 'openssl rand')
    t.notMatch(message, 'anyOf')
    t.notMatch(message, 'must be array')
  }
})

t.test('a bad secret gets one message for what is wrong with it', async (t) => {
  const cases: Array<[unknown, string, string]> = [
    ['short', '/secret must be at least 32 characters', 'openssl rand'],
    [[], '/secret must hold at least one', 'openssl rand'],
    [[SECRET, 'short'], '/secret/1 must be a string of at least 32 characters', 'openssl rand'],
    [[SECRET, 7], '/secret/1 must be a string of at least 32 characters', 'openssl rand'],
    [Buffer.from(SECRET), '/secret must be a string of at least 32 characters, or an array', 'rotation']
  ]
  for (const [secret, phrase, hint] of cases) {
    const message = await problemsOf({ factory, secret })
    t.match(message, phrase)
    t.match(message, hint)
    t.equal(message.split(';').filter((part) => part.includes('/secret')).length, 1, `${phrase}: one message`)
    t.notMatch(message, /anyOf|must be array|must be string/)
  }
})

t.test('options of @fastify/session, express-session and @fastify/secure-session name our equivalent', async (t) => {
  const peers: Array<[string, unknown, string]> = [
    ['cookieName', 'sessionId', 'cookie.name'],
    ['store', {}, 'fromExpressStore(store)'],
    ['cookiePrefix', 's:', '__Host-sid'],
    ['name', 'connect.sid', 'cookie.name'],
    ['genid', () => 'x', 'idGenerator'],
    ['resave', false, 'when it changed'],
    ['key', Buffer.alloc(32), 'new SealedCookieFactory({ keys: [key] })'],
    ['salt', 'mq9hDxBVDbspDR6nLfFT1g==', 'SealedCookieFactory'],
    ['sessionName', 'session', 'decorator'],
    ['expiry', 86_400, 'absoluteTimeout'],
    ['cookieOptions', { path: '/' }, 'cookie: {'],
    ['maxAge', 60, 'cookie.maxAge']
  ]
  for (const [key, value, equivalent] of peers) {
    const message = await problemsOf({ ...base, [key]: value })
    t.match(message, `/${key} `, `${key}: the path is named`)
    t.match(message, equivalent, `${key}: ${equivalent}`)
    t.notMatch(message, /schema is false|additional properties/, `${key}: no schema jargon`)
  }
  t.match(await problemsOf({ ...base, sessionKey: 1 }), '/sessionKey is not an option')
  t.match(await problemsOf({ ...base, 'a/b': 1 }), '/a~1b is not an option', 'a key is escaped as in a JSON pointer')
  const all = await problemsOf({ ...base, cookieName: 'x', store: {}, expiry: 1 })
  for (const key of ['/cookieName', '/store', '/expiry']) t.match(all, key)
})

t.test('cookie options given as @fastify/session takes them name ours', async (t) => {
  const cookies: Array<[Record<string, unknown>, string, string]> = [
    [{ maxAge: 86_400_000 }, '/cookie/maxAge', 'divide by 1000'],
    [{ maxAge: 34_560_001 }, '/cookie/maxAge', 'in seconds'],
    [{ expires: new Date() }, '/cookie/expires', 'cookie.maxAge'],
    [{ sameSite: 'Lax' }, '/cookie/sameSite', "lowercase: 'lax'"],
    [{ sameSite: 'STRICT' }, '/cookie/sameSite', "lowercase: 'strict'"],
    [{ sameSite: 'None' }, '/cookie/sameSite', "lowercase: 'none'"],
    [{ sameSite: true }, '/cookie/sameSite', "true is 'strict'"],
    [{ sameSite: false }, '/cookie/sameSite', "'lax' is what browsers apply"],
    [{ sameSite: 'loose' }, '/cookie/sameSite', "'lax', 'strict' or 'none'"],
    [{ secure: 'yes' }, '/cookie/secure', "'auto'"],
    [{ priority: 'High' }, '/cookie/priority', "lowercase: 'high'"],
    [{ priority: 'urgent' }, '/cookie/priority', "'low', 'medium' or 'high'"],
    [{ signed: true }, '/cookie/signed', 'always signed'],
    [{ encode: String }, '/cookie/encode is not a cookie option', '/cookie/encode']
  ]
  for (const [cookie, path, equivalent] of cookies) {
    const message = await problemsOf({ ...base, cookie })
    const name = JSON.stringify(cookie)
    t.match(message, path, `${name}: the path is named`)
    t.match(message, equivalent, `${name}: ${equivalent}`)
    t.equal(message.split(';').filter((part) => part.includes(path)).length, 1, `${name}: one message`)
    t.notMatch(message, /schema is false|additional properties|anyOf|equal to constant/, `${name}: no schema jargon`)
  }
  const all = await problemsOf({ ...base, cookie: { maxAge: 86_400_000, sameSite: 'Lax', expires: 1 } })
  for (const path of ['/cookie/maxAge', '/cookie/sameSite', '/cookie/expires']) t.match(all, path)
  t.match(await problemsOf({ ...base, cookie: { maxAge: 86_400_000.5 } }), '/cookie/maxAge must be integer', 'a fraction is not taken for milliseconds')
})

t.test('options that are not an object are refused at the root', async (t) => {
  for (const options of [null, [{ ...base }], 'secret']) {
    t.throws(() => resolveOptions(options), { code: 'FST_SESSION_INVALID_OPTIONS', message: /\/ must be object/ }, JSON.stringify(options))
  }
})
