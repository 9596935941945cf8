// A factory declares what it can do (`capabilities`); the plugin reads it once at registration,
// refuses a declaration its methods contradict, and never guesses from a missing method.
import t from 'tap'
import Fastify from 'fastify'
import sessionPlugin, { MemoryFactory, SealedCookieFactory, type SessionFactory } from '../src/index.js'
import { SECRET } from './helpers/app.js'

const memory = new MemoryFactory()
const load: SessionFactory['load'] = (id) => memory.load(id)
const save: SessionFactory['save'] = (session) => memory.save(session)

const contradictions: Array<[string, SessionFactory<any>]> = [
  ['userIndex without sessionsOf()', { capabilities: { userIndex: true }, load, save }],
  ['sessionsOf() without the userIndex declaration', { load, save, sessionsOf: () => [] }],
  ['destroyReports without destroy()', { capabilities: { destroyReports: true }, load, save }],
  ['stateless with touch()', { capabilities: { stateless: true }, load, save, touch: () => {} }],
  ['stateless with a user index', { capabilities: { stateless: true, userIndex: true }, load, save, sessionsOf: () => [] }]
]

for (const [what, factory] of contradictions) {
  t.test(`registration refuses a factory that declares ${what}`, async (t) => {
    const app = Fastify()
    t.teardown(() => app.close())
    await t.rejects(async () => {
      await app.register(sessionPlugin, { factory, secret: SECRET })
      await app.ready()
    }, { code: 'FST_SESSION_INVALID_OPTIONS' })
  })
}

t.test('the built-in factories declare what they can do', async (t) => {
  t.same(new MemoryFactory().capabilities, { destroyReports: true, userIndex: true })
  t.same(new SealedCookieFactory({ keys: Buffer.alloc(32, 1) }).capabilities, { stateless: true, selfAuthenticatingIds: true })
})

t.test('a declaration is read once, at registration: changing it later changes nothing', async (t) => {
  const calls: string[] = []
  const factory = {
    capabilities: { destroyReports: true } as { destroyReports: boolean },
    load: (id: string) => { calls.push('load'); return memory.load(id) },
    save,
    destroy: (id: string) => { calls.push('destroy'); return memory.destroy(id) }
  }
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(sessionPlugin, { factory, secret: SECRET })
  app.post('/set', async (request) => { request.session.set('n', 1); return 'ok' })
  app.post('/login', async (request) => { await request.session.regenerate(); return 'ok' })
  const set = await app.inject({ method: 'POST', url: '/set' })
  const cookie = `sid=${set.cookies[0]?.value as string}`
  factory.capabilities.destroyReports = false
  calls.length = 0
  await app.inject({ method: 'POST', url: '/login', headers: { cookie } })
  t.same(calls, ['load', 'destroy'], 'destroy() still decides alone whether the record was live: no load checks first')
})
