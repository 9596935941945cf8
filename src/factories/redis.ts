import { createHash } from 'node:crypto'
import { CorruptRecord, InvalidOptions } from '../errors.js'
import type { SessionFactory } from '../factory.js'
import { generateId } from '../options.js'
import { Session, type SessionData } from '../session.js'

/**
 * The few commands RedisFactory sends. An ioredis (or iovalkey) `Redis` or `Cluster` has them;
 * the factory is handed one and never creates, connects or quits it.
 */
export interface RedisClientLike {
  hgetall (key: string): Promise<Record<string, string>>
  del (key: string): Promise<number>
  evalsha (sha1: string, numkeys: number, ...args: Array<string | number>): Promise<unknown>
  eval (script: string, numkeys: number, ...args: Array<string | number>): Promise<unknown>
}

export interface RedisFactoryOptions {
  /** Your connected client. Recommended: `enableOfflineQueue: false, maxRetriesPerRequest: 1`. */
  client: RedisClientLike
  /** Put before each session id to make its key. Default `'sess:'`. */
  prefix?: string
  /** Lifetime in seconds of a session saved without `expiresAt` (outside the plugin). Default 86,400. */
  ttl?: number
}

// Metadata and data live in one hash; the `m:` and `d:` namespaces keep user keys off our fields.
const CREATED_AT = 'm:createdAt'
const TOUCHED_AT = 'm:touchedAt'
const DATA = 'd:'
// Redis keeps UTF-8, where a lone surrogate becomes U+FFFD: such a key is stored JSON-escaped.
const ESCAPED = 'e:'
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

/** The hash field that holds a session key's value. */
function fieldOf (key: string): string {
  return LONE_SURROGATE.test(key) ? ESCAPED + JSON.stringify(key) : DATA + key
}

interface Script {
  lua: string
  sha: string
}

function script (lua: string): Script {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') }
}

// ARGV: replace (1|0), ttl ms, createdAt, touchedAt, pair count, field/value pairs, fields to delete.
const SAVE = script(`local key = KEYS[1]
if ARGV[1] == '1' then
  redis.call('DEL', key)
elseif redis.call('EXISTS', key) == 0 then
  return 0
end
redis.call('HSET', key, '${CREATED_AT}', ARGV[3], '${TOUCHED_AT}', ARGV[4])
local last = 5 + tonumber(ARGV[5]) * 2
for i = 6, last, 1000 do
  redis.call('HSET', key, unpack(ARGV, i, math.min(i + 999, last)))
end
for i = last + 1, #ARGV, 1000 do
  redis.call('HDEL', key, unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('PEXPIRE', key, ARGV[2])
return 1`)

// ARGV: ttl ms, touchedAt. A key that is gone stays gone.
const TOUCH = script(`if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], '${TOUCHED_AT}', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1`)

function isNoScript (error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT')
}

/**
 * Sessions in Redis, Valkey or Redis Cluster, shared by every instance of your app: one hash per
 * session, each key a field, so concurrent requests that change different keys all keep theirs.
 */
export class RedisFactory<D extends object = SessionData> implements SessionFactory<D> {
  readonly #client: RedisClientLike
  readonly #prefix: string
  readonly #ttlMs: number

  constructor (options: RedisFactoryOptions) {
    const { client, prefix = 'sess:', ttl = 86_400 } = options ?? {}
    const methods = ['hgetall', 'del', 'evalsha', 'eval'] as const
    if (client == null || methods.some((name) => typeof client[name] !== 'function')) {
      throw new InvalidOptions('RedisFactory client must be an ioredis or iovalkey client (Redis or Cluster)')
    }
    if (typeof prefix !== 'string') throw new InvalidOptions('RedisFactory prefix must be a string')
    if (!Number.isSafeInteger(ttl) || ttl < 1) throw new InvalidOptions('RedisFactory ttl must be a positive integer')
    this.#client = client
    this.#prefix = prefix
    this.#ttlMs = ttl * 1000
  }

  async load (id: string): Promise<Session<D> | null> {
    const fields = await this.#client.hgetall(this.#prefix + id)
    const names = Object.keys(fields)
    if (names.length === 0) return null
    const createdAt = Number(fields[CREATED_AT] ?? NaN)
    const touchedAt = Number(fields[TOUCHED_AT] ?? NaN)
    if (!Number.isFinite(createdAt) || !Number.isFinite(touchedAt)) {
      throw new CorruptRecord('its createdAt or touchedAt field is missing')
    }
    // No prototype, so a "__proto__" key is a plain property until Session drops it.
    const data: Record<string, unknown> = Object.create(null)
    for (const name of names) {
      const escaped = name.startsWith(ESCAPED)
      if (!escaped && !name.startsWith(DATA)) continue
      try {
        data[escaped ? JSON.parse(name.slice(ESCAPED.length)) as string : name.slice(DATA.length)] = JSON.parse(fields[name] as string)
      } catch {
        throw new CorruptRecord('a field holds a value or an escaped key that is not JSON')
      }
    }
    const session = new Session<D>(data as Partial<D>, id)
    session.createdAt = createdAt
    session.touchedAt = touchedAt
    return session
  }

  async save (session: Session<D>): Promise<string> {
    const id = session.id ?? generateId()
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
    await this.#run(SAVE, id, [
      session.isNew ? 1 : 0,
      this.#ttl(session),
      session.createdAt,
      session.touchedAt,
      pairs.length / 2,
      ...pairs,
      ...deleted
    ])
    return id
  }

  async touch (session: Session<D>): Promise<void> {
    if (session.id === null) return
    await this.#run(TOUCH, session.id, [this.#ttl(session), session.touchedAt])
  }

  async destroy (id: string): Promise<void> {
    await this.#client.del(this.#prefix + id)
  }

  /** Milliseconds until `session.expiresAt`; at least 1, so a late save expires rather than lingers. */
  #ttl (session: Session<D>): number {
    const now = Date.now()
    return Math.max(1, Math.ceil((session.expiresAt ?? now + this.#ttlMs) - now))
  }

  /** EVALSHA, and EVAL once when the server does not know the script (first use, or after a restart). */
  async #run (script: Script, id: string, args: Array<string | number>): Promise<unknown> {
    const key = this.#prefix + id
    try {
      return await this.#client.evalsha(script.sha, 1, key, ...args)
    } catch (error) {
      if (!isNoScript(error)) throw error
      return this.#client.eval(script.lua, 1, key, ...args)
    }
  }
}
