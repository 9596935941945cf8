// Claims the docs make that no other test pins down, each built as the docs write it:
// - docs/passport.md, docs/plugins.md: with @fastify/passport, the CSRF check goes first in the
//   login route's preValidation; after authenticate() (or in preHandler) a login goes through
//   without a token, because authenticate() answers from its hook.
// - docs/migration.md: @fastify/session left installed declares `request.session` too; the two
//   declarations clash, and skipLibCheck hides the clash, leaving one of the two types.
// - docs/session.md: a Date comes back as its ISO string; a Map or a class instance fails the save.
// - docs/session.md: the lifetime options({ maxAge }) gives is no data key.
// - README, docs/options.md: @fastify/cookie registered after the session plugin fails.
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifyCsrf from '@fastify/csrf-protection'
import fastifyFormbody from '@fastify/formbody'
import fastifyPassport from '@fastify/passport'
import { Strategy as LocalStrategy } from 'passport-local'
import t from 'tap'
import ts from 'typescript'
import sessionPlugin, { MemoryFactory } from '../src/index.js'
import { SECRET, sessionCookie } from './helpers/app.js'

// The type checks compile the package's declarations: a while on a loaded machine.
t.setTimeout(240_000)

const ROOT = fileURLToPath(new URL('..', import.meta.url))

interface User { id: string, name: string }
const ADA: User = { id: '1', name: 'ada' }

type Order = 'csrf first' | 'csrf after authenticate' | 'csrf in preHandler'

/** docs/passport.md's login route with @fastify/csrf-protection, in the order given. */
async function buildLoginApp (order: Order): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(fastifyFormbody)
  await app.register(sessionPlugin, { factory: new MemoryFactory(), secret: SECRET })
  await app.register(fastifyCsrf, { sessionPlugin: '@fastify/secure-session' })
  const passport = new fastifyPassport.Authenticator()
  await app.register(passport.initialize())
  await app.register(passport.secureSession())
  passport.use('local', new LocalStrategy((username, password, done) => {
    done(null, username === ADA.name && password === 'lovelace' ? ADA : false)
  }))
  passport.registerUserSerializer(async (user: User) => user.id)
  passport.registerUserDeserializer(async (id: string) => id === ADA.id ? ADA : null)

  app.get('/login', async (_request, reply) => ({ csrf: reply.generateCsrf() }))
  const authenticate = passport.authenticate('local', { successRedirect: '/account', authInfo: false })
  if (order === 'csrf first') {
    app.post('/login', { preValidation: [app.csrfProtection, authenticate] }, () => {})
  } else if (order === 'csrf after authenticate') {
    app.post('/login', { preValidation: [authenticate, app.csrfProtection] }, () => {})
  } else {
    app.post('/login', { preValidation: authenticate, preHandler: app.csrfProtection }, () => {})
  }
  app.get('/account', async (request, reply) => request.isAuthenticated() ? { user: request.user } : reply.code(401).send())
  return app
}

/** A browser in miniature: keeps the session cookie, posts forms as a login page does. */
class Browser {
  cookie: string | undefined
  constructor (readonly app: FastifyInstance) {}

  async request (method: 'GET' | 'POST', url: string, form?: Record<string, string>): Promise<LightMyRequestResponse> {
    const headers: Record<string, string> = {}
    if (this.cookie !== undefined) headers.cookie = this.cookie
    if (form !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded'
    const response = await this.app.inject({ method, url, headers, ...(form === undefined ? {} : { payload: new URLSearchParams(form).toString() }) })
    const cookie = response.cookies.find((c) => c.name === 'sid')
    if (cookie !== undefined) this.cookie = cookie.value === '' ? undefined : sessionCookie(response)
    return response
  }
}

t.test('docs/passport.md: with the CSRF check first in preValidation, a login without a token is a 403; with one it signs in', async (t) => {
  const app = await buildLoginApp('csrf first')
  t.teardown(() => app.close())

  const browser = new Browser(app)
  const { csrf } = (await browser.request('GET', '/login')).json()
  t.ok(browser.cookie, 'the login form started a session for its CSRF secret')

  const forged = await browser.request('POST', '/login', { username: 'ada', password: 'lovelace' })
  t.equal(forged.statusCode, 403, 'no token: refused before passport looks at the password')
  t.equal(forged.json().code, 'FST_CSRF_INVALID_TOKEN')
  t.equal((await browser.request('GET', '/account')).statusCode, 401, 'and not signed in')
  const wrong = await browser.request('POST', '/login', { username: 'ada', password: 'lovelace', _csrf: 'forged' })
  t.equal(wrong.statusCode, 403, 'a forged token: the same')

  const stranger = new Browser(app)
  const noSecret = await stranger.request('POST', '/login', { username: 'ada', password: 'lovelace', _csrf: csrf })
  t.equal(noSecret.statusCode, 403, 'a token from another browser\'s session (a cross-site login): refused')

  const login = await browser.request('POST', '/login', { username: 'ada', password: 'lovelace', _csrf: csrf })
  t.equal(login.statusCode, 302, 'with the token: passport signs in')
  t.equal(login.headers.location, '/account')
  t.same((await browser.request('GET', '/account')).json(), { user: ADA })
})

for (const order of ['csrf after authenticate', 'csrf in preHandler'] as const) {
  t.test(`docs/passport.md: why the order matters: with the ${order.replace('csrf', 'CSRF check')}, a login without a token goes through`, async (t) => {
    const app = await buildLoginApp(order)
    t.teardown(() => app.close())
    const browser = new Browser(app)
    await browser.request('GET', '/login')
    const login = await browser.request('POST', '/login', { username: 'ada', password: 'lovelace' })
    t.equal(login.statusCode, 302, 'authenticate() answered from its hook: the CSRF check never ran')
    t.same((await browser.request('GET', '/account')).json(), { user: ADA }, 'signed in without a token')
  })
}

t.test('docs/migration.md: @fastify/session left installed clashes with our request.session, and skipLibCheck hides it', async (t) => {
  // Our declarations as they ship (dist/*.d.ts), so that skipLibCheck applies to them as it does
  // in a user's project.
  const dir = join(ROOT, '.tap', `docs-claims-${process.pid}`)
  await mkdir(dir, { recursive: true })
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const config = ts.readConfigFile(join(ROOT, 'tsconfig.json'), (path) => ts.sys.readFile(path))
  const { options } = ts.parseJsonConfigFileContent(config.config, ts.sys, ROOT)
  const dist = join(dir, 'dist')
  const build = ts.createProgram([join(ROOT, 'src', 'index.ts')], {
    ...options, rootDir: join(ROOT, 'src'), outDir: dist, declaration: true, emitDeclarationOnly: true, sourceMap: false, declarationMap: false, incremental: false
  })
  t.equal(build.emit().emitSkipped, false, 'our declarations were emitted')

  // A user's file, after moving to ours with @fastify/session still in package.json.
  const consumer = join(dir, 'app.ts')
  await writeFile(consumer, `import '@fastify/session'
import type { FastifyRequest } from 'fastify'
import './dist/index.js'
export function handler (request: FastifyRequest): void {
  const session = request.session
  session.get('user')
}
`)
  let previous: ts.Program | undefined
  const check = (skipLibCheck: boolean): { errors: string[], sessionType: string } => {
    const program = previous = ts.createProgram({ rootNames: [consumer], options: { ...options, skipLibCheck, noEmit: true, incremental: false }, oldProgram: previous })
    const errors = ts.getPreEmitDiagnostics(program).map((d) => `${d.file?.fileName.endsWith('.d.ts') === true ? 'd.ts' : 'app.ts'} TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`)
    const source = program.getSourceFile(consumer) as ts.SourceFile
    let sessionType = ''
    const visit = (node: ts.Node): void => {
      if (ts.isVariableDeclaration(node) && node.name.getText(source) === 'session') {
        sessionType = program.getTypeChecker().typeToString(program.getTypeChecker().getTypeAtLocation(node.name))
      }
      ts.forEachChild(node, visit)
    }
    visit(source)
    return { errors, sessionType }
  }

  const strict = check(false)
  // The two declarations of request.session meet: TS2717 (or, with our generic Session, TS2315) in a .d.ts.
  const clash = strict.errors.some((error) => /^d\.ts TS(2717|2315)\b/.test(error))
  t.ok(clash, `without skipLibCheck the two declarations clash${clash ? '' : `:\n${strict.errors.join('\n')}`}`)
  const skipping = check(true)
  t.notOk(skipping.errors.some((error) => error.startsWith('d.ts')), 'with skipLibCheck (our tsconfig\'s, and most projects\') the clash is not reported')
  t.match(skipping.sessionType, /FastifySessionObject/, 'request.session has @fastify/session\'s type, not ours')
  t.same(skipping.errors, ['app.ts TS2345: Argument of type \'"user"\' is not assignable to parameter of type \'"cookie"\'.'],
    'what the user sees instead: their own get() call is wrong')
})

t.test('docs/session.md: a Date comes back as its ISO string; a Map or a class instance fails the save', async (t) => {
  const factory = new MemoryFactory()
  const app = Fastify()
  await app.register(sessionPlugin, { factory, secret: SECRET })
  class Cart { items = ['book'] }
  const values: Record<string, () => unknown> = {
    date: () => new Date('2025-01-02T03:04:05.678Z'),
    map: () => new Map([['a', 1]]),
    instance: () => new Cart()
  }
  app.post<{ Params: { kind: string } }>('/store/:kind', async (request) => {
    request.session.set('value', (values[request.params.kind] as () => unknown)())
    return 'ok'
  })
  app.get('/value', async (request) => ({ value: request.session.get('value'), type: typeof request.session.get('value') }))
  t.teardown(() => app.close())

  const stored = await app.inject({ method: 'POST', url: '/store/date' })
  t.equal(stored.statusCode, 200)
  const cookie = sessionCookie(stored) as string
  t.same((await app.inject({ url: '/value', headers: { cookie } })).json(), { value: '2025-01-02T03:04:05.678Z', type: 'string' },
    'the next request reads the ISO string, as JSON gives it')

  for (const kind of ['map', 'instance']) {
    const failed = await app.inject({ method: 'POST', url: `/store/${kind}` })
    t.equal(failed.statusCode, 500, `a ${kind}: 500`)
    t.equal(failed.json().code, 'FST_SESSION_NOT_SERIALIZABLE')
    t.equal(failed.headers['set-cookie'], undefined, 'nothing stored, no cookie')
  }
})

t.test('docs/session.md: the lifetime options({ maxAge }) keeps is no data key', async (t) => {
  const app = Fastify()
  await app.register(sessionPlugin, { factory: new MemoryFactory(), secret: SECRET })
  app.post('/remember', async (request) => {
    request.session.set('user', 'ada')
    request.session.options({ maxAge: 3600 })
    return 'ok'
  })
  app.get('/keys', async (request) => ({
    keys: Object.keys(request.session),
    spread: { ...request.session },
    read: request.session.get('$cookieMaxAge') ?? null,
    in: '$cookieMaxAge' in request.session
  }))
  app.post('/overwrite', async (request) => {
    request.session.set('$cookieMaxAge', 60)
    return 'ok'
  })
  t.teardown(() => app.close())

  const remember = await app.inject({ method: 'POST', url: '/remember' })
  t.match(remember.headers['set-cookie'], /Max-Age=3600/)
  const cookie = sessionCookie(remember) as string
  t.same((await app.inject({ url: '/keys', headers: { cookie } })).json(), { keys: ['user'], spread: { user: 'ada' }, read: null, in: false },
    'keys, spread, get and in see the data alone')
  const overwrite = await app.inject({ method: 'POST', url: '/overwrite', headers: { cookie } })
  t.equal(overwrite.statusCode, 500)
  t.equal(overwrite.json().code, 'FST_SESSION_RESERVED_KEY', 'set(\'$cookieMaxAge\') is refused')
})

t.test('README, docs/options.md: @fastify/cookie goes before the session plugin; after it, Fastify refuses its decorators', async (t) => {
  const before = Fastify()
  await before.register(fastifyCookie)
  await before.register(sessionPlugin, { factory: new MemoryFactory(), secret: SECRET })
  await t.resolves(async () => { await before.ready() }, 'registered first: the session plugin uses it')
  await before.close()

  const after = Fastify()
  await after.register(sessionPlugin, { factory: new MemoryFactory(), secret: SECRET })
  after.register(fastifyCookie)
  await t.rejects(async () => { await after.ready() }, { code: 'FST_ERR_DEC_ALREADY_PRESENT' })
  await after.close()
})
