import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import sessionPlugin, { MemoryFactory, type SessionFactory, type SessionPluginOptions } from '../../src/index.js'

export const SECRET = 'a-test-secret-that-is-long-enough-0123456789'
export const OLD_SECRET = 'an-older-secret-that-is-long-enough-9876543210'

export type Options = Omit<SessionPluginOptions, 'factory' | 'secret'> & {
  factory?: SessionFactory<any>
  secret?: string | string[]
}

/**
 * An app with the usual routes: GET / counts visits, POST /set and /delete change keys,
 * /login regenerates, /logout destroys, /read only reads, /untouched never looks.
 */
export async function buildApp (options: Options = {}): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(sessionPlugin, { factory: new MemoryFactory(), secret: SECRET, ...options })
  app.get('/', async (request) => {
    const visits = (request.session.get('counter') ?? 0) + 1
    request.session.set('counter', visits)
    return { visits }
  })
  app.get('/read', async (request) => ({ data: request.session.data, id: request.session.id }))
  app.get('/untouched', async () => 'ok')
  app.post<{ Body: Record<string, unknown> }>('/set', async (request) => {
    for (const [key, value] of Object.entries(request.body)) request.session.set(key, value)
    return { data: request.session.data }
  })
  app.post<{ Body: string[] }>('/delete', async (request) => {
    for (const key of request.body) request.session.delete(key)
    return { data: request.session.data }
  })
  app.post<{ Body: { user: string } }>('/login', async (request) => {
    // A login that keeps the visitor's data (a cart), as passport's keepSessionInfo does.
    request.session.regenerate(Object.keys(request.session))
    request.session.set('user', request.body.user)
    return { user: request.body.user }
  })
  app.post('/logout', async (request) => {
    request.session.destroy()
    return { ok: true }
  })
  return app
}

/** The raw `name=value` pair of the response's session cookie, ready for a Cookie header. */
export function sessionCookie (response: LightMyRequestResponse, name = 'sid'): string | undefined {
  const cookie = response.cookies.find((c) => c.name === name)
  return cookie === undefined ? undefined : `${name}=${cookie.value}`
}

/** The session id inside a `sid=<id>.<signature>` cookie pair. */
export function sessionIdOf (cookie: string): string {
  return decodeURIComponent(cookie.slice(cookie.indexOf('=') + 1)).replace(/\.[^.]*$/, '')
}

/** Every Set-Cookie line of a response, as an array. */
export function setCookies (response: LightMyRequestResponse): string[] {
  const header = response.headers['set-cookie']
  if (header === undefined) return []
  return Array.isArray(header) ? header : [header]
}

/** A Set-Cookie line's attributes by name (in any order): a value, or true for a flag such as Secure. */
export function attributesOf (line: string): Record<string, string | true> {
  const attributes: Record<string, string | true> = {}
  for (const part of line.split(';').slice(1)) {
    const eq = part.indexOf('=')
    if (eq === -1) attributes[part.trim()] = true
    else attributes[part.slice(0, eq).trim()] = part.slice(eq + 1).trim()
  }
  return attributes
}

/** A browser in miniature: keeps the session cookie between requests. */
export class Client {
  cookie: string | undefined
  constructor (readonly app: FastifyInstance, readonly name = 'sid') {}

  async request (method: 'GET' | 'POST', url: string, payload?: unknown): Promise<LightMyRequestResponse> {
    const headers: Record<string, string> = {}
    if (this.cookie !== undefined) headers.cookie = this.cookie
    const response = await this.app.inject({ method, url, headers, ...(payload === undefined ? {} : { payload: payload as object }) })
    // As a browser does: the value exactly as the server wrote it, the last line for our name.
    for (const line of setCookies(response)) {
      const pair = line.split(';')[0] as string
      if (!pair.startsWith(`${this.name}=`)) continue
      this.cookie = pair === `${this.name}=` ? undefined : pair
    }
    return response
  }

  get (url: string): Promise<LightMyRequestResponse> {
    return this.request('GET', url)
  }

  post (url: string, payload: unknown = {}): Promise<LightMyRequestResponse> {
    return this.request('POST', url, payload)
  }
}
