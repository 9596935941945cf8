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
  ours: Run[]
  peer: Run[]
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

export interface ScenarioFigures {
  ours: number | null
  peer: number | null
  ratio: number | null
  peerName: string
  unit: 'req/s' | 'MB'
  oursCpuUs: number | null
  peerCpuUs: number | null
  oursP99Ms: number | null
  peerP99Ms: number | null
  /** Runs that stayed noisy after their retries. */
  noisyRuns: number
  target: string | null
  met: boolean | null
  status?: string
}

function describeTarget (target: Target | undefined, peerName: string): string | null {
  if (target === undefined) return null
  if (target.kind === 'maxMB') return `≤ ${target.max} MB`
  const ceiling = target.ceilingMin === undefined ? '' : `, ≥ ${target.ceilingMin.toFixed(2)} × bare`
  return `≥ ${target.min.toFixed(2)} × ${peerName === 'fastify (no session)' ? 'bare' : 'peer'}${ceiling}`
}

export function figures (summary: ScenarioSummary, ceiling: number | null): ScenarioFigures {
  const { scenario } = summary
  const ours = medianOf(summary.ours, 'value')
  const peer = medianOf(summary.peer, 'value')
  const ratio = ours !== null && peer !== null && peer > 0 ? ours / peer : null
  const target = scenario.target
  let met: boolean | null = null
  if (target !== undefined && ours !== null) {
    if (target.kind === 'maxMB') met = ours <= target.max
    else if (ratio !== null) {
      met = ratio >= target.min && (target.ceilingMin === undefined || (ceiling !== null && ours / ceiling >= target.ceilingMin))
    }
  }
  const digits = scenario.unit === 'MB' ? 1 : 0
  return {
    ours: round(ours, digits),
    peer: round(peer, digits),
    ratio: round(ratio, 3),
    peerName: summary.peerName,
    unit: scenario.unit,
    oursCpuUs: round(medianOf(summary.ours, 'cpuUs'), 1),
    peerCpuUs: round(medianOf(summary.peer, 'cpuUs'), 1),
    oursP99Ms: round(medianOf(summary.ours, 'p99Ms'), 1),
    peerP99Ms: round(medianOf(summary.peer, 'p99Ms'), 1),
    noisyRuns: [...summary.ours, ...summary.peer].filter((run) => run.noisy).length,
    target: describeTarget(target, summary.peerName),
    met,
    ...(summary.status === null ? {} : { status: summary.status })
  }
}

export function ceilingOf (summaries: ScenarioSummary[]): number | null {
  // Against another version of ours (--against) there is no bare fastify run.
  const untouched = summaries.find((summary) => summary.scenario.peer === 'bare' && summary.peerName === summary.scenario.peerName)
  return untouched === undefined ? null : medianOf(untouched.peer, 'value')
}

export function toJson (summaries: ScenarioSummary[], machine: string, settings: Settings): string {
  const ceiling = ceilingOf(summaries)
  const scenarios: Record<string, ScenarioFigures> = {}
  for (const summary of summaries) scenarios[summary.scenario.name] = figures(summary, ceiling)
  return JSON.stringify({ scenarios, ceiling: round(ceiling, 0), machine, settings }, null, 2)
}

const number = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 })

function show (value: number | null, unit: 'req/s' | 'MB'): string {
  if (value === null) return '—'
  return unit === 'MB' ? `${value.toFixed(1)} MB` : number.format(value)
}

function pair (a: number | null, b: number | null, digits: number): string {
  const one = (value: number | null): string => value === null ? '—' : value.toFixed(digits)
  return `${one(a)} / ${one(b)}`
}

/** The Markdown table: paste-ready for the README. */
export function toTable (summaries: ScenarioSummary[]): string {
  const ceiling = ceilingOf(summaries)
  const rows = [
    '| scenario | ours | peer | ours / peer | target | p99 ms (ours / peer) | server CPU µs/req (ours / peer) | peer |',
    '|---|---:|---:|---:|---|---:|---:|---|'
  ]
  let noisy = false
  for (const summary of summaries) {
    const f = figures(summary, ceiling)
    if (f.status !== undefined) {
      rows.push(`| ${summary.scenario.name} | ${f.status} | | | ${f.target ?? ''} | | | ${f.peerName} |`)
      continue
    }
    const mark = f.noisyRuns > 0 ? ' ~' : ''
    noisy ||= f.noisyRuns > 0
    const ratio = f.ratio === null ? '—' : `${f.ratio.toFixed(2)}×`
    let target = f.target ?? ''
    if (f.met !== null) target += f.met ? ' ✓' : ' ✗'
    if (summary.scenario.target?.kind === 'ratio' && summary.scenario.target.ceilingMin !== undefined && ceiling !== null && f.ours !== null) {
      target += ` (${(f.ours / ceiling).toFixed(2)} × bare)`
    }
    rows.push(`| ${summary.scenario.name}${mark} | ${show(f.ours, f.unit)} | ${show(f.peer, f.unit)} | ${ratio} | ${target} | ` +
      `${pair(f.oursP99Ms, f.peerP99Ms, 1)} | ${pair(f.oursCpuUs, f.peerCpuUs, 1)} | ${f.peerName} |`)
  }
  if (ceiling !== null) rows.push('', `Ceiling (bare fastify, no session): ${number.format(ceiling)} req/s.`)
  if (noisy) rows.push('', '~ some runs of this scenario stayed noisy (other processes burnt CPU) after their retries.')
  return rows.join('\n')
}
