import type { FastifyRequest } from 'fastify'
import { Type, type Static, type TSchema } from 'typebox'
import { Compile } from 'typebox/compile'
import { DataSchema, type Migrate } from './data-schema.js'
import { InvalidOptions } from './errors.js'
import type { SessionFactory } from './factory.js'
import { generateId } from './id.js'
import { optionHints, type OptionShape } from './option-hints.js'
import { MAX_AGE_LIMIT } from './session.js'
import { capPolicy, type CapPolicy } from './session-cap.js'
import { userReader, type UserReader } from './user.js'

// RFC 6265 §4.1.1: a cookie name is an RFC 2616 token.
const TOKEN = '^[!#$%&\'*+\\-.^_`|~0-9A-Za-z]+$'
// Printable ASCII after the leading slash, without space, ';' or ','.
const PATH = '^/[\\x21-\\x2B\\x2D-\\x3A\\x3C-\\x7E]*$'
const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?'
const DOMAIN = `^\\.?${LABEL}(?:\\.${LABEL})*$`
const IDENTIFIER = '^[A-Za-z_$][A-Za-z0-9_$]*$'
// A data key, or a dotted path into the data ('passport.user'): no empty step.
const USER_PATH = '^[^.]+(?:\\.[^.]+)*$'

// What each pattern means, said in words rather than as a regular expression.
const PATTERN_MESSAGES: Record<string, string> = {
  [TOKEN]: 'must be a cookie name (an RFC 6265 token: no spaces, separators or control characters)',
  [PATH]: 'must start with "/" and hold only printable ASCII without spaces, ";" or ","',
  [DOMAIN]: 'must be a hostname (ASCII letters, digits, "-" and ".")',
  [IDENTIFIER]: 'must be a JavaScript identifier',
  [USER_PATH]: 'must be a data key, a dotted path such as "passport.user" (no empty step), or a function (data) => user id'
}

const Secret = Type.String({ minLength: 32 })

const FactorySchema = Type.Unsafe<SessionFactory<any>>(Type.Object({
  load: Type.Function([Type.String()], Type.Any()),
  save: Type.Function([Type.Any()], Type.Any()),
  destroy: Type.Optional(Type.Function([Type.String()], Type.Any())),
  touch: Type.Optional(Type.Function([Type.Any()], Type.Any())),
  close: Type.Optional(Type.Function([], Type.Any()))
}))

const CookieSchema = Type.Object({
  name: Type.Optional(Type.String({ pattern: TOKEN })),
  path: Type.Optional(Type.String({ pattern: PATH })),
  domain: Type.Optional(Type.String({ pattern: DOMAIN, maxLength: 253 })),
  httpOnly: Type.Optional(Type.Boolean()),
  secure: Type.Optional(Type.Union([Type.Boolean(), Type.Literal('auto')])),
  sameSite: Type.Optional(Type.Union([Type.Literal('lax'), Type.Literal('strict'), Type.Literal('none')])),
  partitioned: Type.Optional(Type.Boolean()),
  priority: Type.Optional(Type.Union([Type.Literal('low'), Type.Literal('medium'), Type.Literal('high')])),
  maxAge: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_AGE_LIMIT }))
}, { additionalProperties: false })

/** The plugin's options: the schema they are checked against, and the source of their type. */
export const optionsSchema = Type.Object({
  factory: FactorySchema,
  secret: Type.Union([Secret, Type.Array(Secret, { minItems: 1 })]),
  cookie: Type.Optional(CookieSchema),
  idleTimeout: Type.Optional(Type.Integer({ minimum: 1 })),
  absoluteTimeout: Type.Optional(Type.Integer({ minimum: 1 })),
  rolling: Type.Optional(Type.Boolean()),
  saveUninitialized: Type.Optional(Type.Boolean()),
  decorator: Type.Optional(Type.String({ pattern: IDENTIFIER })),
  storeTimeout: Type.Optional(Type.Integer({ minimum: 1 })),
  idGenerator: Type.Optional(Type.Function([], Type.String())),
  userKey: Type.Optional(Type.Union([
    Type.String({ pattern: USER_PATH }),
    Type.Unsafe<(data: Readonly<Record<string, any>>) => unknown>(Type.Function([Type.Any()], Type.Unknown()))
  ])),
  skip: Type.Optional(Type.Function([Type.Any()], Type.Boolean())),
  /** The session data's TypeBox schema: checked before every save and after every load. */
  schema: Type.Optional(Type.Unsafe<TSchema>(Type.Object({}))),
  /** Upgrades loaded data that fails `schema`: `(data, errors) => data | null` (null: the session is treated as expired). */
  migrate: Type.Optional(Type.Unsafe<Migrate>(Type.Function([Type.Any(), Type.Any()], Type.Any()))),
  /** How many live sessions a user keeps (needs `userKey` and a factory with a user index): a login ends the least recently seen beyond it. */
  maxSessionsPerUser: Type.Optional(Type.Integer({ minimum: 1 }))
}, { additionalProperties: false })

export type SessionPluginOptions = Static<typeof optionsSchema>
export type CookieOptions = Static<typeof CookieSchema>

/** The cookie options once defaults are applied: the keys with a default hold a value, the others may be undefined. */
export type ResolvedCookieOptions = Required<Pick<CookieOptions, 'name' | 'path' | 'httpOnly' | 'secure' | 'sameSite'>> &
  { [K in 'domain' | 'partitioned' | 'priority' | 'maxAge']-?: CookieOptions[K] | undefined }

/** The options once checked and defaulted: the schema's own keys as they are, and what registration makes of the others. */
export type ResolvedOptions = Required<Omit<SessionPluginOptions, 'factory' | 'secret' | 'cookie' | 'userKey' | 'skip' | 'schema' | 'migrate' | 'maxSessionsPerUser'>> & {
  factory: SessionFactory<any>
  secrets: string[]
  cookie: ResolvedCookieOptions
  /** The session's user in its normal form, from the `userKey` option; undefined without one. */
  userOf: UserReader | undefined
  /** Requests for which this returns true get no session work (routes the app did not declare). */
  skip: ((request: FastifyRequest) => boolean) | undefined
  /** The `schema` option, compiled (with `migrate`), or null. */
  dataSchema: DataSchema | null
  /** The `maxSessionsPerUser` option with what it reads of `userKey`, or null. */
  sessionCap: CapPolicy | null
}

export { generateId }

// The one place every default lives.
export const defaults = {
  cookie: {
    name: 'sid',
    path: '/',
    domain: undefined,
    httpOnly: true,
    secure: 'auto',
    sameSite: 'lax',
    partitioned: undefined,
    priority: undefined,
    maxAge: undefined
  },
  idleTimeout: 86_400,
  absoluteTimeout: 604_800,
  rolling: true,
  saveUninitialized: false,
  decorator: 'session',
  storeTimeout: 5_000,
  idGenerator: generateId
} as const satisfies Omit<ResolvedOptions, 'factory' | 'secrets' | 'userOf' | 'skip' | 'dataSchema' | 'sessionCap'>

const checkOptions = Compile(optionsSchema)

/** Checks options against `optionsSchema` and the rules a schema cannot say, then applies the defaults. */
export function resolveOptions (options: unknown): ResolvedOptions {
  if (!checkOptions.Check(options)) throw new InvalidOptions(problemsOf(options))
  const cookie: ResolvedCookieOptions = { ...defaults.cookie, ...options.cookie }
  checkCookieRules(cookie)
  const absoluteTimeout = options.absoluteTimeout ?? defaults.absoluteTimeout
  // A short absolute timeout given alone caps the default idle one.
  const idleTimeout = options.idleTimeout ?? Math.min(defaults.idleTimeout, absoluteTimeout)
  // Thirty minutes written in milliseconds (1_800_000) would be 20 days, past the absolute timeout.
  if (idleTimeout > absoluteTimeout) {
    throw new InvalidOptions(`/idleTimeout (${idleTimeout}) must not exceed /absoluteTimeout (${absoluteTimeout}): both are in seconds, not milliseconds`)
  }
  if (options.migrate !== undefined && options.schema === undefined) throw new InvalidOptions('/migrate needs /schema: it upgrades data that fails the schema')
  return {
    factory: options.factory,
    secrets: typeof options.secret === 'string' ? [options.secret] : [...options.secret],
    cookie,
    idleTimeout,
    absoluteTimeout,
    rolling: options.rolling ?? defaults.rolling,
    saveUninitialized: options.saveUninitialized ?? defaults.saveUninitialized,
    decorator: options.decorator ?? defaults.decorator,
    storeTimeout: options.storeTimeout ?? defaults.storeTimeout,
    idGenerator: options.idGenerator ?? defaults.idGenerator,
    userOf: options.userKey === undefined ? undefined : userReader(options.userKey),
    skip: options.skip as ResolvedOptions['skip'],
    dataSchema: options.schema === undefined ? null : new DataSchema(options.schema, options.migrate),
    sessionCap: capPolicy(options.maxSessionsPerUser, options.userKey, options.factory)
  }
}

const OPTION_SHAPE: OptionShape = {
  keys: Object.keys(optionsSchema.properties),
  cookieKeys: Object.keys(CookieSchema.properties),
  cookieChoices: choicesOf(CookieSchema.properties)
}

/** For each property the schema gives as a union of literals (and booleans), the values it takes. */
function choicesOf (properties: Record<string, unknown>): Record<string, unknown[]> {
  const choices: Record<string, unknown[]> = {}
  for (const [key, schema] of Object.entries(properties)) {
    const branches = (schema as { anyOf?: Array<{ const?: unknown }> }).anyOf
    if (branches === undefined) continue
    // A branch that is no literal is a boolean: the only other kind the cookie schema's unions have.
    choices[key] = branches.flatMap((branch) => 'const' in branch ? [branch.const] : [true, false])
  }
  return choices
}

/** Every offending path, once: our own words where we have them, the schema's elsewhere. */
function problemsOf (options: unknown): string {
  const hints = typeof options === 'object' && options !== null && !Array.isArray(options)
    ? optionHints(options as Record<string, unknown>, OPTION_SHAPE)
    : new Map<string, string>()
  // A hinted path covers what lies below it, and its parents but the root: a union's other
  // branch ("/secret must be string" beside a short "/secret/1") says nothing more.
  const hinted = (path: string): boolean => [...hints.keys()].some((hint) =>
    path === hint || path.startsWith(`${hint}/`) || (path !== '' && hint.startsWith(`${path}/`)))
  const problems = new Set<string>([...hints].map(([path, message]) => `${path} ${message}`))
  for (const error of checkOptions.Errors(options)) {
    // Each unknown key has a hint of its own, so the parent's "additional properties" says nothing more.
    if (error.keyword === 'additionalProperties') continue
    if (error.keyword === 'required') {
      const missing = (error.params as { requiredProperties: string[] }).requiredProperties
      for (const key of missing) {
        if (!hinted(`${error.instancePath}/${key}`)) problems.add(`${error.instancePath}/${key} is required`)
      }
    } else if (!hinted(error.instancePath)) {
      const pattern = error.keyword === 'pattern' ? (error.params as { pattern: string }).pattern : ''
      problems.add(`${error.instancePath || '/'} ${PATTERN_MESSAGES[pattern] ?? error.message}`)
    }
  }
  return [...problems].join('; ')
}

// Browsers drop cookies that break these rules without a word, so we refuse them up front.
function checkCookieRules (cookie: ResolvedCookieOptions): void {
  const problems: string[] = []
  const name = cookie.name.toLowerCase()
  if (name.startsWith('__host-')) {
    if (cookie.secure !== true) problems.push('/cookie/secure must be true for a __Host- cookie')
    if (cookie.domain !== undefined) problems.push('/cookie/domain must be unset for a __Host- cookie')
    if (cookie.path !== '/') problems.push('/cookie/path must be "/" for a __Host- cookie')
  } else if (name.startsWith('__secure-') && cookie.secure !== true) {
    problems.push('/cookie/secure must be true for a __Secure- cookie')
  }
  if (cookie.sameSite === 'none' && cookie.secure === false) {
    problems.push('/cookie/secure must not be false with sameSite "none"')
  }
  if (cookie.partitioned === true && cookie.secure === false) {
    problems.push('/cookie/secure must not be false for a partitioned cookie')
  }
  if (problems.length > 0) throw new InvalidOptions(problems.join('; '))
}
