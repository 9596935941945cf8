// A test server in a child process (node + tsx): a crash there (an uncaught exception) ends the
// child and fails the test that sees it, instead of killing the test runner.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { request as httpRequest } from 'node:http'
import { fileURLToPath } from 'node:url'
import type { HttpResponse } from './http.js'

const repo = fileURLToPath(new URL('../..', import.meta.url))

export class ChildServer {
  #stderr = ''

  private constructor (readonly child: ChildProcess, readonly port: number) {
    child.stderr?.on('data', (chunk: Buffer) => { this.#stderr += chunk.toString() })
  }

  /**
   * Starts `script` (a path from the repository root) with `env` added to this process's
   * environment, without tap's coverage collection: tsx compiles src/ apart from tap's loader,
   * and its V8 ranges, merged with tap's, mark covered lines as missed. Resolves once it printed
   * `listening <port>`.
   */
  static async start (script: string, env: Record<string, string> = {}, timeoutMs = 30_000): Promise<ChildServer> {
    const child = spawn(process.execPath, ['--import', 'tsx', script], {
      cwd: repo,
      env: { ...withoutCoverage(process.env), ...env },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let output = ''
    child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL')
        reject(new Error(`${script} did not start in ${timeoutMs} ms: ${output.slice(-2000)}`))
      }, timeoutMs)
      let stdout = ''
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString()
        const match = /listening (\d+)/.exec(stdout)
        if (match === null) return
        clearTimeout(timer)
        resolve(Number(match[1]))
      })
      child.once('exit', (code, signal) => {
        clearTimeout(timer)
        reject(new Error(`${script} exited (${code ?? signal}) before listening: ${output.slice(-2000)}`))
      })
    })
    const server = new ChildServer(child, port)
    server.#stderr = output
    return server
  }

  /** Everything the child wrote to stderr so far. */
  get stderr (): string {
    return this.#stderr
  }

  /** The child has neither exited nor been killed. */
  get alive (): boolean {
    return this.child.exitCode === null && this.child.signalCode === null
  }

  /** One request on a connection of its own; rejects after `timeoutMs` rather than hang. */
  request (method: string, path: string, options: { cookie?: string | undefined, body?: unknown } = {}, timeoutMs = 5_000): Promise<HttpResponse> {
    const headers: Record<string, string> = {}
    if (options.cookie !== undefined) headers.cookie = options.cookie
    const body = options.body === undefined ? undefined : JSON.stringify(options.body)
    if (body !== undefined) {
      headers['content-type'] = 'application/json'
      headers['content-length'] = String(Buffer.byteLength(body))
    }
    return new Promise((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: this.port, method, path, agent: false, headers }, (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => { text += chunk })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }))
        res.on('error', reject)
      })
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${path}: no answer in ${timeoutMs} ms`)))
      req.on('error', reject)
      req.end(body)
    })
  }

  /** SIGTERM, then SIGKILL if it has not exited within 5 s; resolves once it is gone. */
  async stop (): Promise<void> {
    if (!this.alive) return
    const exited = once(this.child, 'exit')
    this.child.kill('SIGTERM')
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000)
    await exited
    clearTimeout(timer)
  }
}

/**
 * The environment with tap's coverage turned off: tap's process tracking wraps spawn() and puts
 * itself back into any child, so coverage is switched off by the variable it reads.
 */
function withoutCoverage (env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...env, _TAPJS_PROCESSINFO_COVERAGE_: '0' }
}
