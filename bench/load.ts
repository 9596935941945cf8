import autocannon from 'autocannon'

export interface LoadOptions {
  port: number
  path: string
  connections: number
  /** Seconds; ignored when `amount` is set. */
  duration: number
  /** Send exactly this many requests instead of running for `duration`. */
  amount?: number
  cookie?: string
}

export interface LoadResult {
  requests: number
  seconds: number
  reqPerSec: number
  p99Ms: number
  /** Connection errors, timeouts and non-2xx replies: any of them spoils the run. */
  failures: number
}

/**
 * Asks a fresh server for a session cookie (the first visit), and proves it works: the second
 * visit with it must count 2, or a "returning" run would measure new sessions.
 */
export async function obtainCookie (port: number): Promise<string> {
  const url = `http://127.0.0.1:${port}/`
  const first = await fetch(url)
  await first.text()
  const line = first.headers.getSetCookie()[0]
  if (line === undefined) throw new Error('the first visit set no cookie')
  const cookie = line.split(';', 1)[0] as string
  const second = await fetch(url, { headers: { cookie } })
  const body = await second.text()
  if (body !== 'Visited 2 times\n') throw new Error(`the cookie did not bring the session back (second visit said ${JSON.stringify(body)})`)
  return cookie
}

export async function fire (options: LoadOptions): Promise<LoadResult> {
  const result = await autocannon({
    url: `http://127.0.0.1:${options.port}${options.path}`,
    connections: options.connections,
    duration: options.duration,
    ...(options.amount === undefined ? {} : { amount: options.amount }),
    headers: options.cookie === undefined ? {} : { cookie: options.cookie }
  })
  const requests = result.requests.total
  return {
    requests,
    seconds: result.duration,
    reqPerSec: requests / result.duration,
    p99Ms: result.latency.p99,
    failures: result.errors + result.timeouts + result.non2xx
  }
}
