// The seed's example: "Visited N times", on the in-memory factory.
// Run it with `npm start`, then: curl -c jar -b jar http://127.0.0.1:3000/
import { randomBytes } from 'node:crypto'
import { pathToFileURL } from 'node:url'
import Fastify, { type FastifyInstance } from 'fastify'
import sessionPlugin, { MemoryFactory } from '../src/index.js'

declare module '../src/index.js' {
  interface SessionData {
    counter: number
  }
}

export async function buildCounterApp (secret: string, logger: boolean | object = false): Promise<FastifyInstance> {
  const app = Fastify({ logger })
  await app.register(sessionPlugin, { factory: new MemoryFactory(), secret })

  app.get('/', async (request) => {
    const visits = request.session.get('counter', 0) + 1
    request.session.set('counter', visits)
    return `Visited ${visits} times\n`
  })
  return app
}

async function main (): Promise<void> {
  let secret = process.env.SESSION_SECRET
  const generated = secret === undefined || secret === ''
  if (generated) secret = randomBytes(32).toString('base64url')
  const app = await buildCounterApp(secret as string, true)
  if (generated) {
    app.log.warn('SESSION_SECRET is not set: using a random secret, so sessions will not survive a restart')
  }
  await app.listen({ port: Number(process.env.PORT ?? 3000), host: process.env.HOST ?? '127.0.0.1' })
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main()
}
