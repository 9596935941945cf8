import { InvalidOptions, SessionGone } from '../errors.js'
import type { IndexedSession, SessionFactory } from '../factory.js'
import { generateId } from '../id.js'
import { redactIds } from '../redact.js'
import { Session, readTimestamp, type SessionData } from '../session.js'
import { LoadedUsers, type UserFiling } from '../user.js'
import {
  CREATED_AT, DESTROY, EXPIRES_AT, FILE_CHECKED, GENERATION, INDEX_ADD, INDEX_READ, INDEX_REMOVE, META, REVOKE, SAVE,
  SET_GENERATION, TOUCH, TOUCHED_AT, USER, carriedOf, dataOf, generationOf, saveArgs, userOf, type Expiry, type Script
} from './redis-scripts.js'

/**
 * The few commands RedisFactory sends. An ioredis (or iovalkey) `Redis` or `Cluster` has them;
 * the factory is handed one and never creates, connects or quits it.
 */
export interface RedisClientLike {
  hgetall (key: string): Promise<Record<string, string>>
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
  evalsha (sha1: string, numkeys: number, ...args: Array<string | number>): unknown
  eval (script: string, numkeys: number, ...args: Array<string | number>): unknown
  exec (): Promise<Array<[Error | null, unknown]> | null>
}

type Command = 'hgetall' | 'evalsha' | 'eval'

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

function isNoScript (error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT')
}

/**
 * Sessions in Redis, Valkey or Redis Cluster, shared by every instance of your app: one hash per
 * session, each key a field, so concurrent requests that change different keys all keep theirs.
 * A session saved with a user is also filed in that user's index, a sorted set.
 */
export class RedisFactory<D extends object = SessionData> implements SessionFactory<D> {
  /** A destroy() that says whether a record went, and a user index: read once by the plugin. */
  readonly capabilities = { destroyReports: true, userIndex: true } as const
  readonly #client: RedisClientLike
  readonly #prefix: string
  readonly #ttlMs: number
  /**
   * A single-node client (it has pipelines and is no Cluster): commands are gathered into
   * pipelines, and a write script files the session in its user's index in the same step. On a
   * cluster that index lives in another slot than the session, so it is written next.
   */
  readonly #singleNode: boolean
  readonly #loaded = new LoadedUsers()
  #queue: Queued[] = []

  constructor (options: RedisFactoryOptions) {
    const { client, prefix = 'sess:', ttl = 86_400 } = options ?? {}
    const methods = ['hgetall', 'evalsha', 'eval'] as const
    if (client == null || methods.some((name) => typeof client[name] !== 'function')) {
      throw new InvalidOptions('RedisFactory client must be an ioredis or iovalkey client (Redis or Cluster)')
    }
    if (typeof prefix !== 'string') throw new InvalidOptions('RedisFactory prefix must be a string')
    if (!Number.isSafeInteger(ttl) || ttl < 1) throw new InvalidOptions('RedisFactory ttl must be a positive integer')
    this.#client = client
    this.#prefix = prefix
    this.#ttlMs = ttl * 1000
    this.#singleNode = typeof client.pipeline === 'function' && client.isCluster !== true
  }

  load (id: string): Promise<Session<D> | null> {
    return this.#send('hgetall', [this.#prefix + id]).then((fields) => this.#sessionOf(id, fields as Record<string, string>))
  }

  /** The session a stored hash holds; null for none (HGETALL answers a missing key with an empty hash). */
  #sessionOf (id: string, fields: Record<string, string>): Session<D> | null {
    const names = Object.keys(fields)
    if (names.length === 0) return null
    // Timestamps come back as strings; a missing clock makes the session expired (fromJSON fails closed).
    const session = Session.fromJSON<D>({
      id,
      data: dataOf(fields, names) as Partial<D>,
      createdAt: fields[CREATED_AT] as never,
      touchedAt: fields[TOUCHED_AT] as never,
      expiresAt: fields[EXPIRES_AT] as never
    })
    this.#loaded.remember(session, userOf(fields[USER]), generationOf(fields[GENERATION]))
    return session
  }

  /** The id. A rotation of a session its user was signed out of everywhere since its load throws FST_SESSION_GONE. */
  save (session: Session<D>): Promise<string> {
    // A plain promise chain, not an async function: the common save (no user to file) is one step.
    try {
      const id = session.id ?? generateId()
      const expiry = this.#expiry(session)
      const filing = this.#loaded.filingOf(session)
      const { user, keys } = this.#scriptKeys(id, filing.userId)
      return this.#run(SAVE, keys, saveArgs(session, id, user, filing, expiry)).then((answer) => {
        if (answer !== 1) return this.#filed(session, id, user, filing, expiry, answer)
        // Written, and filed under no user: no index to update.
        this.#loaded.remember(session, null, null)
        return id
      })
    } catch (error) {
      return Promise.reject(error)
    }
  }

  /** What is left of a save after SAVE answered other than 1 (see the script): the user index. */
  async #filed (session: Session<D>, id: string, user: string, filing: UserFiling, { now, expiresAt, ttl }: Expiry, answer: unknown): Promise<string> {
    const carried = carriedOf(filing)
    // Destroyed (or expired) while this request ran: it stays gone, and so out of every index.
    if (answer === 0) return id
    if (answer === -1) throw new SessionGone()
    const [, unfile, pending, stored, owner] = answer as [number, string, string, string, string]
    let generation = generationOf(stored)
    if (pending !== '' && pending === user && filing.refile) {
      // A cluster: the index lives in another slot, so the user's generation is checked there, after the write.
      const filed = await this.#run(FILE_CHECKED, this.#userKeys(user), [id, expiresAt, ttl, now, carried]) as number
      if (filed === -1) {
        await this.#run(DESTROY, [this.#prefix + id], [])
        throw new SessionGone()
      }
      if (carried === '') await this.#run(SET_GENERATION, [this.#prefix + id], [user, filed])
      generation = filed
    }
    await Promise.all([
      pending !== '' && !(pending === user && filing.refile) ? this.#file(pending, id, expiresAt, ttl, now) : undefined,
      unfile === '' ? undefined : this.#run(INDEX_REMOVE, [this.#indexKey(unfile)], [id])
    ])
    this.#loaded.remember(session, userOf(owner), generation)
    return id
  }

  /** Extends the expiry; a record never filed (saved before `userKey` was set) is filed under its user now. */
  async touch (session: Session<D>): Promise<void> {
    if (session.id === null) return
    const { now, expiresAt, ttl } = this.#expiry(session)
    const { user, keys } = this.#scriptKeys(session.id, session.filedUnder)
    const answer = await this.#run(TOUCH, keys, [ttl, session.touchedAt, expiresAt, user, now, session.id]) as [string, string] | null
    if (answer === null) return
    const [owner, kind] = answer
    if (kind === 'refresh') {
      await this.#file(owner, session.id, expiresAt, ttl, now)
      return
    }
    const generation = await this.#run(FILE_CHECKED, this.#userKeys(owner), [session.id, expiresAt, ttl, now, '']) as number
    await this.#run(SET_GENERATION, [this.#prefix + session.id], [owner, generation])
  }

  /**
   * Sign out everywhere, first step: raises the user's generation, so that a session loaded
   * before cannot be rotated into a new record; `keep` moves on to the new generation.
   */
  async revokeUser (userId: string, keep: string | null): Promise<void> {
    const user = JSON.stringify(userId)
    const generation = await this.#run(REVOKE, this.#userKeys(user), [this.#ttlMs]) as number
    if (keep !== null) await this.#run(SET_GENERATION, [this.#prefix + keep], [user, generation])
  }

  /** True when a live session was removed. */
  async destroy (id: string): Promise<boolean> {
    const [removed, user] = await this.#run(DESTROY, [this.#prefix + id], []) as [number, string | null]
    if (user != null) await this.#run(INDEX_REMOVE, [this.#indexKey(user)], [id])
    return removed > 0
  }

  /**
   * The user index: the live sessions last saved with `session.filedUnder === userId`, oldest first.
   * It reads each listed session's record, so an entry whose session expired, was destroyed or
   * moved to another user is never listed; the entries of sessions that are gone are pruned.
   */
  async sessionsOf (userId: string): Promise<IndexedSession[]> {
    const user = JSON.stringify(userId)
    const index = this.#indexKey(user)
    const now = Date.now()
    const ids = await this.#run(INDEX_READ, [index], [now]) as string[]
    try {
      return await this.#listed(index, user, ids, now)
    } catch (error) {
      // A failed command names the sessions it was about (ioredis keeps its arguments): none of them reaches a log.
      throw redactIds(error, ids)
    }
  }

  async #listed (index: string, user: string, ids: string[], now: number): Promise<IndexedSession[]> {
    // On a cluster the sessions are spread over the nodes: each read goes to its own.
    const records = await Promise.all(ids.map((id) => this.#run(META, [this.#prefix + id], []))) as Array<Array<string | null>>
    const found: IndexedSession[] = []
    const gone: string[] = []
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i] as string
      const [createdAt, touchedAt, expiresAt, owner] = records[i] as Array<string | null>
      if (createdAt === null) {
        gone.push(id)
        continue
      }
      const entry = {
        id,
        createdAt: readTimestamp(createdAt, 'createdAt'),
        touchedAt: readTimestamp(touchedAt, 'touchedAt'),
        expiresAt: readTimestamp(expiresAt, 'expiresAt')
      }
      // NaN (a clock missing) is never ahead: such a record fails closed, as load() does.
      if (owner === user && entry.expiresAt > now) found.push(entry)
    }
    if (gone.length > 0) await this.#run(INDEX_REMOVE, [index], gone)
    return found.sort((a, b) => a.createdAt - b.createdAt)
  }

  /**
   * A write script's keys: the session's, then, on a single node, its user's index (the script
   * files it there itself); and the user as the script takes it (JSON, '' for none).
   */
  #scriptKeys (id: string, userId: string | null): { user: string, keys: string[] } {
    const user = userId == null ? '' : JSON.stringify(userId)
    const keys = [this.#prefix + id]
    if (user !== '' && this.#singleNode) keys.push(...this.#userKeys(user))
    return { user, keys }
  }

  /** A user's index and generation keys, in one slot (the user is their hash tag). */
  #userKeys (user: string): [string, string] {
    const index = this.#indexKey(user)
    return [index, `${index}:generation`]
  }

  /** A user's index key, from the user's JSON: the id between the braces is the key's hash tag. */
  #indexKey (user: string): string {
    return `${this.#prefix}user:{${user.slice(1, -1)}}`
  }

  #file (user: string, id: string, expiresAt: number, ttl: number, now: number): Promise<unknown> {
    return this.#run(INDEX_ADD, this.#userKeys(user), [id, expiresAt, ttl, now])
  }

  /** `session.expiresAt` (or the factory's ttl from now), and the milliseconds until then: at least 1, so a late save expires rather than lingers. */
  #expiry (session: Session<D>): Expiry {
    const now = Date.now()
    const expiresAt = session.expiresAt ?? now + this.#ttlMs
    return { now, expiresAt, ttl: Math.max(1, Math.ceil(expiresAt - now)) }
  }

  /**
   * EVALSHA, and EVAL once when the server does not know the script (first use, or after a
   * restart).
   */
  #run (script: Script, keys: string[], argv: Array<string | number>): Promise<unknown> {
    const args = [script.sha, keys.length, ...keys, ...argv]
    return this.#send('evalsha', args).catch((error: unknown) => {
      if (!isNoScript(error)) throw error
      return this.#send('eval', [script.lua, ...args.slice(1)])
    })
  }

  /**
   * Sends a command. On a single-node client, the commands of every request that reaches this
   * point in one turn of the event loop leave together, as one pipeline: one write and one read
   * for the lot instead of one each, whatever the client's own autopipelining setting. Each
   * command still gets its own answer or error.
   */
  #send (command: Command, args: Array<string | number>): Promise<unknown> {
    if (!this.#singleNode) {
      try {
        return Promise.resolve((this.#client[command] as (...args: unknown[]) => unknown)(...args))
      } catch (error) {
        return Promise.reject(error)
      }
    }
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
