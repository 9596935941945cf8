/** The servers a run can start; each one runs alone in its own child process (see server.ts). */
export type ServerKind =
  | 'ours-memory'
  | 'ours-redis'
  | 'ours-sealed'
  | 'ours-sealed-aes'
  | 'ours-postgres'
  | 'peer-session-memory'
  | 'peer-session-redis'
  | 'peer-session-postgres'
  | 'peer-secure-session'
  | 'bare'
  | 'floor-redis'
  | 'floor-sealed'
  | 'floor-new-session'

/** ours, the library we are weighed against, and the floor: what the server does at the least. */
export type Side = 'ours' | 'peer' | 'floor'

/**
 * What a scenario must reach. `ratio`: ours / peer or ours / floor (req/s) at least `min`.
 * `floorPlusMB`: after a flood, our RSS at most the floor's RSS under the same flood + `max` MB.
 */
export type Target =
  | { kind: 'ratio', against: 'peer' | 'floor', min: number }
  | { kind: 'floorPlusMB', max: number }

export interface Scenario {
  name: string
  ours: ServerKind
  peer: ServerKind
  peerName: string
  /**
   * Measured in the same interleaved rounds as ours and the peer: bare Fastify, or the Redis
   * floor server (apps.ts). When it is the peer itself (untouched), the peer's runs serve.
   */
  floor?: ServerKind
  /** The export of src/index.ts our side needs; missing means "not built", never a stand-in. */
  needs: string
  path: '/' | '/untouched'
  /** Send a valid cookie, obtained from that very server first, on every request. */
  returning: boolean
  redis: boolean
  /** Needs the PostgreSQL server (a table of the run's own, dropped afterwards). */
  postgres?: boolean
  /** A flood sends this many new visitors and reports the server's RSS instead of req/s. */
  flood?: number
  unit: 'req/s' | 'MB'
  target?: Target
}

export const FLOOD_VISITORS = 250_000

/** What each floor is, as the report names it. */
export const floorNames: Partial<Record<ServerKind, string>> = {
  bare: 'fastify (no session)',
  'floor-redis': 'Redis floor (apps.ts floorRedis)',
  'floor-sealed': 'AES-256-GCM floor (apps.ts floorSealed)',
  'floor-new-session': 'new-session floor (apps.ts floorNewSession)'
}

const SESSION_MEMORY = { ours: 'ours-memory', peer: 'peer-session-memory', peerName: '@fastify/session (MemoryStore)', needs: 'MemoryFactory', floor: 'bare' } as const
const SESSION_REDIS = { ours: 'ours-redis', peer: 'peer-session-redis', peerName: '@fastify/session + connect-redis', needs: 'RedisFactory', floor: 'floor-redis', redis: true } as const
const SESSION_POSTGRES = { ours: 'ours-postgres', peer: 'peer-session-postgres', peerName: '@fastify/session + connect-pg-simple', needs: 'PostgresFactory', redis: false, postgres: true } as const
// Ours with `sodium: sodium-native` (ChaCha20-Poly1305), the library secure-session itself seals with.
const SECURE_SESSION = { ours: 'ours-sealed', peer: 'peer-secure-session', peerName: '@fastify/secure-session', needs: 'SealedCookieFactory', floor: 'bare', redis: false } as const
// Ours on node:crypto alone (AES-256-GCM, the default): no target, what a user without the add-on gets.
const SECURE_SESSION_AES = { ours: 'ours-sealed-aes', peer: 'peer-secure-session', peerName: '@fastify/secure-session', needs: 'SealedCookieFactory', redis: false } as const

// The targets of the speed issue: stateless sessions at least as fast as @fastify/secure-session
// (libsodium, native), every factory close to its floor.
export const scenarios: Scenario[] = [
  { name: 'memory.returning', ...SESSION_MEMORY, path: '/', returning: true, redis: false, unit: 'req/s', target: { kind: 'ratio', against: 'floor', min: 0.85 } },
  // A new session's floor does its unavoidable work: an id, its signature, the Set-Cookie, a bounded entry.
  { name: 'memory.new', ...SESSION_MEMORY, floor: 'floor-new-session', path: '/', returning: false, redis: false, unit: 'req/s', target: { kind: 'ratio', against: 'floor', min: 0.90 } },
  { name: 'redis.returning', ...SESSION_REDIS, path: '/', returning: true, unit: 'req/s', target: { kind: 'ratio', against: 'floor', min: 0.95 } },
  { name: 'redis.new', ...SESSION_REDIS, path: '/', returning: false, unit: 'req/s' },
  { name: 'postgres.returning', ...SESSION_POSTGRES, path: '/', returning: true, unit: 'req/s' },
  { name: 'postgres.new', ...SESSION_POSTGRES, path: '/', returning: false, unit: 'req/s' },
  { name: 'sealed.returning', ...SECURE_SESSION, path: '/', returning: true, unit: 'req/s', target: { kind: 'ratio', against: 'peer', min: 1.00 } },
  { name: 'sealed.new', ...SECURE_SESSION, path: '/', returning: false, unit: 'req/s', target: { kind: 'ratio', against: 'peer', min: 1.00 } },
  { name: 'sealed.aes.returning', ...SECURE_SESSION_AES, path: '/', returning: true, unit: 'req/s' },
  { name: 'sealed.aes.new', ...SECURE_SESSION_AES, path: '/', returning: false, unit: 'req/s' },
  {
    name: 'untouched',
    ours: 'ours-memory',
    peer: 'bare',
    peerName: 'fastify (no session)',
    floor: 'bare',
    needs: 'MemoryFactory',
    path: '/untouched',
    returning: false,
    redis: false,
    unit: 'req/s',
    target: { kind: 'ratio', against: 'floor', min: 0.97 }
  },
  { name: 'memory.flood', ...SESSION_MEMORY, path: '/', returning: false, redis: false, flood: FLOOD_VISITORS, unit: 'MB', target: { kind: 'floorPlusMB', max: 30 } }
]

/** The sides a scenario measures: the floor only when the peer is not it already (`--against` makes the peer ours). */
export function sidesOf (scenario: Scenario, peerIsOurs = false): Side[] {
  const floorIsPeer = scenario.floor === scenario.peer && !peerIsOurs
  return scenario.floor === undefined || floorIsPeer ? ['ours', 'peer'] : ['ours', 'peer', 'floor']
}

/** The kinds that need a Redis server. */
export function usesRedis (kind: ServerKind): boolean {
  return kind === 'ours-redis' || kind === 'peer-session-redis' || kind === 'floor-redis'
}
