/** The servers a run can start; each one runs alone in its own child process (see server.ts). */
export type ServerKind =
  | 'ours-memory'
  | 'ours-redis'
  | 'ours-sealed'
  | 'ours-postgres'
  | 'peer-session-memory'
  | 'peer-session-redis'
  | 'peer-session-postgres'
  | 'peer-secure-session'
  | 'bare'
  | 'floor-redis'
  | 'floor-sealed'

export type Side = 'ours' | 'peer'

export type Target =
  | { kind: 'ratio', min: number, ceilingMin?: number }
  | { kind: 'maxMB', max: number }

export interface Scenario {
  name: string
  ours: ServerKind
  peer: ServerKind
  peerName: string
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

export const scenarios: Scenario[] = [
  {
    name: 'memory.returning',
    ours: 'ours-memory',
    peer: 'peer-session-memory',
    peerName: '@fastify/session (MemoryStore)',
    needs: 'MemoryFactory',
    path: '/',
    returning: true,
    redis: false,
    unit: 'req/s',
    target: { kind: 'ratio', min: 3.0, ceilingMin: 0.70 }
  },
  {
    name: 'memory.new',
    ours: 'ours-memory',
    peer: 'peer-session-memory',
    peerName: '@fastify/session (MemoryStore)',
    needs: 'MemoryFactory',
    path: '/',
    returning: false,
    redis: false,
    unit: 'req/s',
    target: { kind: 'ratio', min: 1.6 }
  },
  {
    name: 'redis.returning',
    ours: 'ours-redis',
    peer: 'peer-session-redis',
    peerName: '@fastify/session + connect-redis',
    needs: 'RedisFactory',
    path: '/',
    returning: true,
    redis: true,
    unit: 'req/s',
    target: { kind: 'ratio', min: 2.0 }
  },
  {
    name: 'redis.new',
    ours: 'ours-redis',
    peer: 'peer-session-redis',
    peerName: '@fastify/session + connect-redis',
    needs: 'RedisFactory',
    path: '/',
    returning: false,
    redis: true,
    unit: 'req/s'
  },
  {
    name: 'postgres.returning',
    ours: 'ours-postgres',
    peer: 'peer-session-postgres',
    peerName: '@fastify/session + connect-pg-simple',
    needs: 'PostgresFactory',
    path: '/',
    returning: true,
    redis: false,
    postgres: true,
    unit: 'req/s'
  },
  {
    name: 'postgres.new',
    ours: 'ours-postgres',
    peer: 'peer-session-postgres',
    peerName: '@fastify/session + connect-pg-simple',
    needs: 'PostgresFactory',
    path: '/',
    returning: false,
    redis: false,
    postgres: true,
    unit: 'req/s'
  },
  {
    name: 'sealed.returning',
    ours: 'ours-sealed',
    peer: 'peer-secure-session',
    peerName: '@fastify/secure-session',
    needs: 'SealedCookieFactory',
    path: '/',
    returning: true,
    redis: false,
    unit: 'req/s',
    target: { kind: 'ratio', min: 1.5 }
  },
  {
    name: 'sealed.new',
    ours: 'ours-sealed',
    peer: 'peer-secure-session',
    peerName: '@fastify/secure-session',
    needs: 'SealedCookieFactory',
    path: '/',
    returning: false,
    redis: false,
    unit: 'req/s'
  },
  {
    name: 'untouched',
    ours: 'ours-memory',
    peer: 'bare',
    peerName: 'fastify (no session)',
    needs: 'MemoryFactory',
    path: '/untouched',
    returning: false,
    redis: false,
    unit: 'req/s',
    target: { kind: 'ratio', min: 0.95 }
  },
  {
    name: 'memory.flood',
    ours: 'ours-memory',
    peer: 'peer-session-memory',
    peerName: '@fastify/session (MemoryStore)',
    needs: 'MemoryFactory',
    path: '/',
    returning: false,
    redis: false,
    flood: FLOOD_VISITORS,
    unit: 'MB',
    target: { kind: 'maxMB', max: 150 }
  }
]

/** The kinds that need a Redis server. */
export function usesRedis (kind: ServerKind): boolean {
  return kind === 'ours-redis' || kind === 'peer-session-redis' || kind === 'floor-redis'
}
