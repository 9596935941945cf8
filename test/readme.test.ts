// The README's code, run. Every ```ts or ```js block carries a `<!-- snippet: name -->` line just
// before it; each name has a harness below, which may put code the README leaves out before
// the snippet (what `app` is), make test-only edits (a free port, a key prefix of this run's
// own), and put code after it (exports for the check, type assertions). Each snippet becomes a
// module under .tap/, all of them are type-checked as one program (the README's SessionData
// augmentation included), then each one is imported, or run under node --test, and checked
// through what it built. Links: every link to a file of this repository points at a file that
// exists, the README's as absolute GitHub URLs (they must work on npm), the docs' as relative ones.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { existsSync, statSync } from 'node:fs'
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { FastifyInstance } from 'fastify'
import Fastify from 'fastify'
import pg from 'pg'
import t from 'tap'
import ts from 'typescript'
import WebSocket from 'ws'
import sessionPlugin, { SealedCookieFactory, Session } from '../src/index.js'
import { sessionCookie } from '../src/testing.js'
import { SECRET } from './helpers/app.js'
import { PG_HOST, PG_PORT, sharedPostgresSkipReason } from './helpers/postgres.js'
import { cleaningClient, keysUnder, sharedRedisSkipReason } from './helpers/redis.js'

type Test = Parameters<Parameters<typeof t.test>[0]>[0]

// Snippets, their type check and node --test take a while on a loaded machine.
t.setTimeout(240_000)

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const BLOB = 'https://github.com/fastify-session-factory/fastify-session-factory/blob/main/'
const readme = await readFile(join(ROOT, 'README.md'), 'utf8')

// ---------------------------------------------------------------------------------------------
// The README's blocks

interface Block { name: string | null, lang: string, code: string, line: number }

/** Every fenced block, with the snippet name on the line before it (if any). */
function blocksOf (markdown: string): Block[] {
  const lines = markdown.split('\n')
  const blocks: Block[] = []
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)/.exec(lines[i] as string)
    if (open === null) continue
    const end = lines.indexOf('```', i + 1)
    const name = /^<!-- snippet: ([\w-]+) -->$/.exec(lines[i - 1] ?? '')?.[1] ?? null
    blocks.push({ name, lang: open[1] as string, code: lines.slice(i + 1, end).join('\n') + '\n', line: i + 1 })
    i = end
  }
  return blocks
}

// ---------------------------------------------------------------------------------------------
// Harnesses

/** What one snippet's module exports: whatever its epilogue names. */
type Exports = Record<string, any>

interface Harness {
  /** Code the README leaves out, put before the snippet. */
  prelude?: string
  /** Put after the snippet: exports for the check, and type assertions. */
  epilogue?: string
  /** Test-only edits, each of which must match exactly once. */
  edits?: Array<[from: string, to: string]>
  /** Its module augmentation would retype every other snippet's session: it is type-checked alone. */
  ownProgram?: boolean
  /** Why the snippet cannot run here (a service is down), or null. */
  skip?: () => Promise<string | null>
  /** Imports the module (or runs it) and checks what it did. */
  check (t: Test, load: () => Promise<Exports>, file: string): Promise<void>
}

// Real services, each run in keys and a database of its own.
const RUN = randomBytes(6).toString('hex')
const REDIS_PREFIX = `readme:${RUN}:sess:`
const STORE_PREFIX = `readme:${RUN}:store:`
const DATABASE = `fsf_readme_${RUN}`

/** An app with the session plugin on MemoryFactory, as `app` for the snippets that assume one. */
const APP_WITH_SESSION = `import __Fastify from 'fastify'
import { sessionPlugin as __sessionPlugin, MemoryFactory as __MemoryFactory } from 'fastify-session-factory'
const app = __Fastify()
await app.register(__sessionPlugin, { factory: new __MemoryFactory(), secret: process.env.SESSION_SECRET! })
`
/** A bare app, for the snippets that register the plugin themselves. */
const BARE_APP = `import __Fastify from 'fastify'
const app = __Fastify()
`
/** The quick start's counter, on the app a factory snippet built. */
const COUNTER = `app.get('/', async (request) => {
  const n = request.session.get('counter', 0) + 1
  request.session.set('counter', n)
  return \`Visited \${n} times\\n\`
})
`

/** A browser in miniature over inject: keeps the session cookie it was last sent. */
class Jar {
  cookie: string | undefined
  constructor (readonly app: FastifyInstance) {}

  async request (method: 'GET' | 'POST', url: string, payload?: object): Promise<{ status: number, body: string, setCookie: string | undefined }> {
    const response = await this.app.inject({
      method,
      url,
      ...(this.cookie === undefined ? {} : { headers: { cookie: this.cookie } }),
      ...(payload === undefined ? {} : { payload })
    })
    const header = response.headers['set-cookie']
    const setCookie = Array.isArray(header) ? header.join('\n') : header
    const sid = response.cookies.find((cookie) => cookie.name === 'sid')
    if (sid !== undefined) this.cookie = sid.value === '' ? undefined : `sid=${sid.value}`
    return { status: response.statusCode, body: response.body, setCookie }
  }
}

/** Two visits with one jar count 1, then 2: the session went to the factory and came back. */
async function countsVisits (t: Test, app: FastifyInstance): Promise<Jar> {
  const jar = new Jar(app)
  t.equal((await jar.request('GET', '/')).body, 'Visited 1 times\n')
  t.ok(jar.cookie, 'the first visit got a session cookie')
  t.equal((await jar.request('GET', '/')).body, 'Visited 2 times\n', 'the second visit found the session')
  return jar
}

/** The session id inside a `sid=<id>.<signature>` pair. */
function idOf (cookie: string): string {
  return decodeURIComponent(cookie.slice(cookie.indexOf('=') + 1)).replace(/\.[^.]*$/, '')
}

const harnesses: Record<string, Harness> = {
  'quick-start': {
    edits: [['await app.listen({ port: 3000 })', 'await app.listen({ port: 0, host: \'127.0.0.1\' })']],
    epilogue: 'export { app }\n',
    async check (t, load) {
      const { app } = await load()
      t.teardown(() => app.close())
      const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/`
      const first = await fetch(url)
      t.equal(await first.text(), 'Visited 1 times\n')
      const cookie = (first.headers.get('set-cookie') ?? '').split(';')[0] as string
      t.match(cookie, /^sid=/, 'a session cookie over a real socket')
      const second = await fetch(url, { headers: { cookie } })
      t.equal(await second.text(), 'Visited 2 times\n')
      t.equal(second.headers.get('set-cookie'), null)
    }
  },

  'session-api': {
    prelude: APP_WITH_SESSION + `const users = {
  async check (username: string, password: string): Promise<{ id: string } | null> {
    return username === 'ada' && password === 'lovelace' ? { id: 'u-ada' } : null
  }
}
`,
    epilogue: `app.get('/data', async (request) => Object.fromEntries(['visited', 'userId', '$cookieMaxAge']
  .filter((key) => request.session.has(key)).map((key) => [key, request.session.get(key)])))
app.post('/visit', async (request) => {
  request.session.set('visited', true)
  return 'ok'
})
export { app }
`,
    async check (t, load) {
      const { app } = await load()
      t.teardown(() => app.close())
      const jar = new Jar(app)
      await jar.request('POST', '/visit')
      const before = jar.cookie as string
      t.ok(before, 'a visitor with a session')

      const wrong = await jar.request('POST', '/login', { username: 'ada', password: 'nope' })
      t.equal(wrong.status, 401)
      t.equal(wrong.setCookie, undefined, 'a failed login changes nothing')

      const login = await jar.request('POST', '/login', { username: 'ada', password: 'lovelace', remember: true })
      t.equal(login.status, 200)
      t.not(idOf(jar.cookie as string), idOf(before), 'login gave the session a new id')
      t.match(login.setCookie, /Max-Age=2592000/, '"remember me": a persistent cookie, 30 days in seconds')
      // options({ maxAge }) keeps the lifetime outside the data: no data key shows it.
      t.same(JSON.parse((await jar.request('GET', '/data')).body), { userId: 'u-ada' }, 'regenerate() emptied the visitor\'s data: only what the login set')
      const stale = await app.inject({ url: '/data', headers: { cookie: before } })
      t.same(stale.json(), {}, 'the pre-login id is dead')

      const logout = await jar.request('POST', '/logout')
      t.match(logout.setCookie, /Max-Age=0|Expires=Thu, 01 Jan 1970/, 'logout cleared the cookie')
      t.equal(jar.cookie, undefined)
      const plain = await new Jar(app).request('POST', '/login', { username: 'ada', password: 'lovelace' })
      t.match(plain.setCookie, /^sid=/)
      t.notMatch(plain.setCookie, /Max-Age/, 'without remember: a browser-session cookie')
    }
  },

  redis: {
    skip: sharedRedisSkipReason,
    prelude: BARE_APP,
    edits: [['\'myapp:sess:\'', `'${REDIS_PREFIX}'`]],
    epilogue: COUNTER + 'export { app, redis }\n',
    async check (t, load) {
      const admin = await cleaningClient(t, REDIS_PREFIX)
      const { app, redis } = await load()
      const jar = await countsVisits(t, app)
      const key = REDIS_PREFIX + idOf(jar.cookie as string)
      t.same(await keysUnder(admin, REDIS_PREFIX), [key], 'one hash, under the prefix')
      t.equal(await admin.hget(key, 'd:counter'), '2')
      t.ok(await admin.pttl(key) > 0, 'with a TTL')
      await app.close()
      // quit() resolves on Redis's OK; the connection closes right after.
      for (let i = 0; i < 100 && redis.status !== 'end'; i++) await sleep(10)
      t.equal(redis.status, 'end', 'app.close() quit the client, through the onClose hook')
    }
  },

  'sealed-cookie': {
    prelude: BARE_APP,
    epilogue: COUNTER + 'export { app }\n',
    async check (t, load) {
      const keys = [randomBytes(32).toString('base64'), randomBytes(32).toString('base64')]
      const previous = process.env.SESSION_KEYS
      process.env.SESSION_KEYS = keys.join(',')
      let app: FastifyInstance
      try {
        ({ app } = await load())
      } finally {
        if (previous === undefined) delete process.env.SESSION_KEYS
        else process.env.SESSION_KEYS = previous
      }
      t.teardown(() => app.close())
      const jar = await countsVisits(t, app)
      // A seal of { counter: 1 } is ~120 characters, unsigned; an id with its signature ~90.
      t.ok((jar.cookie as string).length > 110, 'the cookie carries the sealed session, not an id')

      // Nothing was kept on the server: another app with the same keys reads the cookie.
      const other = Fastify()
      await other.register(sessionPlugin, { factory: new SealedCookieFactory({ keys }), secret: SECRET })
      other.get('/', async (request) => `Visited ${request.session.get('counter', 0) + 1} times\n`)
      t.teardown(() => other.close())
      t.equal((await other.inject({ url: '/', headers: { cookie: jar.cookie as string } })).body, 'Visited 3 times\n')
    }
  },

  postgres: {
    skip: sharedPostgresSkipReason,
    prelude: BARE_APP,
    epilogue: COUNTER + 'export { app, pool }\n',
    async check (t, load) {
      const admin = new pg.Pool({ host: PG_HOST, port: PG_PORT, user: 'postgres', database: 'postgres', max: 1 })
      admin.on('error', () => {})
      await admin.query(`CREATE DATABASE ${DATABASE}`)
      const previous = process.env.DATABASE_URL
      process.env.DATABASE_URL = `postgres://postgres@${PG_HOST}:${PG_PORT}/${DATABASE}`
      let pool: pg.Pool | undefined
      try {
        const loaded = await load()
        pool = loaded.pool as pg.Pool
        pool.on('error', () => {})
        const jar = await countsVisits(t, loaded.app)
        const { rows } = await pool.query('SELECT id, data FROM fastify_sessions')
        t.same(rows, [{ id: idOf(jar.cookie as string), data: { counter: 2 } }], 'createTable made the table; one row, its data in jsonb')
        await loaded.app.close()
      } finally {
        await pool?.end()
        if (previous === undefined) delete process.env.DATABASE_URL
        else process.env.DATABASE_URL = previous
        await admin.query(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`)
        await admin.end()
      }
    }
  },

  'express-store': {
    skip: sharedRedisSkipReason,
    prelude: BARE_APP,
    edits: [['\'myapp:\'', `'${STORE_PREFIX}'`]],
    epilogue: COUNTER + 'export { app, client }\n',
    async check (t, load) {
      const admin = await cleaningClient(t, STORE_PREFIX)
      const { app, client } = await load()
      const jar = await countsVisits(t, app)
      const record = JSON.parse(await admin.get(STORE_PREFIX + idOf(jar.cookie as string)) as string)
      t.equal(record.counter, 2, 'the data keys at the top level, as express-session has them')
      t.type(record.cookie.expires, 'string', 'and express-session\'s cookie object, whose expires sets the TTL')
      await app.close()
      t.equal(client.isOpen, false, 'app.close() closed the client')
    }
  },

  'example-factory': {
    epilogue: 'export { ExampleFactory }\n',
    async check (t, load) {
      const { ExampleFactory } = await load()
      const factory = new ExampleFactory()
      const app = Fastify()
      await app.register(sessionPlugin, { factory, secret: SECRET })
      app.get('/', async (request) => `Visited ${request.session.get('counter', 0) + 1} times\n`)
      app.post('/count', async (request) => {
        request.session.set('counter', request.session.get('counter', 0) + 1)
        return 'ok'
      })
      app.post('/logout', async (request) => {
        await request.session.destroy()
        return 'ok'
      })
      t.teardown(() => app.close())
      const jar = new Jar(app)
      await jar.request('POST', '/count')
      t.equal(factory.rows.size, 1, 'save() wrote a row')
      t.equal((await jar.request('GET', '/')).body, 'Visited 2 times\n', 'load() read it back')
      await jar.request('POST', '/logout')
      t.equal(factory.rows.size, 0, 'destroy() removed it')
    }
  },

  conformance: {
    prelude: 'import { ExampleFactory } from \'./example-factory.js\'\n',
    async check (t, _load, file) {
      // The suites register with node:test, so they run as node --test does, in a child.
      // tap's process tracking puts itself back into any child: its own variable turns coverage off
      // there (tsx's V8 ranges for src/, merged with tap's, would mark covered lines as missed).
      const env: NodeJS.ProcessEnv = { _TAPJS_PROCESSINFO_COVERAGE_: '0' }
      for (const [key, value] of Object.entries(process.env)) {
        if (!/^(NODE_OPTIONS|NODE_V8_COVERAGE|TAP|_TAPJS)/.test(key)) env[key] = value
      }
      const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=tap', file], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
      let output = ''
      child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
      child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
      const [code] = await once(child, 'close') as [number | null]
      const count = (name: string): number => Number(new RegExp(`^# ${name} (\\d+)$`, 'm').exec(output)?.[1] ?? Number.NaN)
      t.equal(code, 0, `node --test passed:\n${code === 0 ? '' : output.slice(-3000)}`)
      t.equal(count('fail'), 0)
      t.ok(count('pass') >= 14, `the required factory checks and the plugin checks ran (${count('pass')} passed)`)
      t.match(output, /ExampleFactory/, 'under the README\'s name')
    }
  },

  sessions: {
    prelude: BARE_APP + 'const secret = process.env.SESSION_SECRET!\n',
    epilogue: 'export { app, cookie, session }\n',
    async check (t, load) {
      const { app, cookie, session } = await load()
      t.teardown(() => app.close())
      t.ok(session instanceof Session, 'load() gave the session behind the Cookie header')
      t.equal(session.get('userId'), 'ada')
      t.equal((await app.sessions.load(cookie))?.get('seen'), true, 'save() stored the change under the same id')

      const phone = await sessionCookie(app, { userId: 'ada' })
      const tablet = await sessionCookie(app, { userId: 'ada' })
      const bob = await sessionCookie(app, { userId: 'bob' })
      const response = await app.inject({ method: 'POST', url: '/sign-out-elsewhere', headers: { cookie } })
      t.same(response.json(), { ended: 2 }, 'ada\'s two other sessions ended')
      t.equal(await app.sessions.load(phone), null)
      t.equal(await app.sessions.load(tablet), null)
      t.ok(await app.sessions.load(cookie), 'the session that asked stays')
      t.ok(await app.sessions.load(bob), 'other users keep theirs')
    }
  },

  'max-sessions': {
    prelude: BARE_APP + `import sessionPlugin, { MemoryFactory } from 'fastify-session-factory'
const factory = new MemoryFactory()
const secret = process.env.SESSION_SECRET!
`,
    epilogue: 'export { app }\n',
    async check (t, load) {
      const { app } = await load()
      t.teardown(() => app.close())
      const logins: string[] = []
      for (let i = 0; i < 4; i++) logins.push(await sessionCookie(app, { userId: 'ada' }))
      t.equal((await app.sessions.list('ada')).length, 3, 'the fourth login ended one of the three before it')
      t.ok(await app.sessions.load(logins[3]), 'the new session survives')
      const left = await Promise.all(logins.slice(0, 3).map(async (cookie) => await app.sessions.load(cookie) !== null))
      t.equal(left.filter(Boolean).length, 2)
    }
  },

  websocket: {
    prelude: APP_WITH_SESSION,
    epilogue: 'await app.listen({ port: 0, host: \'127.0.0.1\' })\nexport { app }\n',
    async check (t, load) {
      const { app } = await load()
      t.teardown(() => app.close())
      const cookie = await sessionCookie(app, { userId: 'ada' })
      const socket = new WebSocket(`ws://127.0.0.1:${(app.server.address() as { port: number }).port}/ws`, { headers: { cookie } })
      await once(socket, 'open')
      t.teardown(() => socket.close())
      socket.send('hello')
      let seen: unknown
      for (let i = 0; i < 100 && seen === undefined; i++) {
        await sleep(20)
        seen = (await app.sessions.load(cookie))?.get('lastMessage')
      }
      t.equal(seen, 'hello', 'the handler\'s set() reached the store through save()')
    }
  },

  schema: {
    prelude: BARE_APP + `import sessionPlugin, { MemoryFactory } from 'fastify-session-factory'
const factory = new MemoryFactory()
const secret = process.env.SESSION_SECRET!
`,
    epilogue: `app.get('/typed', async (request) => {
  const user: string | undefined = request.session.get('userId')
  // @ts-expect-error a key the schema does not declare
  request.session.get('userid')
  return { user: user ?? null }
})
app.post('/bad', async (request) => {
  request.session.set('userId', 42 as unknown as string)
  return 'saved?'
})
export { app }
`,
    ownProgram: true,
    async check (t, load) {
      const { app } = await load()
      t.teardown(() => app.close())
      t.same((await app.inject('/typed')).json(), { user: null }, 'a visitor')
      const cookie = await sessionCookie(app, { userId: 'ada' })
      t.same((await app.inject({ url: '/typed', headers: { cookie } })).json(), { user: 'ada' }, 'typed data that fits the schema')
      const bad = await app.inject({ method: 'POST', url: '/bad' })
      t.equal(bad.statusCode, 500)
      t.equal(bad.json().code, 'FST_SESSION_INVALID_DATA', 'data that fails the schema is not saved')
      t.equal(bad.headers['set-cookie'], undefined, 'no cookie')
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Building the modules

const blocks = blocksOf(readme)
const code = blocks.filter((block) => block.lang === 'ts' || block.lang === 'js')

const dir = join(ROOT, '.tap', `readme-snippets-${process.pid}`)
await mkdir(dir, { recursive: true })
t.teardown(() => rm(dir, { recursive: true, force: true }))

/** The package's own specifiers point at the source, as examples/ and test/ do. */
function toSource (text: string): string {
  return text.replace(/(['"])fastify-session-factory(\/testing)?\1/g, (_match, quote: string, sub: string | undefined) =>
    `${quote}../../src/${sub === undefined ? 'index' : 'testing'}.js${quote}`)
}

// Written before any test is registered: tap ends a test whose subtests all finished.
const files = new Map<string, string>()
const edits: Array<{ name: string, from: string, matches: number }> = []
for (const block of code) {
  const harness = harnesses[block.name as string]
  if (harness === undefined) continue
  let snippet = block.code
  for (const [from, to] of harness.edits ?? []) {
    edits.push({ name: block.name as string, from, matches: snippet.split(from).length - 1 })
    snippet = snippet.replace(from, to)
  }
  const file = join(dir, `${block.name}.ts`)
  // No module may end up without an import or export: it would be a script, not a module.
  await writeFile(file, toSource(`${harness.prelude ?? ''}${snippet}${harness.epilogue ?? 'export {}\n'}`))
  files.set(block.name as string, file)
}

/** Why a snippet cannot run here (its service is down), by name. */
const skips = new Map<string, string>()
for (const name of files.keys()) {
  const reason = await harnesses[name]?.skip?.() ?? null
  if (reason !== null) skips.set(name, reason)
}

t.test('every ts/js block of the README is a named snippet with a harness, and every harness is used', async (t) => {
  t.ok(code.length >= 10, `${code.length} code blocks`)
  for (const block of code) t.ok(block.name !== null, `the block at README.md:${block.line} has a <!-- snippet: name --> line`)
  const names = code.map((block) => block.name)
  t.same(names, [...new Set(names)], 'names are unique')
  t.same([...names].sort(), Object.keys(harnesses).sort(), 'one harness per snippet')
  for (const block of blocks.filter((block) => block.name !== null)) t.equal(block.lang, 'ts', `${block.name} is TypeScript`)
  for (const edit of edits) t.equal(edit.matches, 1, `${edit.name}: the test-only edit ${JSON.stringify(edit.from)} matches once`)
})

t.test('the snippets type-check: one program, and one of its own for each snippet that augments the session\'s type', async (t) => {
  const config = ts.readConfigFile(join(ROOT, 'tsconfig.json'), (path) => ts.sys.readFile(path))
  const { options } = ts.parseJsonConfigFileContent(config.config, ts.sys, ROOT)
  const alone = (name: string): boolean => harnesses[name]?.ownProgram === true
  const programs = [
    [...files].filter(([name]) => !alone(name)).map(([, file]) => file),
    ...[...files].filter(([name]) => alone(name)).map(([, file]) => [file])
  ]
  const problems = programs.flatMap((roots) => ts.getPreEmitDiagnostics(ts.createProgram(roots, { ...options, noEmit: true, incremental: false })).map((diagnostic) => {
    const text = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')
    if (diagnostic.file === undefined) return text
    const { line } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start ?? 0)
    return `${relative(ROOT, diagnostic.file.fileName)}:${line + 1}: ${text}`
  }))
  t.same(problems, [], 'no type errors')
})

for (const [name, file] of files) {
  const harness = harnesses[name] as Harness
  t.test(`README snippet "${name}" runs and does what the README says`, { skip: skips.get(name) ?? false }, async (t) => {
    // Set for the snippet's import alone.
    const load = async (): Promise<Exports> => {
      const previous = process.env.SESSION_SECRET
      process.env.SESSION_SECRET = SECRET
      try {
        return await import(pathToFileURL(file).href)
      } finally {
        if (previous === undefined) delete process.env.SESSION_SECRET
        else process.env.SESSION_SECRET = previous
      }
    }
    await harness.check(t, load, file)
  })
}

// ---------------------------------------------------------------------------------------------
// Links

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as dashes. */
function slug (heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-')
}

function anchorsOf (markdown: string): Set<string> {
  const headings = markdown.split('\n').filter((line) => /^#{1,6} /.test(line)).map((line) => line.replace(/^#+ /, ''))
  return new Set(headings.map(slug))
}

/** Every inline link's target, with the line it is on (code blocks left out). */
function linksOf (markdown: string): Array<{ target: string, line: number }> {
  const links: Array<{ target: string, line: number }> = []
  let inCode = false
  markdown.split('\n').forEach((text, i) => {
    if (text.startsWith('```')) inCode = !inCode
    if (inCode) return
    for (const match of text.matchAll(/\]\(([^)\s]+)\)/g)) links.push({ target: match[1] as string, line: i + 1 })
  })
  return links
}

/** A repository path (a file or a folder) and, for a Markdown file, that its anchor exists. */
async function checkTarget (t: Test, where: string, path: string, anchor: string | undefined): Promise<void> {
  const absolute = join(ROOT, path)
  if (!existsSync(absolute)) {
    t.fail(`${where}: ${path} does not exist`)
    return
  }
  t.pass(`${where}: ${path} exists`)
  if (anchor !== undefined && path.endsWith('.md') && statSync(absolute).isFile()) {
    t.ok(anchorsOf(await readFile(absolute, 'utf8')).has(anchor), `${where}: ${path} has the heading #${anchor}`)
  }
}

t.test('the README links files of this repository by absolute GitHub URLs, and each exists', async (t) => {
  const links = linksOf(readme)
  t.ok(links.length > 10)
  for (const { target, line } of links) {
    const where = `README.md:${line}`
    if (target.startsWith('#')) {
      t.ok(anchorsOf(readme).has(target.slice(1)), `${where}: the README has the heading ${target}`)
    } else if (target.startsWith(BLOB)) {
      const [path, anchor] = target.slice(BLOB.length).split('#') as [string, string | undefined]
      await checkTarget(t, where, path, anchor)
    } else {
      t.match(target, /^https:\/\//, `${where}: ${target} is absolute (a relative link breaks on npm)`)
      t.notMatch(target, /github\.com\/fastify-session-factory\/fastify-session-factory\/(?!blob\/main\/)/, `${where}: a link into this repository goes through ${BLOB}`)
    }
  }
})

t.test('package.json names the repository the README links into', async (t) => {
  const manifest = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8'))
  const repository = BLOB.replace(/\/blob\/main\/$/, '')
  t.same(manifest.repository, { type: 'git', url: `git+${repository}.git` })
  t.equal(manifest.homepage, `${repository}#readme`)
  t.same(manifest.bugs, { url: `${repository}/issues` })
})

t.test('the docs\' relative links point at files (and headings) that exist', async (t) => {
  const docs = (await readdir(join(ROOT, 'docs'))).filter((name) => name.endsWith('.md'))
  t.ok(docs.length > 5)
  for (const name of docs) {
    const markdown = await readFile(join(ROOT, 'docs', name), 'utf8')
    for (const { target, line } of linksOf(markdown)) {
      const where = `docs/${name}:${line}`
      if (/^[a-z]+:/.test(target)) continue
      if (target.startsWith('#')) {
        t.ok(anchorsOf(markdown).has(target.slice(1)), `${where}: docs/${name} has the heading ${target}`)
        continue
      }
      const [path, anchor] = target.split('#') as [string, string | undefined]
      await checkTarget(t, where, relative(ROOT, join(ROOT, 'docs', path)), anchor)
    }
  }
})
