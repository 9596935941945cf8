// `npm run bench [-- --quick] [-- --json]`: ours against the peers and the floors, each server in
// a child process. Every scenario measures ours, its peer and its floor (bare Fastify, or the
// Redis floor server of apps.ts) in the same rounds, the order rotating from round to round.
// Run time: 31 servers a round (postgres.*, sealed.aes.* and untouched have no floor of their own to run), each
// started fresh: ~2 s to start, 3 s of warm-up, 10 s measured, and a flood as long as its 250,000
// requests take. A --quick run (one round, 1 + 3 s) took 5.5 minutes on 2 shared cores, noisy runs
// redone included; the full run (4 rounds, as the targets are stated) comes to about 33 minutes,
// up to 40 with every redo.
import { randomBytes } from 'node:crypto'
import { mkdir } from 'node:fs/promises'
import { resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import pg from 'pg'
import type { ServerConfig } from './apps.js'
import { ServerNotBuilt, ServerProcess, buildServers } from './child.js'
import { fire, obtainCookie, type LoadOptions } from './load.js'
import { describeMachine, machineBusyUs, postgresCpuUs, redisCpuUs, removeKeys } from './machine.js'
import { formatSelfTime, topSelfTime } from './profile.js'
import { toJson, toTable, type Run, type ScenarioSummary, type Settings } from './report.js'
import { floorNames, scenarios, sidesOf, type Scenario, type ServerKind, type Side } from './scenarios.js'

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    connections: { type: 'string', default: '50' },
    only: { type: 'string' },
    side: { type: 'string' },
    retries: { type: 'string' },
    'retry-budget': { type: 'string' },
    noise: { type: 'string', default: '0.10' },
    redis: { type: 'string', default: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379' },
    pg: { type: 'string', default: process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test' },
    profile: { type: 'boolean', default: false },
    // With --profile: which sides' servers to profile (default ours), e.g. ours,peer.
    'profile-sides': { type: 'string', default: 'ours' },
    against: { type: 'string' },
    ours: { type: 'string' }
  }
})

function integer (value: string | undefined, fallback: number): number {
  const parsed = value === undefined ? fallback : Number(value)
  if (!Number.isFinite(parsed) || parsed < 0) throw new Error(`not a number: ${value}`)
  return parsed
}

const quick = args.quick
const settings: Settings = {
  // Three rounds: each of the three sides goes first, second and last once.
  rounds: integer(args.rounds, quick ? 1 : 4),
  duration: integer(args.duration, quick ? 3 : 10),
  warmup: integer(args.warmup, quick ? 1 : 3),
  connections: integer(args.connections, 50)
}
/** Redos of one noisy run, and of all runs together: bounded so the bench always ends. */
const retriesPerRun = integer(args.retries, quick ? 1 : 2)
let retryBudget = integer(args['retry-budget'], quick ? 2 : 16)
/** Other processes' CPU (in cores, averaged over the window) above which a run is redone. */
const noiseCores = Number(args.noise)
const onlySides = args.side === undefined ? null : new Set(args.side.split(','))
const profileDir = args.profile ? resolve('bench/.profiles') : undefined
const profiledSides = new Set(args['profile-sides'].split(','))
const against = args.against === undefined ? undefined : resolve(args.against)
/** Our side from another copy of the source (e.g. a branch not merged yet); default src/index.ts. */
const oursEntry = args.ours === undefined ? undefined : resolve(args.ours)
/** Servers run compiled (plain node) unless a copy of our TypeScript source is given. */
const compiled = oursEntry === undefined && against === undefined

const MIN_WARMUP_REQUESTS = 5000

const log = (line: string): void => { process.stderr.write(`${line}\n`) }

const secret = randomBytes(32).toString('base64url')
const sealKey = randomBytes(32).toString('hex')

async function connectRedis (url: string): Promise<Redis | null> {
  const client = new Redis(url, { lazyConnect: true, connectTimeout: 2000, maxRetriesPerRequest: 1, retryStrategy: () => null })
  client.on('error', () => {})
  try {
    await client.connect()
    await client.ping()
    return client
  } catch {
    client.disconnect()
    return null
  }
}

async function connectPostgres (url: string): Promise<pg.Pool | null> {
  const pool = new pg.Pool({ connectionString: url, max: 1, connectionTimeoutMillis: 2000 })
  pool.on('error', () => {})
  try {
    await pool.query('SELECT 1')
    return pool
  } catch {
    await pool.end()
    return null
  }
}

interface Snapshot {
  at: number
  serverUs: number
  rss: number
  benchUs: number
  busyUs: number | null
  redisUs: number
  postgresUs: number
}

async function snapshot (server: ServerProcess, redis: Redis | null, postgres: boolean): Promise<Snapshot> {
  const { cpuUs, rss } = await server.mark()
  const own = process.cpuUsage()
  return {
    at: performance.now(),
    serverUs: cpuUs,
    rss,
    benchUs: own.user + own.system,
    busyUs: machineBusyUs(),
    redisUs: redis === null ? 0 : await redisCpuUs(redis),
    postgresUs: postgres ? postgresCpuUs() : 0
  }
}

interface Context {
  redis: Redis | null
  postgres: pg.Pool | null
  /** Per scenario, the last cookie one of our servers gave: what its floor is sent (see measureOnce). */
  floorCookies: Map<string, string>
}

function kindOf (scenario: Scenario, side: Side): ServerKind {
  if (side === 'floor') return scenario.floor as ServerKind
  return side === 'ours' || against !== undefined ? scenario.ours : scenario.peer
}

/**
 * One fresh server, a warm-up, then the measured window. A floor server hands out no cookie of
 * ours: on a returning scenario it is sent one our server gave (ours opens round 1), so that
 * every side parses a Cookie header of the same size.
 */
async function measureOnce (scenario: Scenario, side: Side, ctx: Context, label: string): Promise<Run> {
  const kind = kindOf(scenario, side)
  const redisPrefix = `bench:${randomBytes(6).toString('hex')}:`
  const pgTable = `bench_${randomBytes(6).toString('hex')}`
  const config: ServerConfig = { secret, sealKey, redisUrl: args.redis, redisPrefix, pgUrl: args.pg, pgTable }
  const oursModule = side === 'peer' ? against : oursEntry
  const server = await ServerProcess.start(kind, config, {
    ...(profileDir === undefined || !profiledSides.has(side) ? {} : { profileDir }),
    ...(oursModule === undefined ? {} : { oursModule }),
    compiled
  })
  const redis = scenario.redis ? ctx.redis : null
  try {
    let cookie: string | undefined
    if (scenario.returning && side === 'floor') cookie = ctx.floorCookies.get(scenario.name)
    else if (scenario.returning) cookie = await obtainCookie(server.port)
    if (cookie !== undefined && side === 'ours') ctx.floorCookies.set(scenario.name, cookie)
    const base: LoadOptions = { port: server.port, path: scenario.path, connections: settings.connections, duration: settings.duration, ...(cookie === undefined ? {} : { cookie }) }
    if (scenario.flood === undefined && settings.warmup > 0) {
      // On a slow or busy machine a timed warm-up may be too few requests for the JIT to settle.
      const warm = await fire({ ...base, duration: settings.warmup })
      // autocannon refuses fewer requests than connections.
      if (warm.requests < MIN_WARMUP_REQUESTS) await fire({ ...base, amount: Math.max(MIN_WARMUP_REQUESTS - warm.requests, settings.connections) })
    }
    const before = await snapshot(server, redis, scenario.postgres === true)
    if (profileDir !== undefined) server.profileStart()
    const load = await fire(scenario.flood === undefined ? base : { ...base, amount: scenario.flood })
    const after = await snapshot(server, redis, scenario.postgres === true)
    if (profileDir !== undefined && profiledSides.has(side)) {
      const file = await server.profileStop(label.replace(/[^\w.-]+/g, '_'))
      if (file !== '') log(`  profile ${file}\n${formatSelfTime(await topSelfTime(file, 15)).replace(/^/gm, '    ')}`)
    }
    if (load.failures > 0) throw new Error(`${load.failures} of ${load.requests} requests failed`)
    const serverUs = after.serverUs - before.serverUs
    const windowUs = (after.at - before.at) * 1000
    const otherUs = after.busyUs === null || before.busyUs === null
      ? 0
      : (after.busyUs - before.busyUs) - serverUs - (after.benchUs - before.benchUs) - (after.redisUs - before.redisUs) - (after.postgresUs - before.postgresUs)
    const otherCores = Math.max(0, otherUs / windowUs)
    return {
      value: scenario.flood === undefined ? load.reqPerSec : after.rss / 2 ** 20,
      p99Ms: load.p99Ms,
      cpuUs: serverUs / load.requests,
      redisCpuUs: (after.redisUs - before.redisUs) / load.requests,
      otherCores,
      noisy: otherCores > noiseCores
    }
  } finally {
    await server.stop()
    if (redis !== null) await removeKeys(redis, redisPrefix)
    if (scenario.postgres === true) await ctx.postgres?.query(`DROP TABLE IF EXISTS "${pgTable}"`)
  }
}

/** A run that other processes disturbed is redone, within the per-run and overall bounds. */
async function measure (scenario: Scenario, side: Side, ctx: Context, label: string): Promise<Run> {
  for (let attempt = 0; ; attempt++) {
    const run = await measureOnce(scenario, side, ctx, label)
    const shown = scenario.flood === undefined ? `${Math.round(run.value)} req/s` : `RSS ${run.value.toFixed(1)} MB`
    const redisShown = scenario.redis ? ` (Redis ${run.redisCpuUs.toFixed(1)} µs/req)` : ''
    log(`${label}: ${shown}, p99 ${run.p99Ms} ms, ${run.cpuUs.toFixed(1)} µs CPU/req${redisShown}, others ${run.otherCores.toFixed(2)} cores${run.noisy ? ' (noisy)' : ''}`)
    if (!run.noisy || attempt >= retriesPerRun || retryBudget <= 0) return run
    retryBudget--
    log(`${label}: redone, other processes were busy`)
  }
}

async function main (): Promise<void> {
  const machine = describeMachine()
  const selected = args.only === undefined ? scenarios : scenarios.filter((s) => args.only?.split(',').includes(s.name))
  if (selected.length === 0) throw new Error(`--only matched no scenario; known: ${scenarios.map((s) => s.name).join(', ')}`)
  if (profileDir !== undefined) await mkdir(profileDir, { recursive: true })
  if (compiled) await buildServers()

  const ours: Record<string, unknown> = oursEntry === undefined ? await import('../src/index.js') : await import(pathToFileURL(oursEntry).href)
  const redis = selected.some((s) => s.redis) ? await connectRedis(args.redis) : null
  const postgres = selected.some((s) => s.postgres === true) ? await connectPostgres(args.pg) : null
  const summaries: ScenarioSummary[] = selected.map((scenario) => {
    let status: string | null = null
    if (!(scenario.needs in ours)) status = 'not built'
    else if (scenario.redis && redis === null) status = `skipped: no Redis at ${args.redis}`
    else if (scenario.postgres === true && postgres === null) status = `skipped: no PostgreSQL at ${args.pg}`
    const floorName = scenario.floor === undefined ? null : floorNames[scenario.floor] ?? scenario.floor
    return { scenario, status, peerName: against === undefined ? scenario.peerName : 'ours (--against)', floorName, ours: [], peer: [], floor: [] }
  })
  log(`${machine}\n${settings.rounds} round(s), ${settings.warmup} s warm-up + ${settings.duration} s measured, ${settings.connections} connections, servers ${compiled ? 'compiled (node)' : 'from source (tsx)'}`)

  const floorCookies = new Map<string, string>()
  for (let round = 0; round < settings.rounds; round++) {
    for (const summary of summaries) {
      if (summary.status !== null) continue
      // Rotate who goes first, so drift over a round hits every side alike; ours opens round 1,
      // so a returning scenario's floor has a cookie of ours to be sent.
      const all = sidesOf(summary.scenario, against !== undefined)
      const sides = all.map((_, i) => all[(i + round) % all.length] as Side)
      for (const side of sides) {
        if (onlySides !== null && !onlySides.has(side)) continue
        const label = `[${round + 1}/${settings.rounds}] ${summary.scenario.name} ${side}`
        try {
          summary[side].push(await measure(summary.scenario, side, { redis, postgres, floorCookies }, label))
        } catch (error) {
          if (error instanceof ServerNotBuilt) summary.status = 'not built'
          else summary.status = `failed: ${(error as Error).message}`
          log(`${label}: ${summary.status}`)
          break
        }
      }
    }
  }
  redis?.disconnect()
  await postgres?.end()

  // With --json the table still goes to stderr, for the notes and docs/benchmarks.md.
  if (args.json) {
    process.stdout.write(`${toJson(summaries, machine, settings)}\n`)
    log(`\n${toTable(summaries)}\n\nMachine: ${machine}.`)
  } else process.stdout.write(`${toTable(summaries)}\n\nMachine: ${machine}.\n`)
}

await main()
