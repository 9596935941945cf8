// The options' type is the TypeBox schema's: a wrong option is a compile error, not only a runtime one.
import Fastify from 'fastify'
import type { Static } from 'typebox'
import sessionPlugin, { MemoryFactory, optionsSchema, sessionPlugin as named, type SessionPluginOptions } from 'fastify-session-factory'
import { expectType } from '../expect.js'

const app = Fastify()
const factory = new MemoryFactory()
const secret = 'a-secret-of-at-least-thirty-two-characters'

app.register(sessionPlugin, { factory, secret })
app.register(named, { factory, secret: [secret, 'an-older-secret-still-verifying-cookies'] })
app.register(sessionPlugin, {
  factory,
  secret,
  cookie: { name: '__Host-sid', path: '/', httpOnly: true, secure: true, sameSite: 'strict', partitioned: false, priority: 'high', maxAge: 3_600 },
  idleTimeout: 1_800,
  absoluteTimeout: 86_400,
  rolling: false,
  saveUninitialized: true,
  decorator: 'adminSession',
  storeTimeout: 1_000,
  idGenerator: () => 'an-id'
})

expectType<SessionPluginOptions>()({} as Static<typeof optionsSchema>)
expectType<number | undefined>()(({} as SessionPluginOptions).idleTimeout)
expectType<'lax' | 'strict' | 'none' | undefined>()(({} as NonNullable<SessionPluginOptions['cookie']>).sameSite)
expectType<boolean | 'auto' | undefined>()(({} as NonNullable<SessionPluginOptions['cookie']>).secure)
expectType<string | string[]>()(({} as SessionPluginOptions).secret)
expectType<number | undefined>()(({} as SessionPluginOptions).maxSessionsPerUser)
app.register(sessionPlugin, { factory, secret, userKey: 'userId', maxSessionsPerUser: 3 })

// @ts-expect-error idleTimeout is a number of seconds
app.register(sessionPlugin, { factory, secret, idleTimeout: '1h' })
// @ts-expect-error sameSite is 'lax', 'strict' or 'none'
app.register(sessionPlugin, { factory, secret, cookie: { sameSite: 'bogus' } })
// @ts-expect-error secure is a boolean or 'auto'
app.register(sessionPlugin, { factory, secret, cookie: { secure: 'yes' } })
// @ts-expect-error cookie options have no `expires`: use maxAge
app.register(sessionPlugin, { factory, secret, cookie: { expires: new Date() } })
// @ts-expect-error secret is required
app.register(sessionPlugin, { factory })
// @ts-expect-error secret is a string or an array of strings
app.register(sessionPlugin, { factory, secret: Buffer.from(secret) })
// @ts-expect-error unknown options are refused
app.register(sessionPlugin, { factory, secret, store: factory })
// @ts-expect-error a factory has load and save
app.register(sessionPlugin, { factory: { load: async () => null }, secret })
// @ts-expect-error idGenerator returns a string
app.register(sessionPlugin, { factory, secret, idGenerator: () => 42 })
// @ts-expect-error rolling is a boolean
app.register(sessionPlugin, { factory, secret, rolling: 'yes' })
// @ts-expect-error maxSessionsPerUser is a number
app.register(sessionPlugin, { factory, secret, userKey: 'userId', maxSessionsPerUser: '3' })
