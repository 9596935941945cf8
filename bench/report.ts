import type { Scenario, Target } from './scenarios.js'

/** One measured window on one fresh server. */
export interface Run {
  /** req/s, or the server's RSS in MB after a flood. */
  value: number
  p99Ms: number
  cpuUs: number
  /** Redis's own CPU per request (µs) in the window; 0 for scenarios without Redis. */
  redisCpuUs: number
  /** Cores' worth of CPU that other processes burnt during the window. */
  otherCores: number
  noisy: boolean
}

export interface ScenarioSummary {
  scenario: Scenario
  /** Set when the scenario was not measured: "not built", "skipped: ...", "failed: ...". */
  status: string | null
  peerName: string
  /** null: the scenario has no floor. */
  floorName: string | null
  ours: Run[]
  peer: Run[]
  floor: Run[]
}

export interface Settings {
  rounds: number
  duration: number
  warmup: number
  connections: number
}

export function median (values: number[]): number | null {
  if (values.length === 0) return null
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[middle] as number : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2
}

const medianOf = (runs: Run[], key: keyof Run): number | null => median(runs.map((run) => Number(run[key])))

function round (value: number | null, digits: number): number | null {
  return value === null ? null : Number(value.toFixed(digits))
}

/** Every figure of one scenario: medians over its rounds; CPU is the server's own, per request. */
export interface ScenarioFigures {
  unit: 'req/s' | 'MB'
  /** req/s, or RSS in MB after a flood. */
  ours: number | null
  peer: number | null
  floor: number | null
  peerName: string
  floorName: string | null
  /** ours / peer. */
  ratio: number | null
  /** ours / floor. */
  floorRatio: number | null
  oursCpuUs: number | null
  peerCpuUs: number | null
  floorCpuUs: number | null
  /** CPU µs/request over bare Fastify's: what the session costs, ours and the peer's. */
  overheadUs: number | null
  peerOverheadUs: number | null
  /** Bare Fastify's CPU µs/request those two subtract: this scenario's floor when bare, else the median of the run's bare runs on GET /. */
  bareCpuUs: number | null
  oursP99Ms: number | null
  peerP99Ms: number | null
  floorP99Ms: number | null
  /** Runs that stayed noisy after their retries. */
  noisyRuns: number
  target: string | null
  met: boolean | null
  status?: string
}

/** The runs of a scenario's floor: its own, or the peer's when the floor is the peer (untouched). */
function floorRuns (summary: ScenarioSummary): Run[] {
  const { floor, peer } = summary.scenario
  if (floor === undefined) return []
  return floor === peer && summary.peerName === summary.scenario.peerName ? summary.peer : summary.floor
}

/**
 * Bare Fastify's CPU per request, for the overhead of scenarios whose floor is not bare (Redis,
 * PostgreSQL): the median over the run's bare floor runs on GET / (the same route, a cookie or not).
 */
export function bareCpuOf (summaries: ScenarioSummary[]): number | null {
  const runs = summaries
    .filter((summary) => summary.scenario.floor === 'bare' && summary.scenario.path === '/' && summary.scenario.flood === undefined)
    .flatMap(floorRuns)
  return medianOf(runs, 'cpuUs')
}

function describeTarget (target: Target | undefined): string | null {
  if (target === undefined) return null
  if (target.kind === 'floorPlusMB') return `≤ floor + ${target.max} MB`
  return `≥ ${target.min.toFixed(2)} × ${target.against}`
}

const difference = (a: number | null, b: number | null): number | null => a === null || b === null ? null : a - b
const quotient = (a: number | null, b: number | null): number | null => a === null || b === null || b <= 0 ? null : a / b

export function figures (summary: ScenarioSummary, runBareCpuUs: number | null): ScenarioFigures {
  const { scenario } = summary
  const floorList = floorRuns(summary)
  const ours = medianOf(summary.ours, 'value')
  const peer = medianOf(summary.peer, 'value')
  const floor = medianOf(floorList, 'value')
  const ratio = quotient(ours, peer)
  const floorRatio = quotient(ours, floor)
  const oursCpuUs = medianOf(summary.ours, 'cpuUs')
  const peerCpuUs = medianOf(summary.peer, 'cpuUs')
  const floorCpuUs = medianOf(floorList, 'cpuUs')
  const bareCpuUs = scenario.floor === 'bare' ? floorCpuUs : runBareCpuUs
  const target = scenario.target
  let met: boolean | null = null
  if (target?.kind === 'floorPlusMB' && ours !== null && floor !== null) met = ours <= floor + target.max
  if (target?.kind === 'ratio') {
    const reached = target.against === 'peer' ? ratio : floorRatio
    if (reached !== null) met = reached >= target.min
  }
  const digits = scenario.unit === 'MB' ? 1 : 0
  const runs = [...summary.ours, ...summary.peer, ...(floorList === summary.peer ? [] : floorList)]
  return {
    unit: scenario.unit,
    ours: round(ours, digits),
    peer: round(peer, digits),
    floor: round(floor, digits),
    peerName: summary.peerName,
    floorName: summary.floorName,
    ratio: round(ratio, 3),
    floorRatio: round(floorRatio, 3),
    oursCpuUs: round(oursCpuUs, 1),
    peerCpuUs: round(peerCpuUs, 1),
    floorCpuUs: round(floorCpuUs, 1),
    overheadUs: round(difference(oursCpuUs, bareCpuUs), 1),
    peerOverheadUs: round(difference(peerCpuUs, bareCpuUs), 1),
    bareCpuUs: round(bareCpuUs, 1),
    oursP99Ms: round(medianOf(summary.ours, 'p99Ms'), 1),
    peerP99Ms: round(medianOf(summary.peer, 'p99Ms'), 1),
    floorP99Ms: round(medianOf(floorList, 'p99Ms'), 1),
    noisyRuns: runs.filter((run) => run.noisy).length,
    target: describeTarget(target),
    met,
    ...(summary.status === null ? {} : { status: summary.status })
  }
}

export function toJson (summaries: ScenarioSummary[], machine: string, settings: Settings): string {
  const bare = bareCpuOf(summaries)
  const scenarios: Record<string, ScenarioFigures> = {}
  for (const summary of summaries) scenarios[summary.scenario.name] = figures(summary, bare)
  return JSON.stringify({ scenarios, machine, settings }, null, 2)
}

const number = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 })

function show (value: number | null, unit: 'req/s' | 'MB'): string {
  if (value === null) return '—'
  return unit === 'MB' ? `${value.toFixed(1)} MB` : number.format(value)
}

function list (values: Array<number | null>, digits: number): string {
  return values.map((value) => value === null ? '—' : value.toFixed(digits)).join(' / ')
}

const times = (value: number | null): string => value === null ? '—' : `${value.toFixed(2)}×`

/** The Markdown table: paste-ready for docs/benchmarks.md. */
export function toTable (summaries: ScenarioSummary[]): string {
  const bare = bareCpuOf(summaries)
  const rows = [
    '| scenario | ours | peer | floor | ours / peer | ours / floor | target | server CPU µs/req (ours / peer / floor) | overhead µs/req over bare (ours / peer) | p99 ms (ours / peer / floor) | peer | floor |',
    '|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---|---|'
  ]
  let noisy = false
  for (const summary of summaries) {
    const f = figures(summary, bare)
    if (f.status !== undefined) {
      rows.push(`| ${summary.scenario.name} | ${f.status} | | | | | ${f.target ?? ''} | | | | ${f.peerName} | ${f.floorName ?? ''} |`)
      continue
    }
    const mark = f.noisyRuns > 0 ? ' ~' : ''
    noisy ||= f.noisyRuns > 0
    let target = f.target ?? ''
    if (f.met !== null) target += f.met ? ' ✓' : ' ✗'
    if (summary.scenario.target?.kind === 'floorPlusMB' && f.ours !== null && f.floor !== null) target += ` (+${(f.ours - f.floor).toFixed(1)} MB)`
    rows.push(`| ${summary.scenario.name}${mark} | ${show(f.ours, f.unit)} | ${show(f.peer, f.unit)} | ${show(f.floor, f.unit)} | ${times(f.ratio)} | ${times(f.floorRatio)} | ${target} | ` +
      `${list([f.oursCpuUs, f.peerCpuUs, f.floorCpuUs], 1)} | ${list([f.overheadUs, f.peerOverheadUs], 1)} | ${list([f.oursP99Ms, f.peerP99Ms, f.floorP99Ms], 1)} | ${f.peerName} | ${f.floorName ?? '—'} |`)
  }
  if (bare !== null) rows.push('', `Overheads subtract bare Fastify's own CPU: the scenario's floor when it is bare, else ${bare.toFixed(1)} µs/req (the run's bare runs on GET /).`)
  if (noisy) rows.push('', '~ some runs of this scenario stayed noisy (other processes burnt CPU) after their retries.')
  return rows.join('\n')
}
