// Stateless sessions: no store at all, the whole session is sealed (AES-256-GCM) into the cookie.
// Run it with `npx tsx examples/stateless.ts`, then:
//   curl -c jar -b jar -X POST -H 'content-type: application/json' -d '{"user":"ada"}' http://127.0.0.1:3000/login
//   curl -b jar http://127.0.0.1:3000/me
// SESSION_KEYS is a comma-separated list of 32-byte base64 keys (`openssl rand -base64 32`), newest
// first: prepend a new key to rotate, drop the old one once every cookie has been resealed.
import { randomBytes } from 'node:crypto'
import { pathToFileURL } from 'node:url'
import Fastify, { type FastifyInstance } from 'fastify'
import sessionPlugin, { SealedCookieFactory, type SealedCookieKey } from '../src/index.js'

declare module '../src/index.js' {
  interface SessionData {
    user: string
  }
}

export interface StatelessAppOptions {
  /** Signs the cookie (>= 32 characters). */
  secret: string
  /** Seal and open the session: the first seals, all open. */
  keys: SealedCookieKey[]
  logger?: boolean | object
}

export async function buildStatelessApp ({ secret, keys, logger = false }: StatelessAppOptions): Promise<FastifyInstance> {
  const app = Fastify({ logger })
  await app.register(sessionPlugin, {
    factory: new SealedCookieFactory({ keys }),
    secret,
    // Nothing on the server can end a sealed session early, so keep its lifetime short.
    idleTimeout: 30 * 60,
    absoluteTimeout: 8 * 60 * 60
  })

  app.post<{ Body: { user: string } }>('/login', {
    schema: { body: { type: 'object', required: ['user'], properties: { user: { type: 'string', minLength: 1 } } } }
  }, async (request) => {
    request.session.regenerate()
    request.session.set('user', request.body.user)
    return { user: request.body.user }
  })

  app.get('/me', async (request, reply) => {
    const user = request.session.get('user')
    if (user === undefined) return reply.code(401).send({ error: 'not logged in' })
    return { user }
  })

  app.post('/logout', async (request) => {
    request.session.destroy()
    return { ok: true }
  })
  return app
}

/** Keys and secret from the environment, or random ones (with a warning) to try it out. */
export async function main (env: NodeJS.ProcessEnv, logger: boolean | object = true): Promise<FastifyInstance> {
  const keys = (env.SESSION_KEYS ?? '').split(',').map((key) => key.trim()).filter((key) => key !== '')
  const secret = env.SESSION_SECRET ?? ''
  const random = keys.length === 0 || secret === ''
  if (keys.length === 0) keys.push(randomBytes(32).toString('base64'))
  const app = await buildStatelessApp({ secret: secret === '' ? randomBytes(32).toString('base64url') : secret, keys, logger })
  if (random) app.log.warn('SESSION_KEYS or SESSION_SECRET is not set: using random ones, so sessions will not survive a restart')
  await app.listen({ port: Number(env.PORT), host: env.HOST })
  return app
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main({ PORT: '3000', HOST: '127.0.0.1', ...process.env })
}
