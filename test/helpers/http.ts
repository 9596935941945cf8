import { request as httpRequest, type Agent, type IncomingHttpHeaders } from 'node:http'
import { createHook } from 'node:async_hooks'

export interface HttpResponse {
  status: number
  headers: IncomingHttpHeaders
  body: string
}

/** One request over a real socket to 127.0.0.1 (agent `false`: a connection of its own). */
export function send (port: number, agent: Agent | false, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, agent, headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { text += chunk })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** Runs `work` over `items` with at most `limit` in flight. */
export async function pool<T> (items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) await work(items[next++] as T)
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
}

const WATCHED = new Set(['Timeout', 'TCPWRAP', 'TCPSERVERWRAP', 'TCPCONNECTWRAP', 'HTTPINCOMINGMESSAGE', 'HTTPCLIENTREQUEST'])

/**
 * Counts the timers and sockets created while it watches that are still alive. Unlike
 * process.getActiveResourcesInfo(), it also sees unref'd timers (the plugin's storeTimeout ones).
 */
export class ResourceWatch {
  readonly #alive = new Map<number, string>()
  #settling = false
  readonly #hook = createHook({
    init: (asyncId, type) => { if (WATCHED.has(type) && !this.#settling) this.#alive.set(asyncId, type) },
    destroy: (asyncId) => { this.#alive.delete(asyncId) }
  })

  start (): this {
    this.#hook.enable()
    return this
  }

  stop (): void {
    this.#hook.disable()
  }

  /**
   * Waits `ms` (its own timer is not counted) and lets destroy events through: long enough for
   * Node's own short-lived timers (the Date header cache, < 1 s) to end.
   */
  async settle (ms: number): Promise<void> {
    this.#settling = true
    await new Promise((resolve) => setTimeout(resolve, ms))
    this.#settling = false
    for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve))
  }

  /** What is still alive, by type. */
  alive (): Record<string, number> {
    const counts: Record<string, number> = {}
    for (const type of this.#alive.values()) counts[type] = (counts[type] ?? 0) + 1
    return counts
  }
}

/** process.getActiveResourcesInfo() as counts by type. */
export function activeResources (): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const type of process.getActiveResourcesInfo()) counts[type] = (counts[type] ?? 0) + 1
  return counts
}
