// Reads a .cpuprofile (V8's JSON) and lists the functions that spent the most self time.
// Usage: npx tsx bench/profile.ts bench/.profiles/<file>.cpuprofile [count]
import { readFile } from 'node:fs/promises'
import { relative } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

interface ProfileNode {
  id: number
  callFrame: { functionName: string, url: string, lineNumber: number, columnNumber: number }
  hitCount?: number
  children?: number[]
}

interface CpuProfile {
  nodes: ProfileNode[]
  startTime: number
  endTime: number
  samples?: number[]
  timeDeltas?: number[]
}

export interface SelfTime {
  name: string
  where: string
  /** Share of all samples, 0..1. */
  share: number
  ms: number
}

function where (url: string, line: number): string {
  if (url === '') return '(native)'
  const path = url.startsWith('file://') ? relative(process.cwd(), fileURLToPath(url)) : url
  const short = path.replace(/^.*node_modules\//, '~/')
  return `${short}:${line + 1}`
}

/** Self time per function (summed over the nodes that share a name and place), biggest first. */
export async function topSelfTime (file: string, count = 25): Promise<SelfTime[]> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile
  const byNode = new Map<number, number>()
  const samples = profile.samples ?? []
  const deltas = profile.timeDeltas ?? []
  // A sample's time is the gap to the next one; V8 writes the gap before each sample.
  for (let i = 0; i < samples.length; i++) {
    const id = samples[i] as number
    byNode.set(id, (byNode.get(id) ?? 0) + (deltas[i + 1] ?? 0))
  }
  let total = 0
  const byFunction = new Map<string, SelfTime>()
  for (const node of profile.nodes) {
    const us = byNode.get(node.id) ?? 0
    total += us
    const { functionName, url, lineNumber } = node.callFrame
    const name = functionName === '' ? '(anonymous)' : functionName
    const place = where(url, lineNumber)
    const key = `${name} ${place}`
    const entry = byFunction.get(key) ?? { name, where: place, share: 0, ms: 0 }
    entry.ms += us / 1000
    byFunction.set(key, entry)
  }
  const list = [...byFunction.values()].sort((a, b) => b.ms - a.ms).slice(0, count)
  for (const entry of list) entry.share = total === 0 ? 0 : entry.ms * 1000 / total
  return list
}

/**
 * Total time per function: the samples with it anywhere on the stack (once per sample, however
 * deep it recurses), biggest first; what a function costs with everything it calls.
 */
export async function topTotalTime (file: string, count = 25): Promise<SelfTime[]> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile
  const parent = new Map<number, number>()
  const keyOf = new Map<number, string>()
  const byFunction = new Map<string, SelfTime>()
  for (const node of profile.nodes) {
    for (const child of node.children ?? []) parent.set(child, node.id)
    const { functionName, url, lineNumber } = node.callFrame
    const name = functionName === '' ? '(anonymous)' : functionName
    const place = where(url, lineNumber)
    const key = `${name} ${place}`
    keyOf.set(node.id, key)
    if (!byFunction.has(key)) byFunction.set(key, { name, where: place, share: 0, ms: 0 })
  }
  const samples = profile.samples ?? []
  const deltas = profile.timeDeltas ?? []
  let total = 0
  for (let i = 0; i < samples.length; i++) {
    const us = deltas[i + 1] ?? 0
    total += us
    const seen = new Set<string>()
    for (let id: number | undefined = samples[i]; id !== undefined; id = parent.get(id)) {
      const key = keyOf.get(id) as string
      if (seen.has(key)) continue
      seen.add(key)
      ;(byFunction.get(key) as SelfTime).ms += us / 1000
    }
  }
  const skip = new Set(['(root)', '(program)', '(idle)', '(garbage collector)'])
  const list = [...byFunction.values()].filter((entry) => !skip.has(entry.name)).sort((a, b) => b.ms - a.ms).slice(0, count)
  for (const entry of list) entry.share = total === 0 ? 0 : entry.ms * 1000 / total
  return list
}

export function formatSelfTime (list: SelfTime[]): string {
  return list.map((entry) =>
    `${(entry.share * 100).toFixed(1).padStart(5)} %  ${entry.ms.toFixed(0).padStart(6)} ms  ${entry.name}  ${entry.where}`
  ).join('\n')
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [file, count] = process.argv.slice(2)
  if (file === undefined) {
    console.error('usage: tsx bench/profile.ts <file.cpuprofile> [count]')
    process.exit(2)
  }
  console.log(formatSelfTime(await topSelfTime(file, count === undefined ? 25 : Number(count))))
}
