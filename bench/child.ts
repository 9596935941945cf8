import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import type { ServerConfig } from './apps.js'
import type { ServerKind } from './scenarios.js'
import type { Command, Report } from './server.js'

const SERVER_SOURCE = fileURLToPath(new URL('./server.ts', import.meta.url))
/** server.ts and src/ compiled by `tsc -p bench/tsconfig.json` (see buildServers). */
const SERVER_BUILT = fileURLToPath(new URL('./.build/bench/server.js', import.meta.url))
const BENCH_TSCONFIG = fileURLToPath(new URL('./tsconfig.json', import.meta.url))
const START_TIMEOUT_MS = 60_000
const EXIT_TIMEOUT_MS = 10_000

interface Waiter {
  resolve (report: Report): void
  reject (error: Error): void
}

/** Our server failed to start because a factory it needs is not exported yet. */
export class ServerNotBuilt extends Error {}

export interface StartOptions {
  /** Write a CPU profile of each measured window here. */
  profileDir?: string
  /** Our side's entry module (default src/index.ts); lets two versions of ours run against each other. */
  oursModule?: string
  /**
   * Run the compiled server (plain node, as production runs JavaScript) rather than the source
   * under tsx, whose loader costs every server ~35 MB of RSS. Copies of our source given with
   * --ours/--against are TypeScript, so such runs put every server under tsx alike.
   */
  compiled?: boolean
}

/** Compiles bench/ and src/ into bench/.build for the servers; resolves once tsc is done. */
export async function buildServers (): Promise<void> {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
  const child = fork(tsc, ['-p', BENCH_TSCONFIG], { stdio: ['ignore', 2, 2, 'ipc'] })
  const [code] = await once(child, 'exit') as [number | null]
  if (code !== 0) throw new Error(`tsc -p bench/tsconfig.json exited ${String(code)}`)
}

/** A benchmark server running in a child process of its own, fresh for every run. */
export class ServerProcess {
  readonly #child: ChildProcess
  readonly #waiting = new Map<Report['type'], Waiter[]>()
  #exited = false
  port = 0

  private constructor (child: ChildProcess) {
    this.#child = child
    child.on('message', (report: Report) => {
      this.#waiting.get(report.type)?.shift()?.resolve(report)
    })
    child.once('exit', (code, signal) => {
      this.#exited = true
      const error = new Error(`the server exited (${signal ?? `code ${String(code)}`})`)
      for (const queue of this.#waiting.values()) {
        for (const waiter of queue.splice(0)) waiter.reject(error)
      }
    })
  }

  static async start (kind: ServerKind, config: ServerConfig, options: StartOptions = {}): Promise<ServerProcess> {
    const env: NodeJS.ProcessEnv = { ...process.env, BENCH_CONFIG: JSON.stringify(config), NODE_ENV: 'production' }
    if (options.profileDir !== undefined) env.BENCH_PROFILE_DIR = options.profileDir
    if (options.oursModule !== undefined) env.BENCH_OURS_MODULE = options.oursModule
    // stdout goes to our stderr: the bench's stdout carries only the table or the JSON.
    const child = options.compiled === true
      ? fork(SERVER_BUILT, [kind], { execArgv: [], env, stdio: ['ignore', 2, 2, 'ipc'] })
      : fork(SERVER_SOURCE, [kind], { execArgv: ['--import', 'tsx'], env, stdio: ['ignore', 2, 2, 'ipc'] })
    const server = new ServerProcess(child)
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<{ type: 'timeout' }>((resolve) => {
      timer = setTimeout(() => resolve({ type: 'timeout' }), START_TIMEOUT_MS)
    })
    let first
    try {
      first = await Promise.race([server.#next('ready'), server.#next('failed'), timeout])
    } catch (error) {
      throw new Error(`${kind} did not start: ${(error as Error).message}`)
    } finally {
      clearTimeout(timer)
    }
    if (first.type === 'ready') {
      server.port = first.port
      return server
    }
    await server.stop()
    if (first.type === 'failed' && first.notBuilt) throw new ServerNotBuilt(first.message)
    if (first.type === 'failed') throw new Error(`${kind} failed to start: ${first.message}`)
    throw new Error(`${kind} did not listen within ${START_TIMEOUT_MS / 1000} s`)
  }

  #next<T extends Report['type']> (type: T): Promise<Extract<Report, { type: T }>> {
    if (this.#exited) return Promise.reject(new Error('the server has exited'))
    return new Promise((resolve, reject) => {
      const queue = this.#waiting.get(type) ?? []
      queue.push({ resolve: resolve as (report: Report) => void, reject })
      this.#waiting.set(type, queue)
    })
  }

  #send (command: Command): void {
    if (!this.#exited && this.#child.connected) this.#child.send(command)
  }

  /** The server's own CPU time (user + system, µs) and resident memory (bytes) now. */
  async mark (): Promise<{ cpuUs: number, rss: number }> {
    const reply = this.#next('mark')
    this.#send({ type: 'mark' })
    return await reply
  }

  profileStart (): void {
    this.#send({ type: 'profile-start' })
  }

  async profileStop (name: string): Promise<string> {
    const reply = this.#next('profiled')
    this.#send({ type: 'profile-stop', name })
    return (await reply).file
  }

  async stop (): Promise<void> {
    if (this.#exited) return
    const exited = once(this.#child, 'exit')
    this.#send({ type: 'exit' })
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), EXIT_TIMEOUT_MS)
    await exited
    clearTimeout(timer)
  }
}
