// Two instances of one app, on two ports, share their sessions through one Redis: what a
// balancer in front of several Fastify processes needs. Run it with `npx tsx examples/redis.ts`,
// then: curl -c jar -b jar http://127.0.0.1:3001/ && curl -c jar -b jar http://127.0.0.1:3002/
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { pathToFileURL } from 'node:url'
import Fastify, { type FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import sessionPlugin, { RedisFactory } from '../src/index.js'

export interface InstanceOptions {
  /** Told apart in the replies, to show which instance answered. */
  name: string
  redisUrl: string
  secret: string
  prefix?: string
}

/** One instance: its own Redis client (as a separate process would have), the shared Redis behind it. */
export async function buildInstance ({ name, redisUrl, secret, prefix }: InstanceOptions): Promise<FastifyInstance> {
  const app = Fastify({ logger: { level: 'warn' } })
  // Fail fast while Redis is away (a 503), rather than queue writes and replay them later.
  const client = new Redis(redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1 })
  client.on('error', (error) => app.log.warn({ err: error }, 'redis connection problem'))
  app.addHook('onClose', async () => {
    await client.quit()
  })
  try {
    await once(client, 'ready')
  } catch (error) {
    client.disconnect()
    throw error
  }
  await app.register(sessionPlugin, { factory: new RedisFactory({ client, prefix }), secret })

  app.get('/', async (request) => {
    const visits = request.session.get('visits', 0) + 1
    request.session.set('visits', visits)
    return { instance: name, visits }
  })
  // Each preference is its own session key: requests that set different ones never undo each other.
  app.put<{ Params: { name: string }, Body: { value: unknown } }>('/prefs/:name', async (request) => {
    request.session.set(`pref:${request.params.name}`, request.body.value)
    return { instance: name }
  })
  app.get('/session', async (request) => ({ instance: name, data: request.session.data }))
  app.post('/logout', async (request) => {
    request.session.destroy()
    return { instance: name }
  })
  return app
}

export interface Instances {
  apps: FastifyInstance[]
  urls: string[]
  close (): Promise<void>
}

/** Starts one instance per port (0 picks a free one) and returns where they listen. */
export async function startInstances (options: Omit<InstanceOptions, 'name'> & { ports: number[], host?: string }): Promise<Instances> {
  const apps: FastifyInstance[] = []
  const urls: string[] = []
  const close = async (): Promise<void> => {
    await Promise.all(apps.map((app) => app.close()))
  }
  try {
    for (const [index, port] of options.ports.entries()) {
      const app = await buildInstance({ ...options, name: `instance-${index + 1}` })
      apps.push(app)
      urls.push(await app.listen({ port, host: options.host ?? '127.0.0.1' }))
    }
  } catch (error) {
    await close()
    throw error
  }
  return { apps, urls, close }
}

/* c8 ignore start */ // the command-line entry: fixed ports and the environment, run by hand
async function main (): Promise<void> {
  let secret = process.env.SESSION_SECRET
  if (secret === undefined || secret === '') {
    secret = randomBytes(32).toString('base64url')
    console.warn('SESSION_SECRET is not set: using a random one, so sessions end when this process does')
  }
  const { urls } = await startInstances({
    redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    secret,
    ports: (process.env.PORTS ?? '3001,3002').split(',').map(Number)
  })
  console.log(`listening on ${urls.join(' and ')}`)
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main()
}
/* c8 ignore stop */
