// Real PostgreSQL for the tests: the shared server at 127.0.0.1:5432 (each test file in tables of
// its own, dropped at the end), or a throwaway cluster (initdb + pg_ctl) that a test starts,
// stops and removes itself. No mocks.
import { execFile, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, readdirSync } from 'node:fs'
import { chown, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import pg from 'pg'
import { freePort } from './redis.js'

export const PG_HOST = '127.0.0.1'
export const PG_PORT = 5432
const CI = process.env.CI === 'true'
const execFileAsync = promisify(execFile)

function unavailable (reason: string): string {
  if (CI) throw new Error(`${reason}; CI=true requires it, so the run fails`)
  return `${reason}; skipped (under CI=true this fails the run)`
}

/** The database the shared server's tests use: `test` where it exists, else `postgres`. */
let database = 'test'

/** A pool on the shared server; idle-client errors (a restart) surface in the next query instead. */
export function sharedPool (config: pg.PoolConfig = {}): pg.Pool {
  const pool = new pg.Pool({ host: PG_HOST, port: PG_PORT, user: 'postgres', database, connectionTimeoutMillis: 5_000, ...config })
  pool.on('error', () => {})
  return pool
}

/** Null when PostgreSQL at 127.0.0.1:5432 answers (database `test` or `postgres`); otherwise why its tests are skipped. Throws under CI=true. */
export async function sharedPostgresSkipReason (): Promise<string | null> {
  let lastError: unknown
  for (const name of ['test', 'postgres']) {
    database = name
    const pool = sharedPool({ max: 1, connectionTimeoutMillis: 2_000 })
    try {
      await pool.query('SELECT 1')
      return null
    } catch (error) {
      lastError = error
    } finally {
      await pool.end()
    }
  }
  return unavailable(`PostgreSQL is unreachable at ${PG_HOST}:${PG_PORT} as user postgres, database test or postgres (${(lastError as Error).message})`)
}

/** A table name (or schema name) no other test run uses. */
export function uniqueName (label: string): string {
  return `fsf_${label}_${randomBytes(6).toString('hex')}`
}

/** The row count of a table. */
export async function countRows (pool: pg.Pool, table: string, where = 'true', values: unknown[] = []): Promise<number> {
  const { rows } = await pool.query(`SELECT count(*)::int AS n FROM ${table} WHERE ${where}`, values)
  return rows[0].n
}

/** The directory of PostgreSQL's server binaries (initdb, pg_ctl), or null. */
function binDir (): string | null {
  const root = '/usr/lib/postgresql'
  if (!existsSync(root)) return null
  const versions = readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'pg_ctl'))).sort((a, b) => Number(b) - Number(a))
  return versions.length === 0 ? null : join(root, versions[0] as string, 'bin')
}

/** initdb refuses to run as root: as root, the server runs as the postgres user. */
function asServerUser (): string[] {
  return process.getuid?.() === 0 ? ['runuser', '-u', 'postgres', '--'] : []
}

/** Null when a throwaway cluster can be made here; otherwise why the tests that need one are skipped. Throws under CI=true. */
export function clusterSkipReason (): string | null {
  const bin = binDir()
  if (bin === null) return unavailable('PostgreSQL server binaries (initdb, pg_ctl) are not under /usr/lib/postgresql/*/bin')
  const command = [...asServerUser(), join(bin, 'initdb'), '--version']
  const result = spawnSync(command[0] as string, command.slice(1), { stdio: 'ignore' })
  if (result.error !== undefined || result.status !== 0) return unavailable(`${command.join(' ')} cannot be run here`)
  return null
}

/** A PostgreSQL cluster of the test's own, in a temporary directory, on a free port; trust auth. */
export class PostgresCluster {
  private constructor (readonly port: number, readonly dir: string, readonly bin: string) {}

  static async start (): Promise<PostgresCluster> {
    const bin = binDir() as string
    const dir = await mkdtemp(join(tmpdir(), 'fsf-pg-'))
    const cluster = new PostgresCluster(await freePort(), dir, bin)
    try {
      if (process.getuid?.() === 0) {
        const uid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim())
        const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim())
        await chown(dir, uid, gid)
      }
      await cluster.#run('initdb', ['-D', cluster.data, '-A', 'trust', '-U', 'postgres', '--no-sync'])
      await cluster.restart()
      return cluster
    } catch (error) {
      await rm(dir, { recursive: true, force: true })
      throw error
    }
  }

  get data (): string {
    return join(this.dir, 'data')
  }

  /** A pool on this cluster, as an app would make it: it fails fast while the server is away. */
  pool (config: pg.PoolConfig = {}): pg.Pool {
    const pool = new pg.Pool({ host: PG_HOST, port: this.port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 1_000, ...config })
    pool.on('error', () => {})
    return pool
  }

  /** Runs a server binary (as the postgres user when we are root), without blocking the event loop. */
  async #run (tool: string, args: string[]): Promise<void> {
    const command = [...asServerUser(), join(this.bin, tool), ...args]
    try {
      await execFileAsync(command[0] as string, command.slice(1), { timeout: 60_000 })
    } catch (error) {
      const { stdout = '', stderr = '' } = error as { stdout?: string, stderr?: string }
      throw new Error(`${tool} failed: ${(error as Error).message}${stdout}${stderr}`)
    }
  }

  /** Starts the server (again) on its port; returns once it accepts connections. */
  async restart (): Promise<void> {
    const options = `-p ${this.port} -k ${this.dir} -c listen_addresses=${PG_HOST} -c fsync=off`
    await this.#run('pg_ctl', ['-D', this.data, '-o', options, '-l', join(this.dir, 'log'), '-w', '-t', '60', 'start'])
  }

  /** Stops the server at once, as a crash would (`-m immediate`): connections are cut. */
  async kill (): Promise<void> {
    await this.#run('pg_ctl', ['-D', this.data, '-m', 'immediate', '-w', 'stop'])
  }

  /** Stops the server if it runs, and removes its directory. */
  async stop (): Promise<void> {
    try {
      await this.#run('pg_ctl', ['-D', this.data, '-m', 'immediate', '-w', 'stop'])
    } catch {
      // Already stopped.
    }
    await rm(this.dir, { recursive: true, force: true })
  }
}
