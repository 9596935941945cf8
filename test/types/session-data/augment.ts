// Augmenting SessionData types every `request.session` (and factory) of the app.
import Fastify from 'fastify'
import sessionPlugin, { MemoryFactory, Session } from 'fastify-session-factory'
import { expectType } from '../expect.js'

declare module 'fastify-session-factory' {
  interface SessionData {
    userId: string
    visits: number
  }
}

const app = Fastify()
app.register(sessionPlugin, { factory: new MemoryFactory(), secret: 'a-secret-of-at-least-thirty-two-characters' })

app.get('/', async (request) => {
  expectType<string | undefined>()(request.session.get('userId'))
  expectType<number>()(request.session.get('visits', 0))
  request.session.set('visits', request.session.get('visits', 0) + 1)
  request.session.set('userId', 'u-1')
  // @ts-expect-error visits is a number
  request.session.set('visits', 'many')
  // @ts-expect-error userId is a string
  request.session.set('userId', 1)
  // Keys that were not declared stay open, as SessionData keeps its index signature.
  request.session.set('scratch', { any: 'thing' })
  return 'ok'
})

export async function fromAFactory (): Promise<void> {
  const loaded = await new MemoryFactory().load('id')
  expectType<number | undefined>()(loaded?.get('visits'))
}

// Session<OtherData> still works beside the augmentation (say, for a second decorator).
const other = new Session<{ theme: string }>({ theme: 'dark' })
expectType<string | undefined>()(other.get('theme'))
// @ts-expect-error the augmented keys belong to SessionData, not to OtherData
other.get('visits')

// A session built from a few values is still the app's SessionData.
const built = new Session({ visits: 1 })
expectType<Session>()(built)
expectType<string | undefined>()(built.get('userId'))
