import { MAX_AGE_LIMIT } from './session.js'

// What a schema error would say in its own words ("must match a schema in anyOf", "schema is
// false"), said here in ours: what to write instead, above all for the options of the plugins
// people move from (@fastify/session, express-session, @fastify/secure-session).

const MAKE_SECRET = 'make one with `openssl rand -base64 48`'

/** Top-level options of the peers, and what to write instead. */
const PEER_OPTIONS: Record<string, string> = {
  cookieName: 'write cookie.name (cookie: { name: \'sessionId\' })',
  name: 'express-session\'s cookie name is cookie.name here (cookie: { name: \'connect.sid\' })',
  store: 'an express-session store goes in as the factory: `factory: fromExpressStore(store)`',
  cookiePrefix: 'put the prefix in cookie.name (cookie: { name: \'__Host-sid\' })',
  genid: 'write idGenerator',
  resave: 'not needed: a session is saved when it changed, and `rolling` renews it',
  key: 'to keep sessions sealed in the cookie, `factory: new SealedCookieFactory({ keys: [key] })`; `secret` signs the cookie',
  salt: 'not needed: `secret` needs no salt; to seal sessions in the cookie, `factory: new SealedCookieFactory({ keys: [a 32-byte key] })`',
  sessionName: 'write decorator (the request property the session is on)',
  expiry: 'write absoluteTimeout (seconds) for the session\'s lifetime, or cookie.maxAge (seconds) for the cookie\'s',
  cookieOptions: 'write cookie: { … }',
  maxAge: 'write cookie.maxAge (seconds)'
}

/** Cookie options of the peers that we do not take, and why. */
const PEER_COOKIE_OPTIONS: Record<string, string> = {
  expires: 'set cookie.maxAge (seconds) instead: each response gets the date it implies',
  signed: 'leave it out: the session cookie is always signed, with `secret`'
}

/** A key as a JSON pointer writes it, as schema errors do. */
function pointer (key: string): string {
  return key.replaceAll('~', '~0').replaceAll('/', '~1')
}

function listed (values: readonly unknown[]): string {
  const shown = values.map((value) => typeof value === 'string' ? `'${value}'` : String(value))
  return `${shown.slice(0, -1).join(', ')} or ${shown.at(-1) as string}`
}

function isRecord (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** What the schema allows: the option keys, the cookie keys, and the values of each cookie option that takes one of a few. */
export interface OptionShape {
  keys: readonly string[]
  cookieKeys: readonly string[]
  cookieChoices: Readonly<Record<string, readonly unknown[]>>
}

/**
 * One message per offending path that we can say better than the schema can: path -> message.
 * Schema errors at these paths (and below them) are dropped by the caller; every path here is a
 * real problem, never a hint about a valid value.
 */

export function optionHints (options: Record<string, unknown>, shape: OptionShape): Map<string, string> {
  const hints = new Map<string, string>()
  for (const [path, message] of secretHints(options.secret)) hints.set(path, message)
  if (options.factory === undefined) hints.set('/factory', 'is required: where sessions live, such as `new MemoryFactory()`, `new RedisFactory({ client })` or `fromExpressStore(store)`')
  for (const key of Object.keys(options)) {
    if (shape.keys.includes(key)) continue
    hints.set(`/${pointer(key)}`, PEER_OPTIONS[key] === undefined ? 'is not an option' : `is not an option: ${PEER_OPTIONS[key]}`)
  }
  const cap = options.maxSessionsPerUser
  if (cap !== undefined && !(Number.isInteger(cap) && (cap as number) >= 1)) {
    hints.set('/maxSessionsPerUser', 'must be a whole number of at least 1: how many sessions each user keeps signed in at once (leave it out for no limit)')
  }
  if (isRecord(options.cookie)) {
    for (const [path, message] of cookieHints(options.cookie, shape)) hints.set(path, message)
  }
  return hints
}

function secretHints (secret: unknown): Array<[string, string]> {
  if (secret === undefined || secret === null) {
    return [['/secret', `is required: a string of at least 32 characters (or an array of them, for rotation); ${MAKE_SECRET}`]]
  }
  const good = (value: unknown): boolean => typeof value === 'string' && value.length >= 32
  if (typeof secret === 'string') return good(secret) ? [] : [['/secret', `must be at least 32 characters; ${MAKE_SECRET}`]]
  if (!Array.isArray(secret)) {
    return [['/secret', 'must be a string of at least 32 characters, or an array of them (for rotation: the first signs, every one verifies)']]
  }
  if (secret.length === 0) return [['/secret', `must hold at least one secret; ${MAKE_SECRET}`]]
  const hints: Array<[string, string]> = []
  secret.forEach((value: unknown, i) => {
    if (!good(value)) hints.push([`/secret/${i}`, `must be a string of at least 32 characters; ${MAKE_SECRET}`])
  })
  return hints
}

function cookieHints (cookie: Record<string, unknown>, { cookieKeys, cookieChoices }: OptionShape): Array<[string, string]> {
  const hints: Array<[string, string]> = []
  for (const key of Object.keys(cookie)) {
    if (cookieKeys.includes(key)) continue
    const why = PEER_COOKIE_OPTIONS[key]
    hints.push([`/cookie/${pointer(key)}`, why === undefined ? 'is not a cookie option' : `is not a cookie option: ${why}`])
  }
  const { maxAge } = cookie
  if (Number.isInteger(maxAge) && (maxAge as number) > MAX_AGE_LIMIT) {
    hints.push(['/cookie/maxAge', `is in seconds (at most ${MAX_AGE_LIMIT}, 400 days); @fastify/session takes milliseconds: divide by 1000`])
  }
  // Values the peers accept in another case or form; ours are lowercase.
  for (const [key, allowed] of Object.entries(cookieChoices)) {
    const value = cookie[key]
    if (value === undefined || allowed.includes(value)) continue
    hints.push([`/cookie/${key}`, `must be ${listed(allowed)}${oneOfHint(key, value, allowed)}`])
  }
  return hints
}

/** What a value the peers accept means here. */
function oneOfHint (key: string, value: unknown, allowed: readonly unknown[]): string {
  if (typeof value === 'string' && allowed.includes(value.toLowerCase())) return ` (lowercase: '${value.toLowerCase()}')`
  if (key === 'sameSite' && value === true) return ' (@fastify/cookie\'s true is \'strict\')'
  if (key === 'sameSite' && value === false) return ' (no SameSite attribute is not offered: \'lax\' is what browsers apply then)'
  return ''
}
