import { execFileSync } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import { cpus, release, totalmem } from 'node:os'
import type { Redis } from 'ioredis'

/** Clock ticks per second of /proc/stat (USER_HZ). */
const TICKS = ((): number => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
  } catch {
    return 100
  }
})()

/**
 * CPU time (µs) every core spent busy since boot, from /proc/stat. Interrupt time is left out:
 * the loopback traffic of the run itself lands there and belongs to no process.
 */
export function machineBusyUs (): number | null {
  let line: string | undefined
  try {
    line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]
  } catch {
    return null
  }
  // cpu user nice system idle iowait irq softirq steal guest guest_nice
  const fields = (line ?? '').trim().split(/\s+/).slice(1).map(Number)
  const [user = 0, nice = 0, system = 0, , , , , steal = 0] = fields
  return (user + nice + system + steal) * 1e6 / TICKS
}

/** The Redis server's own CPU time (µs), so that its work in a Redis scenario is not taken for noise. */
export async function redisCpuUs (client: Redis): Promise<number> {
  const info = await client.info('cpu')
  let total = 0
  for (const name of ['used_cpu_sys', 'used_cpu_user']) {
    const match = new RegExp(`^${name}:([0-9.]+)`, 'm').exec(info)
    if (match !== null) total += Number(match[1]) * 1e6
  }
  return total
}

/**
 * The CPU time (µs) of this machine's PostgreSQL processes (postmaster and backends, from
 * /proc), so that the database's work in a PostgreSQL scenario is not taken for noise. A backend
 * that exits between two readings takes its time with it: the reading can only fall short.
 */
export function postgresCpuUs (): number {
  let total = 0
  let pids: string[]
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name))
  } catch {
    return 0
  }
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      // pid (comm) state ppid … utime stime: fields 14 and 15, counted after the ')' of comm.
      const close = stat.lastIndexOf(')')
      if (!stat.slice(stat.indexOf('(') + 1, close).startsWith('postgres')) continue
      const fields = stat.slice(close + 2).split(' ')
      total += (Number(fields[11]) + Number(fields[12])) * 1e6 / TICKS
    } catch {
      // Gone between the listing and the read.
    }
  }
  return total
}

/** Removes the keys a benchmark server wrote under `prefix` (SCAN, so Redis never blocks on KEYS). */
export async function removeKeys (client: Redis, prefix: string): Promise<void> {
  let cursor = '0'
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 5000)
    cursor = next
    if (keys.length > 0) await client.unlink(...keys)
  } while (cursor !== '0')
}

/** One line that says what machine the figures come from. */
export function describeMachine (): string {
  const list = cpus()
  const model = list[0]?.model.replace(/\s+/g, ' ').trim() ?? 'unknown CPU'
  const memory = (totalmem() / 2 ** 30).toFixed(1)
  return `${list.length} × ${model}, ${memory} GiB RAM, Linux ${release()}, Node ${process.version}`
}
