// How many commands one request costs, read off MONITOR on a redis-server of this test's own.
// Each command is one round trip: the factory sends one command per factory call (a write is
// one script), and the plugin makes at most two calls per request (load, then save or touch).
// Signed-in sessions (the userKey option) add one command where a user index entry must go: a
// destroy, which learns the user from the record it removes.
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { Redis } from 'ioredis'
import { RedisFactory } from '../../src/index.js'
import { Client, buildApp } from '../helpers/app.js'
import { RECOMMENDED, RedisServer, binariesSkipReason, freePort } from '../helpers/redis.js'

const skip = binariesSkipReason('redis-server') ?? false

t.test('round trips per request', { skip }, async (t) => {
  const server = await RedisServer.start(await freePort())
  t.teardown(() => server.stop())
  const redis = new Redis({ port: server.port, ...RECOMMENDED, lazyConnect: true })
  await redis.connect()
  t.teardown(() => redis.quit())

  // Every command the server runs, but those a script runs inside itself.
  const monitor = await redis.monitor()
  t.teardown(() => monitor.disconnect())
  const seen: string[] = []
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (source !== 'lua') seen.push(String(args[0]).toLowerCase())
  })

  let marks = 0
  /** The commands the app sent while `run` ran; an ECHO before and after marks them in the stream. */
  async function commandsOf (run: () => Promise<unknown>): Promise<string[]> {
    marks++
    await redis.echo('start')
    await run()
    await redis.echo('end')
    while (seen.filter((c) => c === 'echo').length < marks * 2) await sleep(10)
    const end = seen.lastIndexOf('echo')
    const start = seen.lastIndexOf('echo', end - 1)
    return seen.slice(start + 1, end)
  }

  const factory = new RedisFactory({ client: redis, prefix: 'rt:' })
  const app = await buildApp({ factory })
  t.teardown(() => app.close())
  const touching = await buildApp({ factory, idleTimeout: 1 })
  t.teardown(() => touching.close())

  const figures: string[] = []
  async function expectCommands (what: string, run: () => Promise<unknown>, expected: string[]): Promise<void> {
    const commands = await commandsOf(run)
    figures.push(`${what}: ${commands.length} (${commands.join(', ') || 'none'})`)
    t.same(commands, expected, `${what}: ${expected.length} round trip(s)`)
  }

  const visitor = new Client(app)
  await expectCommands('first new visitor after Redis started (script not cached yet)', () => visitor.get('/'), ['evalsha', 'eval'])
  await expectCommands('new visitor', () => new Client(app).get('/'), ['evalsha'])
  await expectCommands('returning reader', () => visitor.get('/read'), ['hgetall'])
  await expectCommands('returning writer', () => visitor.get('/'), ['hgetall', 'evalsha'])
  await expectCommands('visitor on a route that never reads the session', () => new Client(app).get('/untouched'), [])
  await expectCommands('first login (regenerate: the factory declares destroyReports, so no load checks the old record first; destroy script not cached yet)', () => visitor.post('/login', { user: 'ada' }), ['hgetall', 'evalsha', 'eval', 'evalsha'])
  await expectCommands('login (regenerate: the old id is destroyed, its answer says it was there)', () => visitor.post('/login', { user: 'ada' }), ['hgetall', 'evalsha', 'evalsha'])
  await expectCommands('logout', () => visitor.post('/logout'), ['hgetall', 'evalsha'])

  // With userKey: the save script files the session in its user's index itself (a single node).
  const signedIn = await buildApp({ factory, userKey: 'user' })
  t.teardown(() => signedIn.close())
  const ada = new Client(signedIn)
  await expectCommands('signed-in: login of a new visitor (the save files the session in the user index)', () => ada.post('/login', { user: 'ada' }), ['evalsha'])
  await expectCommands('signed-in: returning writer', () => ada.post('/set', { cart: [1] }), ['hgetall', 'evalsha'])
  await expectCommands('signed-in: first logout (the destroy, then the index entry; index script not cached yet)', () => ada.post('/logout'), ['hgetall', 'evalsha', 'evalsha', 'eval'])
  await ada.post('/login', { user: 'ada' })
  await expectCommands('signed-in: logout (the destroy, then the index entry)', () => ada.post('/logout'), ['hgetall', 'evalsha', 'evalsha'])

  const idle = new Client(touching)
  await idle.get('/')
  await sleep(150) // past a tenth of the 1 s idle timeout: the next read touches
  await expectCommands('first returning reader whose touch is due (touch script not cached yet)', () => idle.get('/read'), ['hgetall', 'evalsha', 'eval'])
  await sleep(150)
  await expectCommands('returning reader whose touch is due', () => idle.get('/read'), ['hgetall', 'evalsha'])

  t.comment(figures.join('\n'))
})
