import { createHmac } from 'node:crypto'

// Shorter strings turn up in logs by chance ("true", "GET"); ids and tokens are far longer.
const MIN_SECRET_LENGTH = 12

/**
 * A Fastify logger at `trace` that keeps every line, and the secrets (session ids, cookie
 * values, session values) that must never appear in one.
 */
export class LogTrap {
  readonly lines: string[] = []
  readonly #secrets = new Set<string>()

  /** Pass as `Fastify({ logger: trap.logger })`. */
  get logger (): { level: string, stream: { write: (line: string) => void } } {
    return { level: 'trace', stream: { write: (line: string) => { this.lines.push(line) } } }
  }

  /** Remembers strings that must not be logged, as written raw and as JSON escapes them. */
  remember (...values: unknown[]): void {
    for (const value of values) {
      if (typeof value === 'string') {
        if (value.length >= MIN_SECRET_LENGTH) {
          this.#secrets.add(value)
          this.#secrets.add(JSON.stringify(value).slice(1, -1))
        }
      } else if (value !== null && typeof value === 'object') {
        for (const [key, inner] of Object.entries(value)) this.remember(key, inner)
      }
    }
  }

  /** Remembers a signed cookie value: the value, its URI-encoded form, and the id inside. */
  rememberCookie (value: string): void {
    const dot = value.lastIndexOf('.')
    this.remember(value, encodeURIComponent(value), dot > 0 ? value.slice(0, dot) : value)
  }

  get secretCount (): number {
    return this.#secrets.size
  }

  /** The remembered secrets that some log line contains (none, or the test fails). */
  leaks (): string[] {
    const all = this.lines.join('\n')
    return [...this.#secrets].filter((secret) => all.includes(secret))
  }

  /** Log lines at error level (50) or above. */
  errors (): string[] {
    return this.lines.filter((line) => (JSON.parse(line) as { level: number }).level >= 50)
  }
}

/** Signs an id the way the plugin does (HMAC-SHA256, base64 without padding), without the plugin. */
export function signId (id: string, secret: string): string {
  return `${id}.${createHmac('sha256', secret).update(id).digest('base64').replace(/=+$/, '')}`
}

/** The session cookie's value in a response's Set-Cookie lines: undefined if absent, '' if cleared. */
export function cookieValueIn (setCookie: string | string[] | undefined, name = 'sid'): string | undefined {
  const lines = setCookie === undefined ? [] : Array.isArray(setCookie) ? setCookie : [setCookie]
  let found: string | undefined
  for (const line of lines) {
    if (line.startsWith(`${name}=`)) {
      if (found !== undefined) throw new Error(`two Set-Cookie lines for ${name}`)
      found = decodeURIComponent(line.slice(name.length + 1, line.indexOf(';') === -1 ? undefined : line.indexOf(';')))
    }
  }
  return found
}
