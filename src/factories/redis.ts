import { createHash } from 'node:crypto'
import { CorruptRecord, InvalidOptions } from '../errors.js'
import type { SessionFactory } from '../factory.js'
import { generateId } from '../id.js'
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
  /** A single-node client's pipeline: commands issued together go out in one write. */
  pipeline? (): RedisPipelineLike
  /**
   * True on a Cluster (ioredis and iovalkey set it), whose pipelines must keep to one slot: its
   * commands go one by one. A wrapper around a Cluster must keep it, or drop `pipeline`.
   */
  readonly isCluster?: boolean
}

/** The part of an ioredis / iovalkey pipeline RedisFactory uses. */
export interface RedisPipelineLike {
  hgetall (key: string): unknown
  del (key: string): unknown
  evalsha (sha1: string, numkeys: number, ...args: Array<string | number>): unknown
  eval (script: string, numkeys: number, ...args: Array<string | number>): unknown
  exec (): Promise<Array<[Error | null, unknown]> | null>
}

type Command = 'hgetall' | 'del' | 'evalsha' | 'eval'

/** A command waiting for the batch that goes out at the end of this turn of the event loop. */
interface Queued {
  command: Command
  args: Array<string | number>
  resolve (value: unknown): void
  reject (error: unknown): void
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
  /** Whether commands are gathered into pipelines (a single-node client that has them). */
  readonly #batching: boolean
  #queue: Queued[] = []

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
    this.#batching = typeof client.pipeline === 'function' && client.isCluster !== true
  }

  async load (id: string): Promise<Session<D> | null> {
    const fields = await this.#send('hgetall', [this.#prefix + id]) as Record<string, string>
    const names = Object.keys(fields)
    if (names.length === 0) return null
    // No prototype, so a "__proto__" field is a plain property until fromJSON's copy drops it.
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
    // Timestamps come back as strings; a missing one makes the session expired (fromJSON fails closed).
    return Session.fromJSON<D>({ id, data: data as Partial<D>, createdAt: fields[CREATED_AT] as never, touchedAt: fields[TOUCHED_AT] as never })
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
    await this.#run(SAVE, [
      SAVE.sha, 1, this.#prefix + id,
      session.isNew ? 1 : 0,
      this.#ttl(session),
      session.createdAt,
      session.touchedAt,
      pairs.length / 2
    ].concat(pairs, deleted))
    return id
  }

  async touch (session: Session<D>): Promise<void> {
    if (session.id === null) return
    await this.#run(TOUCH, [TOUCH.sha, 1, this.#prefix + session.id, this.#ttl(session), session.touchedAt])
  }

  /** True when a live session was removed. */
  async destroy (id: string): Promise<boolean> {
    return await this.#send('del', [this.#prefix + id]) as number > 0
  }

  /** Milliseconds until `session.expiresAt`; at least 1, so a late save expires rather than lingers. */
  #ttl (session: Session<D>): number {
    const now = Date.now()
    return Math.max(1, Math.ceil((session.expiresAt ?? now + this.#ttlMs) - now))
  }

  /**
   * EVALSHA, and EVAL once when the server does not know the script (first use, or after a
   * restart). `args` are EVALSHA's: the script's SHA1, 1, the key, then the script's ARGV.
   */
  async #run (script: Script, args: Array<string | number>): Promise<unknown> {
    try {
      return await this.#send('evalsha', args)
    } catch (error) {
      if (!isNoScript(error)) throw error
      return this.#send('eval', [script.lua, ...args.slice(1)])
    }
  }

  /**
   * Sends a command. On a single-node client, the commands of every request that reaches this
   * point in one turn of the event loop leave together, as one pipeline: one write and one read
   * for the lot instead of one each, whatever the client's own autopipelining setting. Each
   * command still gets its own answer or error.
   */
  #send (command: Command, args: Array<string | number>): Promise<unknown> {
    if (!this.#batching) return (this.#client[command] as (...args: unknown[]) => Promise<unknown>)(...args)
    return new Promise((resolve, reject) => {
      if (this.#queue.length === 0) setImmediate(this.#flush)
      this.#queue.push({ command, args, resolve, reject })
    })
  }

  readonly #flush = (): void => {
    const queue = this.#queue
    this.#queue = []
    // Whatever a client does (throw, answer garbage), each request gets an error, never the process.
    const failAll = (error: unknown): void => {
      for (const queued of queue) queued.reject(error)
    }
    try {
      if (queue.length === 1) {
        const only = queue[0] as Queued
        Promise.resolve((this.#client[only.command] as (...args: unknown[]) => unknown)(...only.args)).then(only.resolve, only.reject)
        return
      }
      const pipeline = (this.#client.pipeline as () => RedisPipelineLike)()
      for (const queued of queue) (pipeline[queued.command] as (...args: unknown[]) => unknown)(...queued.args)
      Promise.resolve(pipeline.exec()).then((results) => {
        // A plain pipeline (not a MULTI) answers one [error, value] pair per command, in order;
        // a short or missing answer throws here and fails the commands still waiting.
        const answers = results as Array<[Error | null, unknown]>
        for (let i = 0; i < queue.length; i++) {
          const queued = queue[i] as Queued
          const [error, value] = answers[i] as [Error | null, unknown]
          if (error === null) queued.resolve(value)
          else queued.reject(error)
        }
      }).catch(failAll)
    } catch (error) {
      failAll(error)
    }
  }
}
