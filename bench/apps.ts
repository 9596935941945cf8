import { createCipheriv, createDecipheriv, createSecretKey, randomBytes } from 'node:crypto'
import { pathToFileURL } from 'node:url'
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import { Redis } from 'ioredis'
import pg from 'pg'
import type { ServerKind } from './scenarios.js'

/** What the bench hands every server: equal secrets and settings for both sides. */
export interface ServerConfig {
  /** The cookie-signing secret (ours, @fastify/session): same length on both sides. */
  secret: string
  /** 32 random bytes, hex: the sealing key (ours sealed, @fastify/secure-session). */
  sealKey: string
  redisUrl: string
  /** A key prefix of this run's own, removed by the bench afterwards. */
  redisPrefix: string
  /** For the PostgreSQL servers: the database, and a table of this run's own (both sides create it, the bench drops it). */
  pgUrl?: string
  pgTable?: string
}

function postgresOf (config: ServerConfig): { pool: pg.Pool, table: string } {
  if (config.pgUrl === undefined || config.pgTable === undefined) throw new Error('a PostgreSQL server needs pgUrl and pgTable')
  return { pool: new pg.Pool({ connectionString: config.pgUrl }), table: config.pgTable }
}

/** Thrown when our side needs an export that src/index.ts does not have (yet). */
export class NotBuilt extends Error {}

/** The slice of a session API that the counter route uses; all three libraries have it. */
interface CounterSession {
  get (key: string): unknown
  set (key: string, value: unknown): void
}

const SAME_COOKIE = { path: '/', httpOnly: true, sameSite: 'lax' } as const

// The peers' typings augment FastifyRequest.session too: loading them untyped keeps them out of tsc.
async function importUntyped (name: string): Promise<any> {
  return await import(name)
}

/** The counter route of the seed's example, written once for any session object. */
function count (session: CounterSession): string {
  const visits = ((session.get('counter') as number | undefined) ?? 0) + 1
  session.set('counter', visits)
  return `Visited ${visits} times\n`
}

function addRoutes (app: FastifyInstance, sessionOf: ((request: FastifyRequest) => CounterSession) | null): void {
  app.get('/', async (request) => sessionOf === null ? 'Visited 1 times\n' : count(sessionOf(request)))
  app.get('/untouched', async () => 'ok\n')
}

async function ours (config: ServerConfig, kind: ServerKind): Promise<FastifyInstance> {
  // BENCH_OURS_MODULE: another copy of our source, to weigh one version of ours against another.
  const entry = process.env.BENCH_OURS_MODULE
  const mod: Record<string, unknown> = entry === undefined ? await import('../src/index.js') : await import(pathToFileURL(entry).href)
  const factory = makeOurFactory(mod, config, kind, kind === 'ours-sealed' ? (await importUntyped('sodium-native')).default : undefined)
  const app = Fastify()
  await app.register(mod.default as any, { factory, secret: config.secret })
  addRoutes(app, (request) => (request as unknown as { session: CounterSession }).session)
  return app
}

function exported (mod: Record<string, unknown>, name: string): new (options: unknown) => unknown {
  if (!(name in mod)) throw new NotBuilt(`${name} is not exported by src/index.ts yet`)
  return mod[name] as new (options: unknown) => unknown
}

function makeOurFactory (mod: Record<string, unknown>, config: ServerConfig, kind: ServerKind, sodium: unknown): unknown {
  switch (kind) {
    case 'ours-memory':
      return new (exported(mod, 'MemoryFactory'))({})
    case 'ours-redis':
      return new (exported(mod, 'RedisFactory'))({ client: new Redis(config.redisUrl), prefix: config.redisPrefix })
    case 'ours-sealed':
      return new (exported(mod, 'SealedCookieFactory'))({ keys: [Buffer.from(config.sealKey, 'hex')], sodium })
    case 'ours-sealed-aes':
      return new (exported(mod, 'SealedCookieFactory'))({ keys: [Buffer.from(config.sealKey, 'hex')] })
    case 'ours-postgres':
    {
      const { pool, table } = postgresOf(config)
      return new (exported(mod, 'PostgresFactory'))({ pool, table, createTable: true })
    }
    default:
      throw new Error(`${kind} is not one of ours`)
  }
}

async function peerSession (config: ServerConfig, backend: 'memory' | 'redis' | 'postgres'): Promise<FastifyInstance> {
  const app = Fastify()
  const [cookie, session] = await Promise.all([importUntyped('@fastify/cookie'), importUntyped('@fastify/session')])
  let store: unknown
  if (backend === 'redis') {
    const { RedisStore } = await importUntyped('connect-redis-8')
    store = new RedisStore({ client: new Redis(config.redisUrl), prefix: config.redisPrefix })
  } else if (backend === 'postgres') {
    const connectPgSimple = await importUntyped('connect-pg-simple')
    const PGStore = connectPgSimple.default(session.default)
    const { pool, table } = postgresOf(config)
    store = new PGStore({ pool, tableName: table, createTableIfMissing: true, pruneSessionInterval: false })
  }
  await app.register(cookie.default)
  await app.register(session.default, {
    secret: config.secret,
    saveUninitialized: false,
    cookie: { ...SAME_COOKIE, secure: 'auto' },
    ...(store === undefined ? {} : { store })
  })
  addRoutes(app, (request) => (request as unknown as { session: CounterSession }).session)
  return app
}

async function peerSecureSession (config: ServerConfig): Promise<FastifyInstance> {
  const app = Fastify()
  const secureSession = await importUntyped('@fastify/secure-session')
  await app.register(secureSession.default, { key: Buffer.from(config.sealKey, 'hex'), cookie: SAME_COOKIE })
  addRoutes(app, (request) => (request as unknown as { session: CounterSession }).session)
  return app
}

/**
 * A lower bound for redis.* that no plugin keeping our contract can beat: bare Fastify plus the
 * commands a writer needs, straight on ioredis with its own autopipelining, a write script
 * lighter than ours, and the headers the contract asks of a save (a Set-Cookie line as long as
 * ours, made once; Vary: Cookie; Cache-Control: private), with no cookie to verify. A request
 * with a cookie (returning) reads one fixed key before the handler and writes it after; one
 * without (new) only writes, to a key of its own (a counter, no random id).
 */
async function floorRedis (config: ServerConfig): Promise<FastifyInstance> {
  const client = new Redis(config.redisUrl, { enableAutoPipelining: true })
  const key = `${config.redisPrefix}floor`
  await client.hset(key, 'd:counter', '1')
  const sha = await client.script('LOAD', "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) redis.call('PEXPIRE', KEYS[1], ARGV[3]) return 1") as string
  const line = `sid=${randomBytes(32).toString('base64url')}.${randomBytes(32).toString('base64').slice(0, 43)}; Path=/; HttpOnly; SameSite=Lax`
  const app = Fastify()
  app.addHook('onClose', async () => { await client.quit() })
  let created = 0
  app.get('/', async (request, reply) => {
    const returning = request.headers.cookie !== undefined
    const visits = returning ? Number((await client.hgetall(key))['d:counter']) + 1 : 1
    await client.evalsha(sha, 1, returning ? key : `${config.redisPrefix}new:${++created}`, 'd:counter', String(visits), 86_400_000)
    reply.header('set-cookie', line).header('vary', 'Cookie').header('cache-control', 'private')
    return reply.send(`Visited ${visits} times\n`)
  })
  return app
}

// MemoryFactory's default maxSessions: the floor's Map keeps as many entries as ours does.
const MEMORY_DEFAULT_SESSIONS = 10_000

/**
 * A lower bound for memory.new: the work a new server-side session cannot do without, on bare
 * Fastify. Per request: 32 random bytes drawn (from a pool filled 4 KiB at a time, as ours and
 * uuid do: one randomBytes call a request costs ~5 µs), signed and sent as a Set-Cookie by
 * @fastify/cookie (`reply.setCookie` with `signed`: its Signer, serializer and onSend hook), an
 * entry (the data as JSON, its timestamps) kept in a Map bounded at MemoryFactory's default
 * size, the oldest out, and `Vary: Cookie`, `Cache-Control: private`.
 */
async function floorNewSession (config: ServerConfig): Promise<FastifyInstance> {
  const cookie = await importUntyped('@fastify/cookie')
  const app = Fastify()
  await app.register(cookie.default, { secret: config.secret })
  const entries = new Map<string, { json: string, createdAt: number, expiresAt: number }>()
  // The keys in insertion order, so the oldest goes in O(1): `entries.keys().next()` after many
  // deletes walks the Map's deleted slots (~5 µs a request at 10,000 entries).
  const order: string[] = new Array(MEMORY_DEFAULT_SESSIONS)
  let next = 0
  let pool = randomBytes(4096)
  let offset = 0
  app.get('/', async (_request, reply) => {
    if (offset + 32 > pool.length) {
      pool = randomBytes(4096)
      offset = 0
    }
    const id = pool.toString('base64url', offset, offset += 32)
    const now = Date.now()
    const oldest = order[next]
    if (oldest !== undefined) entries.delete(oldest)
    order[next] = id
    next = (next + 1) % MEMORY_DEFAULT_SESSIONS
    entries.set(id, { json: JSON.stringify({ counter: 1 }), createdAt: now, expiresAt: now + 86_400_000 })
    ;(reply as any).setCookie('sid', id, { ...SAME_COOKIE, signed: true })
    reply.header('cache-control', 'private').header('vary', 'Cookie')
    return 'Visited 1 times\n'
  })
  app.get('/untouched', async () => 'ok\n')
  return app
}

/**
 * A lower bound for sealed.returning with the cipher the design fixes (AES-256-GCM through
 * node:crypto): bare Fastify that opens the cookie, counts, seals it again and sets it, with no
 * signature, no key ids, no expiry checks and no session object.
 */
async function floorSealed (config: ServerConfig): Promise<FastifyInstance> {
  const key = createSecretKey(Buffer.from(config.sealKey, 'hex'))
  function seal (data: unknown): string {
    const iv = randomBytes(12)
    const cipher = createCipheriv('aes-256-gcm', key, iv)
    return Buffer.concat([iv, cipher.update(JSON.stringify(data), 'utf8'), cipher.final(), cipher.getAuthTag()]).toString('base64url')
  }
  function open (value: string): { counter: number } | null {
    const bytes = Buffer.from(value, 'base64url')
    if (bytes.length < 29) return null
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, 12))
      decipher.setAuthTag(bytes.subarray(bytes.length - 16))
      return JSON.parse(decipher.update(bytes.subarray(12, bytes.length - 16), undefined, 'utf8') + decipher.final('utf8'))
    } catch {
      return null
    }
  }
  const app = Fastify()
  app.get('/', async (request, reply) => {
    const cookie = request.headers.cookie
    const data = cookie?.startsWith('sid=') === true ? open(cookie.slice(4)) ?? { counter: 0 } : { counter: 0 }
    data.counter++
    reply.header('set-cookie', `sid=${seal(data)}; Path=/; HttpOnly; SameSite=Lax`)
    return `Visited ${data.counter} times\n`
  })
  return app
}

/** Builds the server of one kind, with the routes every kind has: GET / counts, GET /untouched doesn't. */
export async function buildServer (kind: ServerKind, config: ServerConfig): Promise<FastifyInstance> {
  switch (kind) {
    case 'ours-memory':
    case 'ours-redis':
    case 'ours-sealed':
    case 'ours-sealed-aes':
    case 'ours-postgres':
      return await ours(config, kind)
    case 'peer-session-memory':
      return await peerSession(config, 'memory')
    case 'peer-session-redis':
      return await peerSession(config, 'redis')
    case 'peer-session-postgres':
      return await peerSession(config, 'postgres')
    case 'peer-secure-session':
      return await peerSecureSession(config)
    case 'bare': {
      const app = Fastify()
      addRoutes(app, null)
      return app
    }
    case 'floor-redis':
      return await floorRedis(config)
    case 'floor-sealed':
      return await floorSealed(config)
    case 'floor-new-session':
      return await floorNewSession(config)
  }
}
