// What ships: build, pack, unpack the tarball into a throwaway project's node_modules next to
// links to exactly the packages it declares (dependencies and the fastify peer, taken from the
// repository's own install: no network, no reliance on what npm's cache happens to hold), then
// use it there as users do: ESM import of the ES module build, require() of the CommonJS build,
// TypeScript in an ES module project and in a CommonJS one (module node16, built and run; and
// module commonjs), every shipped declaration file checked as with skipLibCheck off, and the
// conformance kit from `fastify-session-factory/testing`.
import { spawn } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

// Building, packing and type-checking take a while on a loaded machine.
t.setTimeout(240_000)

const repo = fileURLToPath(new URL('..', import.meta.url))
const typescript = createRequire(import.meta.url).resolve('typescript')

// The children must not inherit tap's loaders and coverage collection.
const env: NodeJS.ProcessEnv = {}
for (const [key, value] of Object.entries(process.env)) {
  if (!/^(NODE_OPTIONS|NODE_V8_COVERAGE|TAP|_TAPJS)/.test(key)) env[key] = value
}

interface Result { code: number | null, stdout: string, stderr: string }

function run (command: string, args: string[], cwd: string): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk) => { stdout += chunk })
    child.stderr.on('data', (chunk) => { stderr += chunk })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

async function mustRun (command: string, args: string[], cwd: string): Promise<string> {
  const result = await run(command, args, cwd)
  if (result.code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.code}\n${result.stdout}\n${result.stderr}`)
  return result.stdout
}

const SECRET = 'a-secret-of-at-least-thirty-two-characters'

const ESM = `
import Fastify from 'fastify'
import * as lib from 'fastify-session-factory'
const app = Fastify()
await app.register(lib.default, { factory: new lib.MemoryFactory(), secret: '${SECRET}' })
app.get('/', async (request) => {
  const visits = request.session.get('visits', 0) + 1
  request.session.set('visits', visits)
  return { visits }
})
const first = await app.inject('/')
const cookie = first.headers['set-cookie'].split(';')[0]
const second = await app.inject({ url: '/', headers: { cookie } })
console.log(JSON.stringify({
  visits: second.json().visits,
  exports: Object.keys(lib),
  sameExport: lib.default === lib.sessionPlugin,
  builds: [import.meta.resolve('fastify-session-factory'), import.meta.resolve('fastify-session-factory/testing')].map((url) => url.split('/node_modules/fastify-session-factory/')[1])
}))
await app.close()
`

// The CommonJS build, required as Fastify's own plugins are: the module itself registers (Fastify
// takes its default export), and the kit's sessionCookie() works on an app it registered.
const CJS = `
const Fastify = require('fastify')
const lib = require('fastify-session-factory')
const { sessionCookie } = require('fastify-session-factory/testing')
const app = Fastify()
app.register(require('fastify-session-factory'), { factory: new lib.MemoryFactory(), secret: '${SECRET}' })
app.get('/', async (request) => {
  const visits = request.session.get('visits', 0) + 1
  request.session.set('visits', visits)
  return { visits, user: request.session.get('user') ?? null }
})
async function main () {
  const first = await app.inject('/')
  const cookie = first.headers['set-cookie'].split(';')[0]
  const second = await app.inject({ url: '/', headers: { cookie } })
  const signedIn = await app.inject({ url: '/', headers: { cookie: await sessionCookie(app, { user: 'ada' }) } })
  console.log(JSON.stringify({
    visits: second.json().visits,
    user: signedIn.json().user,
    sameExport: lib.default === lib.sessionPlugin,
    fromExpressStore: typeof lib.fromExpressStore,
    builds: [require.resolve('fastify-session-factory'), require.resolve('fastify-session-factory/testing')].map((file) => file.split('/node_modules/fastify-session-factory/')[1]),
    esmLoaded: Object.keys(require.cache).some((file) => file.includes('/dist/esm/'))
  }))
  await app.close()
}
main()
`

// A CommonJS TypeScript project (no "type" in its package.json): module node16 type-checks it
// against the CommonJS declarations, tsc builds it, and node runs what tsc wrote.
const TS_COMMONJS = `
import Fastify, { type FastifyInstance } from 'fastify'
import sessionPlugin, { MemoryFactory, Session, type SessionFactory } from 'fastify-session-factory'
import { runFactorySuite, sessionCookie, type FactoryCheck } from 'fastify-session-factory/testing'
import lib = require('fastify-session-factory')

declare module 'fastify-session-factory' {
  interface SessionData {
    visits: number
    user: string
  }
}

class MapFactory implements SessionFactory {
  readonly rows = new Map<string, string>()
  load (id: string): Session | null {
    const row = this.rows.get(id)
    return row === undefined ? null : Session.fromJSON(JSON.parse(row))
  }

  save (session: Session): string {
    this.rows.set(session.id as string, JSON.stringify(session))
    return session.id as string
  }
}
export const check: FactoryCheck = 'index-counts'
export const suite: typeof runFactorySuite = runFactorySuite
// Never called: what the types must refuse.
export function typos (app: FastifyInstance, session: Session): void {
  // @ts-expect-error idleTimeout is a number of seconds
  app.register(lib.sessionPlugin, { factory: new lib.MemoryFactory(), secret: '${SECRET}', idleTimeout: '1h' })
  // @ts-expect-error visits is a number
  session.set('visits', 'many')
}

async function main (): Promise<void> {
  const app = Fastify()
  await app.register(sessionPlugin, { factory: new MapFactory(), secret: '${SECRET}' })
  app.get('/', async (request) => {
    const visits: number = request.session.get('visits', 0) + 1
    request.session.set('visits', visits)
    return { visits, user: request.session.get('user') ?? null }
  })
  const first = await app.inject('/')
  const cookie = String(first.headers['set-cookie']).split(';')[0] as string
  const second = await app.inject({ url: '/', headers: { cookie } })
  const signedIn = await app.inject({ url: '/', headers: { cookie: await sessionCookie(app, { user: 'ada' }) } })
  console.log(JSON.stringify({
    visits: second.json().visits,
    user: signedIn.json().user,
    sameExport: lib.default === sessionPlugin,
    build: require.resolve('fastify-session-factory').split('/node_modules/fastify-session-factory/')[1]
  }))
}
main().catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
`

const KIT = `
import { test } from 'node:test'
import assert from 'node:assert/strict'
import Fastify from 'fastify'
import sessionPlugin, { MemoryFactory } from 'fastify-session-factory'
import { runFactorySuite, runPluginSuite, sessionCookie } from 'fastify-session-factory/testing'

runFactorySuite('MemoryFactory', () => new MemoryFactory(), { groups: { userIndex: false } })
runPluginSuite('MemoryFactory', () => new MemoryFactory())

test('sessionCookie() starts an inject test signed in', async () => {
  const app = Fastify()
  await app.register(sessionPlugin, { factory: new MemoryFactory(), secret: '${SECRET}', cookie: { secure: true } })
  app.get('/me', async (request) => ({ user: request.session.get('user') ?? null }))
  const cookie = await sessionCookie(app, { user: 'ada' })
  assert.deepEqual((await app.inject({ url: '/me', headers: { cookie } })).json(), { user: 'ada' })
  assert.deepEqual((await app.inject({ url: '/me', headers: { cookie: cookie + 'x' } })).json(), { user: null }, 'a tampered cookie is anonymous')
  await app.close()
})
`

const TS_ESM = `
import Fastify from 'fastify'
import sessionPlugin, { MemoryFactory, Session, errors, fromExpressStore, type SessionFactory } from 'fastify-session-factory'
import { runFactorySuite } from 'fastify-session-factory/testing'

declare module 'fastify-session-factory' {
  interface SessionData {
    visits: number
  }
}

const app = Fastify()
await app.register(sessionPlugin, { factory: new MemoryFactory(), secret: '${SECRET}', cookie: { sameSite: 'strict' } })
app.get('/', async (request) => {
  const visits: number = request.session.get('visits', 0) + 1
  request.session.set('visits', visits)
  // @ts-expect-error visits is a number
  request.session.set('visits', 'many')
  return { visits }
})
// @ts-expect-error idleTimeout is a number of seconds
await app.register(sessionPlugin, { factory: new MemoryFactory(), secret: '${SECRET}', idleTimeout: '1h' })

class MapFactory implements SessionFactory {
  readonly rows = new Map<string, string>()
  async load (id: string): Promise<Session | null> {
    const row = this.rows.get(id)
    return row === undefined ? null : Session.fromJSON(JSON.parse(row))
  }

  async save (session: Session): Promise<string> {
    this.rows.set(session.id as string, JSON.stringify(session))
    return session.id as string
  }
}
runFactorySuite('MapFactory', () => new MapFactory())
export const code: string = new errors.FST_SESSION_STORE_UNAVAILABLE().code
export const wrap = fromExpressStore
`

// The consumers' type-checks, with lib checking on for this package's declaration files alone.
// \`tsc --skipLibCheck false\` would also check all 600 declaration files of typebox, fastify and
// @types/node (four times the time here), which are theirs to keep sound, not ours. Each project
// gets every declaration file of the build its module setting resolves to, whether or not its
// imports reach them; the CommonJS project is also built (emitted) to run.
const CHECK_TYPES = `
import { readdirSync } from 'node:fs'
import ts from ${JSON.stringify(typescript)}

// The projects read the same declaration files of fastify, @types/node and typebox: each is
// parsed once, for every project that reads it in the same module format.
const parsed = new Map()
function hostFor (options) {
  const host = ts.createCompilerHost(options)
  const getSourceFile = host.getSourceFile.bind(host)
  host.getSourceFile = (name, version, ...rest) => {
    if (!name.includes('/node_modules/')) return getSourceFile(name, version, ...rest)
    const key = JSON.stringify([name, version.languageVersion, version.impliedNodeFormat])
    if (!parsed.has(key)) parsed.set(key, getSourceFile(name, version, ...rest))
    return parsed.get(key)
  }
  return host
}

function check (tsconfig, builds, emit = false) {
  const host = { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => { throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\\n')) } }
  const config = ts.getParsedCommandLineOfConfigFile(tsconfig, undefined, host)
  const shipped = builds.flatMap((build) => {
    const dist = process.cwd() + '/node_modules/fastify-session-factory/dist/' + build + '/'
    return readdirSync(dist, { recursive: true }).filter((file) => file.endsWith('.d.ts')).map((file) => dist + file)
  })
  const program = ts.createProgram({ rootNames: [...config.fileNames, ...shipped], options: config.options, host: hostFor(config.options) })
  const checked = program.getSourceFiles().filter((file) => !file.fileName.includes('/node_modules/') || file.fileName.includes('/node_modules/fastify-session-factory/'))
  const diagnostics = [
    ...config.errors,
    ...program.getOptionsDiagnostics(),
    ...program.getGlobalDiagnostics(),
    ...checked.flatMap((file) => [...program.getSyntacticDiagnostics(file), ...program.getSemanticDiagnostics(file)])
  ]
  if (emit) diagnostics.push(...program.emit(undefined, undefined, undefined, undefined, undefined).diagnostics)
  const format = { getCanonicalFileName: (name) => name, getCurrentDirectory: () => process.cwd(), getNewLine: () => '\\n' }
  return {
    errors: ts.formatDiagnostics(diagnostics, format),
    checked: checked.map((file) => file.fileName.replace(/^.*\\/node_modules\\/fastify-session-factory\\//, '').replace(process.cwd() + '/', ''))
  }
}

console.log(JSON.stringify({
  nodenext: check('tsconfig.json', ['esm']),
  node16: check('cts/tsconfig.json', ['cjs'], true),
  commonjs: check('cts/tsconfig.commonjs.json', ['cjs'])
}))
`

const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    lib: ['ES2023'],
    types: ['node'],
    strict: true,
    noEmit: true,
    skipLibCheck: false
  },
  files: ['consumer.mts']
}

const TSCONFIG_COMMONJS = {
  compilerOptions: {
    target: 'ES2022',
    module: 'Node16',
    moduleResolution: 'Node16',
    lib: ['ES2023'],
    types: ['node'],
    strict: true,
    esModuleInterop: true,
    skipLibCheck: false,
    outDir: 'out'
  },
  files: ['main.ts']
}

// The same project as TypeScript 5 set module commonjs up: node10 resolution, which reads the
// "types" field (and typesVersions for ./testing), not the exports map.
const TSCONFIG_MODULE_COMMONJS = {
  compilerOptions: { ...TSCONFIG_COMMONJS.compilerOptions, module: 'CommonJS', moduleResolution: 'Node10', ignoreDeprecations: '6.0', outDir: undefined, noEmit: true },
  files: ['main.ts']
}

t.test('the packed tarball installs and works from ESM, CommonJS, TypeScript and node:test', async (t) => {
  const work = await mkdtemp(join(tmpdir(), 'fsf-package-'))
  t.teardown(() => rm(work, { recursive: true, force: true }))

  const started = Date.now()
  const lap = (phase: string): void => { t.comment(`${phase}: ${((Date.now() - started) / 1000).toFixed(1)} s`) }
  // What `npm pack` builds; the sources' types are npm run typecheck's to check, not this test's.
  await mustRun('npm', ['run', 'build', '--', '--no-check'], repo)
  lap('built')
  const [packed] = JSON.parse(await mustRun('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], repo))
  lap('packed')
  const files: string[] = packed.files.map((file: { path: string }) => file.path)
  const strays = files.filter((file) => !/^dist\/(?:esm|cjs)\/(?:[\w/-]+\.(?:js|js\.map|d\.ts)|package\.json)$/.test(file) && !['package.json', 'README.md', 'LICENSE'].includes(file))
  t.same(strays, [], 'only dist/esm and dist/cjs (JavaScript, its source maps, declarations, the package.json that says the module format), README, LICENSE and package.json')
  const built = (build: string): string[] => files.filter((file) => file.startsWith(`dist/${build}/`)).map((file) => file.slice(`dist/${build}/`.length)).sort()
  t.same(built('cjs'), built('esm'), 'the CommonJS build has a file for each file of the ES module build')
  for (const file of ['LICENSE', 'package.json', 'dist/esm/package.json', 'dist/esm/index.js', 'dist/esm/index.d.ts', 'dist/esm/testing.js', 'dist/esm/testing.d.ts', 'dist/esm/testing/user-index.js', 'dist/esm/factories/express-store.js']) {
    t.ok(files.includes(file), `ships ${file}`)
  }

  const app = join(work, 'app')
  await mkdir(app)
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true }))
  const installed = join(app, 'node_modules', 'fastify-session-factory')
  await mkdir(installed, { recursive: true })
  await mustRun('tar', ['-xzf', join(work, packed.filename), '--strip-components=1', '-C', installed], app)
  const manifest = JSON.parse(await readFile(join(installed, 'package.json'), 'utf8'))
  const optionalPeers = Object.keys(manifest.peerDependenciesMeta ?? {})
  const needed = [
    ...Object.keys(manifest.dependencies),
    ...Object.keys(manifest.peerDependencies).filter((name) => !optionalPeers.includes(name)),
    '@types/node'
  ]
  t.same(needed.slice(0, -1).sort(), ['@fastify/cookie', '@fastify/error', 'fastify', 'fastify-plugin', 'lru-cache', 'typebox'], 'declares its runtime packages and the fastify peer')
  for (const name of needed) {
    const link = join(app, 'node_modules', name)
    await mkdir(dirname(link), { recursive: true })
    await symlink(join(repo, 'node_modules', name), link, 'dir')
  }
  lap('installed')
  await mkdir(join(app, 'cts'))
  await Promise.all([
    writeFile(join(app, 'esm.mjs'), ESM),
    writeFile(join(app, 'cjs.cjs'), CJS),
    writeFile(join(app, 'kit.test.mjs'), KIT),
    writeFile(join(app, 'consumer.mts'), TS_ESM),
    writeFile(join(app, 'tsconfig.json'), JSON.stringify(TSCONFIG)),
    writeFile(join(app, 'check-types.mjs'), CHECK_TYPES),
    writeFile(join(app, 'cts', 'package.json'), JSON.stringify({ name: 'commonjs-consumer', private: true })),
    writeFile(join(app, 'cts', 'main.ts'), TS_COMMONJS),
    writeFile(join(app, 'cts', 'tsconfig.json'), JSON.stringify(TSCONFIG_COMMONJS)),
    writeFile(join(app, 'cts', 'tsconfig.commonjs.json'), JSON.stringify(TSCONFIG_MODULE_COMMONJS))
  ])

  const [esm, cjs, kit, types] = await Promise.all([
    run('node', ['esm.mjs'], app),
    run('node', ['cjs.cjs'], app),
    run('node', ['--test', '--test-reporter=tap', 'kit.test.mjs'], app),
    run('node', ['check-types.mjs'], app).finally(() => lap('type-checked'))
  ])
  // What tsc built of the CommonJS TypeScript project.
  const compiled = types.code === 0 ? await run('node', ['out/main.js'], join(app, 'cts')) : types

  t.equal(esm.code, 0, 'node esm.mjs', { stderr: esm.stderr })
  const fromEsm = JSON.parse(esm.stdout)
  t.equal(fromEsm.visits, 2, 'ESM: a session across two requests')
  t.ok(fromEsm.sameExport, 'ESM: the default export is sessionPlugin')
  t.same(fromEsm.builds, ['dist/esm/index.js', 'dist/esm/testing.js'], 'ESM: import loads the ES module build')
  for (const name of ['default', 'sessionPlugin', 'Session', 'Sessions', 'generateId', 'MemoryFactory', 'RedisFactory', 'PostgresFactory', 'SealedCookieFactory', 'fromExpressStore', 'optionsSchema', 'errors']) {
    t.ok(fromEsm.exports.includes(name), `ESM exports ${name}`)
  }

  t.equal(cjs.code, 0, 'node cjs.cjs', { stderr: cjs.stderr })
  t.same(JSON.parse(cjs.stdout), {
    visits: 2,
    user: 'ada',
    sameExport: true,
    fromExpressStore: 'function',
    builds: ['dist/cjs/index.js', 'dist/cjs/testing.js'],
    esmLoaded: false
  }, 'CommonJS: require() loads the CommonJS build alone; the required module registers, keeps a session, and the kit signs a test in')

  t.equal(kit.code, 0, 'node --test kit.test.mjs', { output: kit.code === 0 ? '' : kit.stdout + kit.stderr })
  t.match(kit.stdout, /^# pass 26$/m, 'the conformance kit ran its 19 factory checks (3 of them the declared capabilities group) and 6 plugin checks on MemoryFactory, and sessionCookie() signed a test in')
  t.match(kit.stdout, /^# skipped 9$/m, 'and skipped the 9 checks of the user index group it was told to')
  t.match(kit.stdout, /^# fail 0$/m)

  t.equal(types.code, 0, 'the type-checks ran', { stderr: types.stderr })
  const checks = JSON.parse(types.stdout)
  const declarations = (build: string): string[] => files.filter((file) => file.startsWith(`dist/${build}/`) && file.endsWith('.d.ts')).sort()
  const cases: Array<[string, string, string[], string[]]> = [
    ['nodenext', 'an ES module TypeScript project (module nodenext)', declarations('esm'), ['consumer.mts']],
    ['node16', 'a CommonJS TypeScript project (module node16)', declarations('cjs'), ['cts/main.ts']],
    ['commonjs', 'a CommonJS TypeScript project (module commonjs, node10 resolution)', declarations('cjs'), ['cts/main.ts']]
  ]
  for (const [key, what, shipped, sources] of cases) {
    const { errors, checked } = checks[key]
    t.equal(errors, '', `${what}: no type error in the consumer or in any shipped declaration file it reads (lib check on)`)
    t.same(checked.filter((file: string) => file.endsWith('.d.ts')).sort(), shipped, `${what}: the check covered all ${shipped.length} declaration files of its builds`)
    t.ok(sources.every((file) => checked.includes(file)), `${what}: and ${sources.join(', ')}`)
  }

  t.equal(compiled.code, 0, 'node cts/out/main.js, as tsc built it', { stderr: compiled.stderr })
  t.same(JSON.parse(compiled.stdout), { visits: 2, user: 'ada', sameExport: true, build: 'dist/cjs/index.js' },
    'the CommonJS TypeScript project runs on the CommonJS build: it registers the plugin, keeps a session, and the kit signs a test in')
})
