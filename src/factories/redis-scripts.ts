import { createHash } from 'node:crypto'
import { CorruptRecord } from '../errors.js'
import type { Session } from '../session.js'
import { newData } from '../session-data.js'
import type { UserFiling } from '../user.js'
import { hasLoneSurrogate } from '../unicode.js'

// RedisFactory's record layout and the Lua scripts that write it, each with what it takes.

// Metadata and data live in one hash; the `m:` and `d:` namespaces keep user keys off our fields.
export const CREATED_AT = 'm:createdAt'
export const TOUCHED_AT = 'm:touchedAt'
export const EXPIRES_AT = 'm:expiresAt'
/** The user the session is filed under, as JSON (exact for any string); absent for none. */
export const USER = 'm:userId'
/** The user's generation the session was filed at; absent (with no user): never filed. */
export const GENERATION = 'm:generation'
const DATA = 'd:'
// Redis keeps UTF-8, where a lone surrogate becomes U+FFFD: such a key is stored JSON-escaped.
const ESCAPED = 'e:'

/** The hash field that holds a session key's value. */
function fieldOf (key: string): string {
  return hasLoneSurrogate(key) ? ESCAPED + JSON.stringify(key) : DATA + key
}

/** The data of a stored hash (its `d:` and `e:` fields), keys and values decoded. */
export function dataOf (fields: Record<string, string>, names: string[]): Record<string, unknown> {
  // Inheriting nothing, so a "__proto__" field is a plain property until fromJSON's copy drops it.
  const data = newData()
  for (const name of names) {
    const escaped = name.startsWith(ESCAPED)
    if (!escaped && !name.startsWith(DATA)) continue
    try {
      data[escaped ? JSON.parse(name.slice(ESCAPED.length)) as string : name.slice(DATA.length)] = JSON.parse(fields[name] as string)
    } catch {
      throw new CorruptRecord('a field holds a value or an escaped key that is not JSON')
    }
  }
  return data
}

/** A stored user (the JSON of its id, as the scripts write it) as the plugin names it; null for none. */
export function userOf (stored: string | undefined | null): string | null {
  return stored === undefined || stored === null || stored === '' ? null : JSON.parse(stored) as string
}

/** A stored generation; null when the record was never filed. */
export function generationOf (stored: string | undefined | null): number | null {
  return stored === undefined || stored === null || stored === '' ? null : Number(stored)
}

export interface Script {
  lua: string
  sha: string
}

function script (lua: string): Script {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') }
}

// Files a session in a user's index (a sorted set of ids scored by expiresAt): drops the entries
// already expired, and keeps the index, and the user's generation, alive at least as long as its
// longest-lived session.
const FILE = `local function file (index, generation, id, expiresAt, ttl, now)
  redis.call('ZREMRANGEBYSCORE', index, '-inf', now)
  redis.call('ZADD', index, expiresAt, id)
  if redis.call('PTTL', index) < tonumber(ttl) then
    redis.call('PEXPIRE', index, ttl)
  end
  local left = redis.call('PTTL', generation)
  if left >= 0 and left < tonumber(ttl) then
    redis.call('PEXPIRE', generation, ttl)
  end
end
`

// KEYS: the session, then, when the script files it itself (a single node), its user's index and
// generation. ARGV: replace (1|0), ttl ms, createdAt, touchedAt, expiresAt, user (JSON, '' for
// none), now, id, refile (1|0), the generation a rotation carries ('' for none), pair count,
// field/value pairs, fields to delete. A new record files always; an old one only with refile.
// Answers 0 when the record is gone (it stays gone), -1 when a rotation carries a generation
// older than its user's (nothing written), 1 when it is written and filed under no user (nothing
// left for the caller), else {1, the user to take it out of the index of ('' for none), the user
// whose index the caller must still file it in ('' for none), its generation ('' for none), the
// user it is filed under now ('' for none)}.
export const SAVE = script(`${FILE}local key = KEYS[1]
local user = ARGV[6]
local refile = ARGV[1] == '1' or ARGV[9] == '1'
-- A key of another type answers an error (a table): a new record replaces the key, any other save returns it.
local before = redis.pcall('HGET', key, '${USER}')
local wrongType = type(before) == 'table' and before
if wrongType then
  before = false
end
local generation = false
if refile and user ~= '' and KEYS[3] then
  generation = tonumber(redis.call('GET', KEYS[3]) or '0')
  if ARGV[10] ~= '' and tonumber(ARGV[10]) < generation then
    return -1
  end
end
if ARGV[1] == '1' then
  redis.call('DEL', key)
elseif wrongType then
  return wrongType
elseif redis.call('PEXPIRE', key, ARGV[2]) == 0 then
  -- Gone (destroyed or expired): it stays gone. A record still there has its new expiry now.
  return 0
end
local last = 11 + tonumber(ARGV[11]) * 2
-- The clocks and the first pairs in one HSET (unpack can hand Lua at most a few thousand values).
redis.call('HSET', key, '${CREATED_AT}', ARGV[3], '${TOUCHED_AT}', ARGV[4], '${EXPIRES_AT}', ARGV[5], unpack(ARGV, 12, math.min(1011, last)))
for i = 1012, last, 1000 do
  redis.call('HSET', key, unpack(ARGV, i, math.min(i + 999, last)))
end
if refile then
  if user == '' then
    -- A new record has neither field: DEL took the old one away.
    if ARGV[1] ~= '1' then
      redis.call('HDEL', key, '${USER}')
      redis.call('HSET', key, '${GENERATION}', 0)
    end
  else
    redis.call('HSET', key, '${USER}', user)
    if generation then
      redis.call('HSET', key, '${GENERATION}', generation)
    elseif ARGV[10] ~= '' then
      redis.call('HSET', key, '${GENERATION}', ARGV[10])
    else
      redis.call('HDEL', key, '${GENERATION}')
    end
  end
end
for i = last + 1, #ARGV, 1000 do
  redis.call('HDEL', key, unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if ARGV[1] == '1' then
  redis.call('PEXPIRE', key, ARGV[2])
end
local unfile = ''
if refile and before and before ~= user then
  unfile = before
end
local now = refile and user or before or ''
if now == '' and unfile == '' then
  return 1
end
local pending = now
if now ~= '' and now == user and KEYS[2] then
  file(KEYS[2], KEYS[3], ARGV[8], ARGV[5], ARGV[2], ARGV[7])
  pending = ''
end
return {1, unfile, pending, redis.call('HGET', key, '${GENERATION}') or '', now}`)

// KEYS: the session, then, on a single node, the index and generation of the user the plugin
// stamped. ARGV: ttl ms, touchedAt, expiresAt, user (JSON, '' for none), now, id. A key that is
// gone stays gone. A record never filed (no user, no generation: saved before userKey was set)
// is filed under the stamped user; any other stays under the user it names. Answers false when
// nothing is left to do, else {the user whose index the caller must file it in, 'new' when it
// was filed just now (the caller sets its generation) or 'refresh'}.
export const TOUCH = script(`${FILE}local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then
  return false
end
redis.call('HSET', key, '${TOUCHED_AT}', ARGV[2], '${EXPIRES_AT}', ARGV[3])
redis.call('PEXPIRE', key, ARGV[1])
local user = redis.call('HGET', key, '${USER}')
local kind = 'refresh'
if not user then
  if ARGV[4] == '' or redis.call('HEXISTS', key, '${GENERATION}') == 1 then
    return false
  end
  user = ARGV[4]
  kind = 'new'
  redis.call('HSET', key, '${USER}', user)
  if KEYS[3] then
    redis.call('HSET', key, '${GENERATION}', redis.call('GET', KEYS[3]) or 0)
  end
end
if KEYS[2] and user == ARGV[4] then
  file(KEYS[2], KEYS[3], ARGV[6], ARGV[3], ARGV[1], ARGV[5])
  return false
end
return {user, kind}`)

// Answers {keys removed, the user the session was filed under}.
export const DESTROY = script(`local user = redis.call('TYPE', KEYS[1]).ok == 'hash' and redis.call('HGET', KEYS[1], '${USER}')
return {redis.call('DEL', KEYS[1]), user}`)

// KEYS: a user's index and generation. ARGV: id, expiresAt, ttl ms, now.
export const INDEX_ADD = script(`${FILE}file(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
return 1`)

// KEYS: a user's index and generation (a cluster, where they live apart from the session).
// ARGV: id, expiresAt, ttl ms, now, the generation a rotation carries ('' for a login). Answers
// -1 for a rotation older than the user's generation (not filed), else the user's generation.
export const FILE_CHECKED = script(`${FILE}local generation = tonumber(redis.call('GET', KEYS[2]) or '0')
if ARGV[5] ~= '' and tonumber(ARGV[5]) < generation then
  return -1
end
file(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
return generation`)

// KEYS: a session. ARGV: user (JSON), generation. Sets the generation the session is filed at,
// while it is still filed under that user.
export const SET_GENERATION = script(`if redis.call('HGET', KEYS[1], '${USER}') == ARGV[1] then
  redis.call('HSET', KEYS[1], '${GENERATION}', ARGV[2])
end
return 1`)

// KEYS: a user's index and generation. ARGV: ttl ms. Raises the generation (sign out
// everywhere); it lives as long as the index, and at least ttl. Answers the new generation.
export const REVOKE = script(`local generation = redis.call('INCR', KEYS[2])
local keep = math.max(redis.call('PTTL', KEYS[1]), tonumber(ARGV[1]))
if redis.call('PTTL', KEYS[2]) < keep then
  redis.call('PEXPIRE', KEYS[2], keep)
end
return generation`)

// KEYS: a user's index. ARGV: the ids to take out.
export const INDEX_REMOVE = script(`for i = 1, #ARGV, 1000 do
  redis.call('ZREM', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
return 1`)

// KEYS: a user's index. ARGV: now. The ids whose expiresAt is still ahead.
export const INDEX_READ = script(`redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return redis.call('ZRANGE', KEYS[1], 0, -1)`)

// KEYS: a session. What the user index lists of it, and the user it is filed under.
export const META = script(`return redis.call('HMGET', KEYS[1], '${CREATED_AT}', '${TOUCHED_AT}', '${EXPIRES_AT}', '${USER}')`)

/** When a write script runs: now, the session's expiresAt, and the milliseconds until then. */
export interface Expiry {
  now: number
  expiresAt: number
  ttl: number
}

/** SAVE's ARGV (see the script): the session's changes (all of its data when new) as field/value pairs and fields to delete. */
export function saveArgs (session: Session<any>, id: string, user: string, filing: UserFiling, { now, expiresAt, ttl }: Expiry): Array<string | number> {
  const pairs: string[] = []
  const deleted: string[] = []
  const { set, deleted: removed } = session.isNew
    ? { set: session.data as Record<string, unknown>, deleted: [] }
    : session.changes() as { set: Record<string, unknown>, deleted: string[] }
  for (const key of Object.keys(set)) {
    const json = JSON.stringify(set[key])
    // undefined is how Session spells "absent", and JSON has no way to say it.
    if (json === undefined) deleted.push(fieldOf(key))
    else pairs.push(fieldOf(key), json)
  }
  for (const key of removed) deleted.push(fieldOf(key))
  return [
    session.isNew ? 1 : 0,
    ttl,
    session.createdAt,
    session.touchedAt,
    expiresAt,
    user,
    now,
    id,
    filing.refile ? 1 : 0,
    carriedOf(filing),
    pairs.length / 2
  ].concat(pairs, deleted)
}

/** The generation a rotation carries, as the scripts take it ('' for none). */
export function carriedOf (filing: UserFiling): number | '' {
  return filing.generation === null ? '' : filing.generation
}
