// `npx tsx bench/floor.ts [--rounds N] [--duration S]`: how far the targets set against a peer
// (sealed.*: ≥ 1.00 × @fastify/secure-session) can go at all with the cipher the design fixes.
// `npm run bench` measures each scenario's own floor (bare Fastify, the Redis floor) itself;
// this adds the AES-256-GCM floor (floorSealed in apps.ts: bare Fastify that opens and reseals
// the cookie, nothing else): if that floor cannot reach the target against the peer, no plugin
// on node:crypto can. Servers, load and CPU accounting are those of `npm run bench`.
import { randomBytes } from 'node:crypto'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import type { ServerConfig } from './apps.js'
import { ServerProcess, buildServers } from './child.js'
import { fire, obtainCookie } from './load.js'
import { removeKeys } from './machine.js'
import { median } from './report.js'
import { scenarios, type ServerKind } from './scenarios.js'

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    redis: { type: 'string', default: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379' }
  }
})

interface Case {
  scenario: string
  target: number
  /** The floor, ours and the peer; the floor is sent a cookie it sealed itself. */
  kinds: Array<{ kind: ServerKind, label: string, cookie: boolean }>
}

const cases: Case[] = scenarios
  .filter((scenario) => scenario.target?.kind === 'ratio' && scenario.target.against === 'peer' && scenario.ours === 'ours-sealed')
  .map((scenario) => ({
    scenario: scenario.name,
    target: scenario.target?.kind === 'ratio' ? scenario.target.min : 0,
    kinds: [
      { kind: 'floor-sealed', label: 'floor: AES-256-GCM open + seal', cookie: scenario.returning },
      { kind: scenario.ours, label: 'ours', cookie: scenario.returning },
      { kind: scenario.peer, label: scenario.peerName, cookie: scenario.returning }
    ]
  }))

interface Figures { reqPerSec: number, cpuUs: number }

async function measure (kind: ServerKind, cookie: boolean, redis: Redis): Promise<Figures> {
  const redisPrefix = `bench:floor:${randomBytes(6).toString('hex')}:`
  const config: ServerConfig = { secret: randomBytes(32).toString('base64url'), sealKey: randomBytes(32).toString('hex'), redisUrl: args.redis, redisPrefix }
  const server = await ServerProcess.start(kind, config, { compiled: true })
  try {
    const sent = cookie ? await obtainCookie(server.port) : undefined
    const base = { port: server.port, path: '/', connections: 50, duration: 3, ...(sent === undefined ? {} : { cookie: sent }) }
    await fire(base)
    const before = await server.mark()
    const load = await fire({ ...base, duration: Number(args.duration) })
    const after = await server.mark()
    if (load.failures > 0) throw new Error(`${kind}: ${load.failures} requests failed`)
    return { reqPerSec: load.reqPerSec, cpuUs: (after.cpuUs - before.cpuUs) / load.requests }
  } finally {
    await server.stop()
    await removeKeys(redis, redisPrefix)
  }
}

await buildServers()
const redis = new Redis(args.redis, { maxRetriesPerRequest: 1 })
for (const item of cases) {
  const runs = item.kinds.map(() => [] as Figures[])
  for (let round = 0; round < Number(args.rounds); round++) {
    const order = item.kinds.map((_, i) => i)
    if (round % 2 === 1) order.reverse()
    for (const i of order) runs[i]!.push(await measure(item.kinds[i]!.kind, item.kinds[i]!.cookie, redis))
  }
  const figures = runs.map((list) => ({ reqPerSec: median(list.map((f) => f.reqPerSec)) as number, cpuUs: median(list.map((f) => f.cpuUs)) as number }))
  const [floor, ours, peer] = figures as [Figures, Figures, Figures]
  console.log(`\n${item.scenario} (target ≥ ${item.target.toFixed(2)} × peer)`)
  item.kinds.forEach((k, i) => console.log(`  ${k.label.padEnd(44)} ${Math.round(figures[i]!.reqPerSec).toLocaleString('en-US').padStart(7)} req/s  ${figures[i]!.cpuUs.toFixed(1).padStart(5)} µs CPU/req`))
  console.log(`  best possible (floor / peer): ${(floor.reqPerSec / peer.reqPerSec).toFixed(2)}× req/s, ${(peer.cpuUs / floor.cpuUs).toFixed(2)}× CPU; ours / peer: ${(ours.reqPerSec / peer.reqPerSec).toFixed(2)}× req/s`)
}
redis.disconnect()
