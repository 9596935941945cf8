// Real sockets, not inject: Node's header limit answers 431 before any session work, and a factory
// that hangs under 200 concurrent connections gets 503s on time, leaking no socket and no timer.
import { randomBytes } from 'node:crypto'
import { connect } from 'node:net'
import Fastify from 'fastify'
import t from 'tap'
import sessionPlugin, { type Session, type SessionFactory } from '../src/index.js'
import { SECRET } from './helpers/app.js'
import { factoriesUnderTest, useFactory, wrapFactory } from './helpers/factories-under-test.js'
import { ResourceWatch, activeResources, send } from './helpers/http.js'
import { LogTrap, cookieValueIn, signId } from './helpers/log-trap.js'

/** Writes raw bytes on a fresh connection and returns everything the server sent back. */
function rawExchange (port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let received = ''
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => { received += chunk })
    socket.on('end', () => { socket.destroy(); resolve(received) })
    socket.on('close', () => resolve(received))
    socket.on('error', reject)
    socket.write(text, 'latin1')
  })
}

/** Lets pending I/O callbacks and async_hooks destroy events run, without making a timer. */
async function turns (n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve))
}

for (const under of factoriesUnderTest) {
  t.test(`${under.name}: an oversized Cookie header gets Node's 431 and the server stays up`, { skip: under.skip ?? false }, async (t) => {
    const { factory, dispose } = await useFactory(under)
    const calls: string[] = []
    const trap = new LogTrap()
    const app = Fastify({ logger: trap.logger })
    await app.register(sessionPlugin, { factory: wrapFactory(factory, { onCall: (method) => calls.push(method) }), secret: SECRET })
    app.get('/', async (request) => {
      request.session.set('visits', request.session.get('visits', 0) + 1)
      return { visits: request.session.get('visits') }
    })
    await app.listen({ host: '127.0.0.1', port: 0 })
    t.teardown(async () => { await app.close(); await dispose() })
    const port = (app.server.address() as { port: number }).port

    const first = await send(port, false, 'GET', '/')
    const value = cookieValueIn(first.headers['set-cookie']) as string
    trap.rememberCookie(value)
    calls.length = 0
    const oversized = [
      `sid=${value}; junk=${'x'.repeat(20_000)}`,
      `junk=${'x'.repeat(20_000)}; sid=${value}`,
      Array.from({ length: 3_000 }, (_, i) => `c${i}=v`).join('; ') + `; sid=${value}`,
      `sid=${'%'.repeat(70_000)}`
    ]
    for (const cookie of oversized) {
      const answer = await rawExchange(port, `GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: ${cookie}\r\nConnection: close\r\n\r\n`)
      t.match(answer, /^HTTP\/1\.1 431 /, `a ${cookie.length}-byte Cookie header gets 431`)
    }
    t.same(calls, [], 'the factory never saw an oversized request')

    const after = await send(port, false, 'GET', '/', { cookie: `sid=${encodeURIComponent(value)}` })
    t.equal(after.status, 200, 'the server still answers')
    t.same(JSON.parse(after.body), { visits: 2 }, 'and the session survived')
    t.same(trap.leaks(), [], 'no session id, cookie value or session value reached the log')
  })

  t.test(`${under.name}: a hanging factory under 200 concurrent connections gets 503s on time and leaks nothing`, { skip: under.skip ?? false }, async (t) => {
    const { factory, dispose } = await useFactory(under)
    const STORE_TIMEOUT = 300
    const CONNECTIONS = 200
    await turns(20)
    const before = activeResources()
    const watch = new ResourceWatch().start()
    // load() waits until released: far longer than storeTimeout.
    const releases: Array<() => void> = []
    let loads = 0
    const hanging: SessionFactory<any> = {
      ...wrapFactory(factory),
      load: (id: string) => {
        loads++
        return new Promise<Session | null>((resolve) => { releases.push(() => { resolve(factory.load(id)) }) })
      }
    }
    const trap = new LogTrap()
    const app = Fastify({ logger: trap.logger })
    await app.register(sessionPlugin, { factory: hanging, secret: SECRET, storeTimeout: STORE_TIMEOUT })
    app.get('/', async (request) => ({ user: request.session.get('user') ?? null }))
    await app.listen({ host: '127.0.0.1', port: 0 })
    const port = (app.server.address() as { port: number }).port

    const cookies = Array.from({ length: CONNECTIONS }, () => signId(randomBytes(32).toString('base64url'), SECRET))
    for (const cookie of cookies) trap.rememberCookie(cookie)
    const started = performance.now()
    const answers = await Promise.all(cookies.map(async (cookie) => {
      const response = await send(port, false, 'GET', '/', { cookie: `sid=${cookie}` })
      return { ...response, ms: performance.now() - started }
    }))
    const slowest = Math.max(...answers.map((a) => a.ms))

    t.equal(loads, CONNECTIONS, 'every request reached the factory')
    t.equal(answers.filter((a) => a.status === 503).length, CONNECTIONS, 'every request got 503')
    t.ok(answers.every((a) => (JSON.parse(a.body) as { code: string }).code === 'FST_SESSION_STORE_UNAVAILABLE'), 'with FST_SESSION_STORE_UNAVAILABLE')
    t.ok(answers.every((a) => a.headers['set-cookie'] === undefined), 'and the client\'s cookie left as it was')
    t.ok(answers.every((a) => a.ms >= STORE_TIMEOUT - 5), 'no answer came before storeTimeout')
    // Generous: the box is shared; a storeTimeout that was not honoured would hang forever.
    t.ok(slowest < STORE_TIMEOUT + 10_000, `all ${CONNECTIONS} answered within ${slowest.toFixed(0)} ms (storeTimeout ${STORE_TIMEOUT} ms)`)
    t.equal(trap.errors().length, CONNECTIONS, 'each fault was logged once')

    // The factory answers late: nothing may be written, nothing may crash.
    for (const release of releases) release()
    await turns(20)

    // A healthy factory on a long storeTimeout: each call's timer must end with the call.
    const healthy = Fastify({ logger: trap.logger })
    await healthy.register(sessionPlugin, { factory: wrapFactory(factory), secret: SECRET, storeTimeout: 60_000 })
    healthy.get('/', async (request) => {
      request.session.set('visits', request.session.get('visits', 0) + 1)
      return 'ok'
    })
    await healthy.listen({ host: '127.0.0.1', port: 0 })
    const healthyPort = (healthy.server.address() as { port: number }).port
    await send(healthyPort, false, 'GET', '/') // starts the long-lived timers (server, sweeper)
    const phase = new ResourceWatch().start()
    const ok = await Promise.all(cookies.map((cookie) => send(healthyPort, false, 'GET', '/', { cookie: `sid=${cookie}` })))
    t.ok(ok.every((a) => a.status === 200), 'a healthy factory answers all 200')
    await turns(20)
    phase.stop()
    // At most two: Node's own Date-header cache (under 1 s) and the plugin's one deadline ticker
    // (it stops at its next tick once no call is in flight). A timer left behind per factory
    // call would number in the hundreds here, each alive for 60 s.
    t.ok((phase.alive().Timeout ?? 0) <= 2, `no storeTimeout timer outlives its factory call (${phase.alive().Timeout ?? 0} alive after 400 calls)`)

    await app.close()
    await healthy.close()
    await dispose()
    await watch.settle(1_200)
    watch.stop()
    t.same(watch.alive(), {}, 'no timer or socket made during the test is still alive (unref\'d timers included)')
    const after = activeResources()
    t.ok(Object.entries(after).every(([type, count]) => count <= (before[type] ?? 0)), `process.getActiveResourcesInfo() holds nothing new: ${JSON.stringify(after)}`)
    t.same(trap.leaks(), [], 'no session id, cookie value or session value reached the log')
  })
}
