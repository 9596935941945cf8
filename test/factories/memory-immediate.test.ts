import t from 'tap'
import { MemoryFactory, Session } from '../../src/index.js'
import { buildApp, Client, setCookies } from '../helpers/app.js'
import { fakeClock } from '../helpers/clock.js'

// The plugin answers a MemoryFactory's load and save without a promise round trip; that shortcut
// must never bypass a subclass's or a patch's own load and save.

class CountingMemory extends MemoryFactory {
  loads = 0
  saves = 0

  override async load (id: string): Promise<Session | null> {
    this.loads++
    return super.load(id)
  }

  override async save (session: Session): Promise<string> {
    this.saves++
    return super.save(session)
  }
}

t.test('a subclass\'s own load and save are called', async (t) => {
  const factory = new CountingMemory()
  const app = await buildApp({ factory })
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.get('/')
  t.same((await client.get('/')).json(), { visits: 2 })
  t.equal(factory.loads, 1)
  t.equal(factory.saves, 2)
})

t.test('a load or save patched onto the instance after registration is called', async (t) => {
  const factory = new MemoryFactory()
  const app = await buildApp({ factory })
  t.teardown(() => app.close())
  const calls: string[] = []
  const { load, save } = MemoryFactory.prototype
  factory.load = async (id) => {
    calls.push('load')
    return load.call(factory, id)
  }
  factory.save = async (session) => {
    calls.push('save')
    return save.call(factory, session)
  }
  const client = new Client(app)
  await client.get('/')
  t.same((await client.get('/')).json(), { visits: 2 })
  t.same(calls, ['save', 'load', 'save'])
})

t.test('a value MemoryFactory cannot store fails the save with 503, and the cookie stays as it was', async (t) => {
  const app = await buildApp()
  app.get('/unstorable', async (request) => {
    // Allowed by the JSON check (it has toJSON), refused when the factory stringifies it.
    request.session.set('bad', { toJSON () { throw new Error('no JSON for you') } })
    return 'ok'
  })
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.get('/')
  const cookie = client.cookie
  const failed = await client.get('/unstorable')
  t.equal(failed.statusCode, 503)
  t.equal(failed.json().code, 'FST_SESSION_STORE_UNAVAILABLE')
  t.equal(client.cookie, cookie)
  t.same((await client.get('/')).json(), { visits: 2 }, 'the stored session is untouched')
})

t.test('a session the plugin finds past its timeout is destroyed, and a destroy that fails answers 503', async (t) => {
  const clock = fakeClock(t)
  // One store behind two setups: the long one keeps the session, the short one finds it dead.
  const factory = new MemoryFactory()
  const keeper = await buildApp({ factory, idleTimeout: 3600 })
  const strict = await buildApp({ factory, idleTimeout: 60, rolling: false })
  t.teardown(() => Promise.all([keeper.close(), strict.close()]))

  const first = new Client(keeper)
  await first.get('/')
  clock.advance(120 * 1000)
  const dead = await strict.inject({ url: '/read', headers: { cookie: first.cookie as string } })
  t.same(dead.json().data, {}, 'a fresh session')
  t.match(setCookies(dead), [/Max-Age=0/], 'the dead cookie is cleared')
  t.equal(factory.size, 0, 'and the session destroyed')

  const second = new Client(keeper)
  await second.get('/')
  clock.advance(120 * 1000)
  factory.destroy = async () => { throw new Error('destroy failed') }
  const failed = await strict.inject({ url: '/read', headers: { cookie: second.cookie as string } })
  t.equal(failed.statusCode, 503)
  t.equal(failed.json().code, 'FST_SESSION_STORE_UNAVAILABLE')
  t.same(setCookies(failed), [], 'the cookie is left as it was')
})
