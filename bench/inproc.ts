// `npx tsx bench/inproc.ts [--ours <index.ts>] [--against <index.ts>] [--floor] [--trials N] [--per-trial N] [--profile] [scenario ...]`
// CPU per request of Fastify and the session plugin alone: requests go through app.routing() on
// stand-in req/res objects, no sockets, no HTTP parser. On a busy machine, where the socket
// benchmark drowns in context switches, this still separates two versions of our code: both run
// in this one process, in alternating trials, and the paired ratio is reported. --floor adds the
// scenario's floor (bare Fastify, the Redis floor) as a third side, and ours minus it. --profile then
// runs our side alone under the V8 profiler and prints where its time goes (self and total).
import { randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { resolve } from 'node:path'
import { Session as InspectorSession } from 'node:inspector/promises'
import { writeFile, mkdir } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { buildServer, type ServerConfig } from './apps.js'
import { formatSelfTime, topSelfTime, topTotalTime } from './profile.js'
import { median } from './report.js'
import { floorNames, scenarios, type Scenario, type ServerKind } from './scenarios.js'

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    ours: { type: 'string' },
    against: { type: 'string' },
    trials: { type: 'string', default: '100' },
    'per-trial': { type: 'string', default: '500' },
    profile: { type: 'boolean', default: false },
    floor: { type: 'boolean', default: false },
    redis: { type: 'string', default: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379' }
  }
})

class StandInSocket extends EventEmitter {
  remoteAddress = '127.0.0.1'
  encrypted = false
}

const socket = new StandInSocket()

class StandInRequest extends EventEmitter {
  method = 'GET'
  httpVersionMajor = 1
  httpVersion = '1.1'
  socket = socket
  aborted = false
  constructor (readonly url: string, readonly headers: Record<string, string>) {
    super()
  }
}

class StandInResponse extends EventEmitter {
  statusCode = 200
  headersSent = false
  writableEnded = false
  destroyed = false
  headers: Record<string, unknown> = {}
  body: unknown
  constructor (readonly finished: (response: StandInResponse) => void) {
    super()
  }

  writeHead (statusCode: number, headers: Record<string, unknown>): void {
    this.statusCode = statusCode
    this.headers = headers
    this.headersSent = true
  }

  setHeader (): void {}
  getHeader (): undefined { return undefined }
  hasHeader (): boolean { return false }
  write (): boolean { return true }
  end (body: unknown): void {
    this.body = body
    this.writableEnded = true
    this.finished(this)
  }
}

type Workload = ((count: number) => Promise<void>) & { headers: Record<string, string> }

/** `cookieFrom`: a floor hands out no cookie of ours, so it is sent the one ours got (same header size). */
async function prepare (kind: ServerKind, scenario: Scenario, config: ServerConfig, oursModule?: string, cookieFrom?: Workload): Promise<Workload> {
  if (oursModule === undefined) delete process.env.BENCH_OURS_MODULE
  else process.env.BENCH_OURS_MODULE = oursModule
  const app = await buildServer(kind, config)
  await app.ready()
  const send = (headers: Record<string, string>): Promise<StandInResponse> => new Promise((resolve) => {
    app.routing(new StandInRequest(scenario.path, headers) as never, new StandInResponse(resolve) as never)
  })
  let headers: Record<string, string> = {}
  if (cookieFrom !== undefined) {
    headers = cookieFrom.headers
  } else if (scenario.returning) {
    const first = await send({})
    const line = [first.headers['set-cookie']].flat()[0]
    headers = { cookie: String(line).split(';', 1)[0] as string }
    const second = await send(headers)
    if (second.body !== 'Visited 2 times\n') throw new Error(`${kind}: the cookie did not bring the session back`)
  }
  const run = async (count: number): Promise<void> => {
    for (let i = 0; i < count; i++) {
      const response = await send(headers)
      if (response.statusCode !== 200) throw new Error(`${kind}: status ${response.statusCode}`)
    }
  }
  return Object.assign(run, { headers })
}

async function compare (scenario: Scenario): Promise<void> {
  const config: ServerConfig = {
    secret: randomBytes(32).toString('base64url'),
    sealKey: randomBytes(32).toString('hex'),
    redisUrl: args.redis,
    redisPrefix: `bench:inproc:${randomBytes(6).toString('hex')}:`
  }
  const against = args.against === undefined ? undefined : resolve(args.against)
  const ours = args.ours === undefined ? undefined : resolve(args.ours)
  const oursRun = await prepare(scenario.ours, scenario, config, ours)
  const sides = [
    { name: 'ours', run: oursRun },
    against === undefined
      ? { name: scenario.peerName, run: await prepare(scenario.peer, scenario, config) }
      : { name: `ours at ${args.against as string}`, run: await prepare(scenario.ours, scenario, config, against) }
  ]
  const floor = scenario.floor
  if (args.floor && floor !== undefined && (floor !== scenario.peer || against !== undefined)) {
    sides.push({ name: floorNames[floor] ?? floor, run: await prepare(floor, scenario, config, undefined, scenario.returning ? oursRun : undefined) })
  }
  const perTrial = Number(args['per-trial'])
  for (const side of sides) await side.run(perTrial * 4)
  const cpu: number[][] = sides.map(() => [])
  for (let trial = 0; trial < Number(args.trials); trial++) {
    // Rotate who goes first, so drift hits every side alike.
    for (let i = 0; i < sides.length; i++) {
      const index = (i + trial) % sides.length
      const start = process.cpuUsage()
      await sides[index]!.run(perTrial)
      const used = process.cpuUsage(start)
      cpu[index]!.push((used.user + used.system) / perTrial)
    }
  }
  for (const [index, side] of sides.entries()) {
    const list = cpu[index] as number[]
    console.log(`${scenario.name} ${side.name}: min ${Math.min(...list).toFixed(2)} µs, median ${median(list)?.toFixed(2)} µs CPU/request`)
  }
  for (let index = 1; index < sides.length; index++) {
    const ratios = (cpu[0] as number[]).map((value, i) => value / (cpu[index]![i] as number))
    const differences = (cpu[0] as number[]).map((value, i) => value - (cpu[index]![i] as number))
    console.log(`${scenario.name} ours / ${sides[index]!.name}: paired CPU ratio, median ${median(ratios)?.toFixed(3)}; ours − it, median ${median(differences)?.toFixed(2)} µs`)
  }
  console.log('')
  if (args.profile) await profile(scenario.name, oursRun, perTrial * Number(args.trials))
}

/** Our side alone, warm, under the V8 profiler: where one request's CPU goes. */
async function profile (name: string, run: Workload, requests: number): Promise<void> {
  const dir = resolve('bench/.profiles')
  await mkdir(dir, { recursive: true })
  const inspector = new InspectorSession()
  inspector.connect()
  await inspector.post('Profiler.enable')
  await inspector.post('Profiler.setSamplingInterval', { interval: 100 })
  await inspector.post('Profiler.start')
  await run(requests)
  const { profile } = await inspector.post('Profiler.stop')
  inspector.disconnect()
  const file = resolve(dir, `inproc-${name}.cpuprofile`)
  await writeFile(file, JSON.stringify(profile))
  const indent = (text: string): string => text.replace(/^/gm, '    ')
  console.log(`  profile ${file}\n  self time:\n${indent(formatSelfTime(await topSelfTime(file, 25)))}`)
  console.log(`  total time (the function and what it calls):\n${indent(formatSelfTime(await topTotalTime(file, 40)))}\n`)
}

const wanted = positionals.length === 0 ? ['memory.returning', 'memory.new', 'untouched'] : positionals
for (const name of wanted) {
  const scenario = scenarios.find((s) => s.name === name && s.flood === undefined)
  if (scenario === undefined) throw new Error(`no such throughput scenario: ${name}`)
  await compare(scenario)
}
process.exit(0)
