// The session data typed from the `schema` option: the schema is written once, and
// `request.session` (and `app.sessions`) get its type; a key it does not declare fails to compile.
import Fastify from 'fastify'
import { Type, type Static } from 'typebox'
import sessionPlugin, { MemoryFactory, Session, type DataError, type Migrate } from 'fastify-session-factory'
import { expectType } from '../expect.js'

const schema = Type.Object({
  user: Type.Optional(Type.String()),
  visits: Type.Optional(Type.Integer()),
  cart: Type.Optional(Type.Array(Type.String()))
}, { additionalProperties: false })

declare module 'fastify-session-factory' {
  interface SessionTypes {
    data: Static<typeof schema>
  }
}

const migrate: Migrate = (data, errors) => {
  expectType<Record<string, unknown>>()(data)
  expectType<DataError[]>()(errors)
  return typeof data.name === 'string' ? { user: data.name } : null
}

// docs/session-schema.md's form: a renamed key, the rest kept.
export const renamed: Migrate = ({ user, ...rest }) => typeof user === 'string' ? { ...rest, userId: user } : null

const app = Fastify()
app.register(sessionPlugin, { factory: new MemoryFactory(), secret: 'a-secret-of-at-least-thirty-two-characters', schema, migrate })
// @ts-expect-error migrate answers data or null
app.register(sessionPlugin, { factory: new MemoryFactory(), secret: 'a-secret-of-at-least-thirty-two-characters', schema, migrate: () => 'upgraded' })

app.get('/', async (request) => {
  expectType<string | undefined>()(request.session.get('user'))
  expectType<number>()(request.session.get('visits', 0))
  expectType<string[] | undefined>()(request.session.cart)
  request.session.set('visits', request.session.get('visits', 0) + 1)
  // @ts-expect-error a misspelled key: the schema has no `usr`
  request.session.get('usr')
  // @ts-expect-error a misspelled key, set
  request.session.set('vists', 1)
  // @ts-expect-error a misspelled key, as a property
  request.session.carts = []
  // @ts-expect-error visits is an integer
  request.session.set('visits', 'many')
  return 'ok'
})

export async function outsideARoute (cookie: string): Promise<void> {
  const session = await app.sessions.load(cookie)
  expectType<string | undefined>()(session?.get('user'))
  // @ts-expect-error a misspelled key outside a route too
  session?.get('usr')
}

// A Session built by hand keeps its own type argument.
expectType<number | undefined>()(new Session<{ n: number }>().get('n'))
