// What the plugin checks share: an app with the plugin on the check's factory, and readers of
// the session cookie its responses set.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import type { SessionFactory } from '../factory.js'
import sessionPlugin from '../index.js'

export function secret (): string {
  return randomBytes(32).toString('base64url')
}

/** The factory's load, save, destroy, touch and sessionsOf, without `close`: several apps share one factory, which the check closes once. */
export function viewOf (factory: SessionFactory<any>): SessionFactory<any> {
  const view: SessionFactory<any> = { capabilities: factory.capabilities, load: (id) => factory.load(id), save: (session) => factory.save(session) }
  for (const method of ['destroy', 'touch', 'sessionsOf'] as const) {
    const fn = factory[method]
    if (typeof fn === 'function') Object.assign(view, { [method]: fn.bind(factory) })
  }
  return view
}

/** The value of the response's (last) `sid` Set-Cookie, which it must have: '' when it clears the cookie. */
export function sidOf (response: LightMyRequestResponse, what: string): string {
  const cookies = response.cookies as Array<{ name: string, value: string, maxAge?: number, expires?: Date }>
  const cookie = cookies.findLast((c) => c.name === 'sid')
  assert.ok(cookie !== undefined, `${what}: the response must have a session Set-Cookie`)
  const expired = (cookie.expires?.getTime() ?? Infinity) <= Date.now() || cookie.maxAge === 0
  return expired ? '' : cookie.value
}

/** The session cookie a response sets, if any, ready for a Cookie header. */
export function cookieOf (response: LightMyRequestResponse): string | undefined {
  const cookie = response.cookies.find((c) => c.name === 'sid')
  return cookie === undefined || cookie.value === '' ? undefined : `sid=${cookie.value}`
}

/** The session cookie a successful response must set, ready for a Cookie header. */
export function mustSetCookie (response: LightMyRequestResponse, what: string): string {
  assert.equal(response.statusCode, 200, `${what}: status ${response.statusCode}`)
  const value = sidOf(response, what)
  assert.notEqual(value, '', `${what}: the response must set the session cookie, not clear it`)
  return `sid=${value}`
}

/** The session data GET / answers with this cookie. */
export async function dataOf (app: FastifyInstance, cookie: string): Promise<Record<string, unknown>> {
  const response = await app.inject({ url: '/', headers: { cookie } })
  assert.equal(response.statusCode, 200, `GET /: status ${response.statusCode}`)
  return response.json().data
}

export function post (app: FastifyInstance, url: string, payload: object, cookie?: string): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url, payload, headers: cookie === undefined ? {} : { cookie } })
}

/** An app with the plugin on `factory`: GET / reads the session, POST /set, /login and /logout change it. */
export async function buildPluginApp (factory: SessionFactory<any>, secret: string | string[]): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(sessionPlugin, { factory, secret })
  // Each answer reads the session, and says up front that no shared cache may keep it.
  app.addHook('preHandler', async (_request, reply) => { reply.header('cache-control', 'private, no-store') })
  app.get('/', async (request) => ({ data: { ...request.session.data } }))
  app.post<{ Body: Record<string, unknown> }>('/set', async (request) => {
    for (const [key, value] of Object.entries(request.body)) request.session.set(key, value)
    return { data: { ...request.session.data } }
  })
  app.post<{ Body: { user: string } }>('/login', async (request) => {
    // A login that keeps the visitor's data: the factory must move it to the new id.
    await request.session.regenerate(Object.keys(request.session))
    request.session.set('user', request.body.user)
    return { user: request.body.user }
  })
  app.post('/logout', async (request) => {
    await request.session.destroy()
    return { ok: true }
  })
  return app
}
