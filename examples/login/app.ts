// Sign in and out with server-rendered forms: the session holds who you are, a CSRF secret and
// the flash messages. Start it with `npm run example:login`; tests call buildLoginApp() directly.
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import csrfProtection from '@fastify/csrf-protection'
import flash from '@fastify/flash'
import formBody from '@fastify/formbody'
import { Redis } from 'ioredis'
import sessionPlugin, { MemoryFactory, RedisFactory, type SessionFactory } from '../../src/index.js'
import { errorPage, homePage, loginPage, sendPage, type Flash } from './pages.js'
import { checkPassword } from './users.js'

export interface LoginAppOptions {
  /** Signs the session cookie: at least 32 characters, or a list of them (the first signs). */
  secret: string | string[]
  /** Seconds of inactivity after which the session is dead (the plugin's default when unset). */
  idleTimeout?: number
  /** The session cookie's name; a `__Host-` or `__Secure-` name makes the cookie Secure always. */
  cookieName?: string
  /** Serve https with this certificate and key (PEM file paths). */
  https?: { certFile: string, keyFile: string }
  /** Keep sessions in Redis instead of memory. */
  redis?: { url: string, prefix?: string }
  /** Any other factory (wins over `redis`); memory when neither is given. */
  factory?: SessionFactory
  logger?: boolean | FastifyBaseLogger
}

type FormBody = Record<string, string | string[] | undefined> | undefined

function field (body: FormBody, name: string): string {
  const value = body?.[name]
  return typeof value === 'string' ? value : ''
}

function currentUser (request: FastifyRequest): string | undefined {
  const user: unknown = request.session.get('user')
  return typeof user === 'string' ? user : undefined
}

/** Shows pending flash messages once; a session left holding nothing else is dropped with its cookie. */
function takeFlash (request: FastifyRequest, reply: FastifyReply): Flash {
  if (!request.session.has('flash')) return {}
  const messages = reply.flash() as Flash
  request.session.delete('flash')
  if (Object.keys(request.session.data).length === 0) request.session.destroy()
  return messages
}

/** Sessions in Redis: the factory is handed a client we make, so closing it is ours to do. */
async function redisFactory (app: FastifyInstance, url: string, prefix?: string): Promise<SessionFactory> {
  const client = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1 })
  client.on('error', (err) => app.log.warn({ err }, 'redis'))
  await once(client, 'ready') // with the offline queue off, commands sent before 'ready' fail
  app.addHook('onClose', async () => {
    if (client.status !== 'end') await client.quit()
  })
  return new RedisFactory(prefix === undefined ? { client } : { client, prefix })
}

export async function buildLoginApp (options: LoginAppOptions): Promise<FastifyInstance> {
  const https = options.https === undefined
    ? null
    : { cert: readFileSync(options.https.certFile), key: readFileSync(options.https.keyFile) }
  // One instance type for http and https: the routes never touch the raw server.
  const app = (https === null
    ? Fastify({ logger: options.logger ?? false })
    : Fastify({ logger: options.logger ?? false, https })) as unknown as FastifyInstance

  const cookieName = options.cookieName ?? 'sid'
  // Browsers drop a __Host-/__Secure- cookie that is not Secure, so such a name must always be Secure.
  const securePrefix = /^__(host|secure)-/i.test(cookieName)
  const factory = options.factory ??
    (options.redis === undefined ? new MemoryFactory() : await redisFactory(app, options.redis.url, options.redis.prefix))

  await app.register(formBody)
  await app.register(sessionPlugin, {
    factory,
    secret: options.secret,
    cookie: { name: cookieName, secure: securePrefix ? true : 'auto' },
    ...(options.idleTimeout === undefined ? {} : { idleTimeout: options.idleTimeout })
  })
  await app.register(flash)
  // The CSRF secret lives in our session through get/set, the interface @fastify/secure-session has.
  await app.register(csrfProtection, { sessionPlugin: '@fastify/secure-session' })

  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error.code === 'FST_CSRF_MISSING_SECRET' || error.code === 'FST_CSRF_INVALID_TOKEN') {
      return sendPage(reply, 403, errorPage('Form expired', 'This form has expired or did not come from this site. Please go back, reload and try again.'))
    }
    const status = error.statusCode !== undefined && error.statusCode >= 400 ? error.statusCode : 500
    // A custom error handler replaces Fastify's logging: server faults (a store outage too) are logged here.
    if (status >= 500) request.log.error({ err: error }, 'request failed')
    if (error.code === 'FST_SESSION_STORE_UNAVAILABLE') {
      return sendPage(reply, 503, errorPage('Try again soon', 'Sessions are unavailable right now. Please try again in a moment.'))
    }
    return sendPage(reply, status, errorPage('Something went wrong', `The request failed (${status}).`))
  })
  app.setNotFoundHandler((_request, reply) => sendPage(reply, 404, errorPage('Not found', 'There is no page here.')))

  app.get('/favicon.ico', { config: { session: false } }, (_request, reply) => reply.code(204).send())

  app.get('/', (request, reply) => {
    const user = currentUser(request)
    const messages = takeFlash(request, reply)
    const token = user === undefined ? undefined : reply.generateCsrf()
    return sendPage(reply, 200, homePage(user, messages, token))
  })

  // The form page starts an anonymous session: its CSRF secret must live somewhere before sign-in.
  app.get('/login', (request, reply) => {
    if (currentUser(request) !== undefined) return reply.redirect('/', 303)
    return sendPage(reply, 200, loginPage(reply.generateCsrf()))
  })

  app.post<{ Body: FormBody }>('/login', { preHandler: app.csrfProtection }, (request, reply) => {
    const username = field(request.body, 'username').trim()
    if (!checkPassword(username, field(request.body, 'password'))) {
      return sendPage(reply, 401, loginPage(reply.generateCsrf(), username, 'Wrong user name or password.'))
    }
    // A new id at sign-in: whoever knew the anonymous id (fixation) learns nothing about this one.
    // regenerate() empties the session too, its CSRF secret included: the next form gets a token
    // the anonymous session never saw.
    request.session.regenerate()
    request.session.set('user', username)
    request.flash('info', `Welcome, ${username}.`)
    return reply.redirect('/', 303)
  })

  // Signing out of nothing changes nothing, so it needs no token; a real sign-out does.
  app.post('/logout', {
    preHandler (request, reply, done) {
      if (currentUser(request) === undefined) return done()
      app.csrfProtection(request, reply, done)
    }
  }, (request, reply) => {
    if (currentUser(request) !== undefined) {
      request.session.destroy()
      // Data set after destroy() starts a new session: an anonymous one that carries only this message.
      request.flash('info', 'You have signed out.')
    }
    return reply.redirect('/', 303)
  })

  return app
}
