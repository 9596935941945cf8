// What ships: build, pack, unpack the tarball into a throwaway project's node_modules next to
// links to exactly the packages it declares (dependencies and the fastify peer, taken from the
// repository's own install: no network, no reliance on what npm's cache happens to hold), then
// use it there as users do: ESM import, CommonJS require(), TypeScript (every shipped declaration
// file checked as with skipLibCheck off), and the conformance kit from `fastify-session-factory/testing`.
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
console.log(JSON.stringify({ visits: second.json().visits, exports: Object.keys(lib), sameExport: lib.default === lib.sessionPlugin }))
await app.close()
`

const CJS = `
const Fastify = require('fastify')
const lib = require('fastify-session-factory')
const app = Fastify()
app.register(lib.sessionPlugin, { factory: new lib.MemoryFactory(), secret: '${SECRET}' })
app.get('/', async (request) => {
  request.session.set('from', 'commonjs')
  return 'ok'
})
app.inject('/').then(async (response) => {
  console.log(JSON.stringify({
    requireModule: process.features.require_module === true,
    status: response.statusCode,
    cookie: response.cookies.some((c) => c.name === 'sid'),
    sameExport: lib.default === lib.sessionPlugin,
    fromExpressStore: typeof lib.fromExpressStore
  }))
  await app.close()
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

const TS_CJS = `
import lib = require('fastify-session-factory')
const factory: lib.SessionFactory = new lib.MemoryFactory()
export const options: lib.SessionPluginOptions = { factory, secret: '${SECRET}' }
export const plugin = lib.sessionPlugin
`

// The consumer's type-check, with lib checking on for this package's declaration files alone.
// \`tsc --skipLibCheck false\` would also check all 600 declaration files of typebox, fastify and
// @types/node (four times the time here), which are theirs to keep sound, not ours.
const CHECK_TYPES = `
import { readdirSync } from 'node:fs'
import ts from ${JSON.stringify(typescript)}

const host = { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => { throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\\n')) } }
const config = ts.getParsedCommandLineOfConfigFile('tsconfig.json', undefined, host)
// Every declaration file shipped, whether or not the consumer's imports reach it.
const dist = process.cwd() + '/node_modules/fastify-session-factory/dist/'
const shipped = readdirSync(dist, { recursive: true }).filter((file) => file.endsWith('.d.ts')).map((file) => dist + file)
const program = ts.createProgram({ rootNames: [...config.fileNames, ...shipped], options: config.options })
const checked = program.getSourceFiles().filter((file) => !file.fileName.includes('/node_modules/') || file.fileName.includes('/node_modules/fastify-session-factory/'))
const diagnostics = [
  ...config.errors,
  ...program.getOptionsDiagnostics(),
  ...program.getGlobalDiagnostics(),
  ...checked.flatMap((file) => [...program.getSyntacticDiagnostics(file), ...program.getSemanticDiagnostics(file)])
]
const format = { getCanonicalFileName: (name) => name, getCurrentDirectory: () => process.cwd(), getNewLine: () => '\\n' }
console.log(JSON.stringify({
  errors: ts.formatDiagnostics(diagnostics, format),
  checked: checked.map((file) => file.fileName.replace(/^.*\\/node_modules\\/fastify-session-factory\\//, '').replace(process.cwd() + '/', ''))
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
  files: ['consumer.mts', 'consumer.cts']
}

t.test('the packed tarball installs and works from ESM, CommonJS, TypeScript and node:test', async (t) => {
  const work = await mkdtemp(join(tmpdir(), 'fsf-package-'))
  t.teardown(() => rm(work, { recursive: true, force: true }))

  const started = Date.now()
  const lap = (phase: string): void => { t.comment(`${phase}: ${((Date.now() - started) / 1000).toFixed(1)} s`) }
  await mustRun('npm', ['run', 'build'], repo)
  lap('built')
  const [packed] = JSON.parse(await mustRun('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], repo))
  lap('packed')
  const files: string[] = packed.files.map((file: { path: string }) => file.path)
  const strays = files.filter((file) => !/^dist\/[\w/-]+\.(?:js|js\.map|d\.ts)$/.test(file) && !['package.json', 'README.md', 'LICENSE'].includes(file))
  t.same(strays, [], 'only dist (JavaScript, its source maps, declarations), README, LICENSE and package.json')
  for (const file of ['LICENSE', 'package.json', 'dist/index.js', 'dist/index.d.ts', 'dist/testing.js', 'dist/testing.d.ts', 'dist/factories/express-store.js']) {
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
  await Promise.all([
    writeFile(join(app, 'esm.mjs'), ESM),
    writeFile(join(app, 'cjs.cjs'), CJS),
    writeFile(join(app, 'kit.test.mjs'), KIT),
    writeFile(join(app, 'consumer.mts'), TS_ESM),
    writeFile(join(app, 'consumer.cts'), TS_CJS),
    writeFile(join(app, 'tsconfig.json'), JSON.stringify(TSCONFIG)),
    writeFile(join(app, 'check-types.mjs'), CHECK_TYPES)
  ])

  const [esm, cjs, kit, types] = await Promise.all([
    run('node', ['esm.mjs'], app),
    run('node', ['cjs.cjs'], app),
    run('node', ['--test', '--test-reporter=tap', 'kit.test.mjs'], app),
    run('node', ['check-types.mjs'], app).finally(() => lap('type-checked'))
  ])

  t.equal(esm.code, 0, 'node esm.mjs', { stderr: esm.stderr })
  const fromEsm = JSON.parse(esm.stdout)
  t.equal(fromEsm.visits, 2, 'ESM: a session across two requests')
  t.ok(fromEsm.sameExport, 'ESM: the default export is sessionPlugin')
  for (const name of ['default', 'sessionPlugin', 'Session', 'Sessions', 'generateId', 'MemoryFactory', 'RedisFactory', 'PostgresFactory', 'SealedCookieFactory', 'fromExpressStore', 'optionsSchema', 'errors']) {
    t.ok(fromEsm.exports.includes(name), `ESM exports ${name}`)
  }

  t.equal(cjs.code, 0, 'node cjs.cjs', { stderr: cjs.stderr })
  t.same(JSON.parse(cjs.stdout), { requireModule: true, status: 200, cookie: true, sameExport: true, fromExpressStore: 'function' }, 'CommonJS: require() of the ES module works')

  t.equal(kit.code, 0, 'node --test kit.test.mjs', { output: kit.code === 0 ? '' : kit.stdout + kit.stderr })
  t.match(kit.stdout, /^# pass 23$/m, 'the conformance kit ran its 16 factory checks and 6 plugin checks on MemoryFactory, and sessionCookie() signed a test in')
  t.match(kit.stdout, /^# skipped 8$/m, 'and skipped the user index group it was told to (its 8 checks)')
  t.match(kit.stdout, /^# fail 0$/m)

  t.equal(types.code, 0, 'the type-check ran', { stderr: types.stderr })
  const { errors, checked } = JSON.parse(types.stdout)
  t.equal(errors, '', 'no type error in the consumer or in any shipped declaration file (lib check on)')
  const declarations = files.filter((file) => file.endsWith('.d.ts')).sort()
  t.same(checked.filter((file: string) => file.endsWith('.d.ts')).sort(), declarations, `the check covered all ${declarations.length} shipped declaration files`)
  t.ok(checked.includes('consumer.mts') && checked.includes('consumer.cts'), 'and both consumer files')
})
