import t from 'tap'
import { MemoryFactory, Session } from '../src/index.js'
import { buildApp, sessionCookie, sessionIdOf as idOf } from './helpers/app.js'

/** A MemoryFactory whose loads of chosen ids wait until the test lets them go. */
class GatedFactory extends MemoryFactory {
  readonly #gates = new Map<string, { opened: Promise<void>, open: () => void }>()

  hold (id: string): void {
    let open = (): void => {}
    const opened = new Promise<void>((resolve) => { open = resolve })
    this.#gates.set(id, { opened, open })
  }

  release (id: string): void {
    this.#gates.get(id)?.open()
    this.#gates.delete(id)
  }

  // @ts-expect-error -- a subclass that makes the synchronous load wait: the plugin awaits what it answers
  override async load (id: string): Promise<Session | null> {
    await this.#gates.get(id)?.opened
    return super.load(id)
  }
}

t.test('factory calls that answer out of order each settle their own request', async (t) => {
  const factory = new GatedFactory()
  const app = await buildApp({ factory })
  t.teardown(() => app.close())
  const cookies: string[] = []
  for (let i = 0; i < 3; i++) cookies.push(sessionCookie(await app.inject('/')) as string)
  const [first, second, third] = cookies as [string, string, string]
  factory.hold(idOf(first))
  factory.hold(idOf(second))

  const oldest = app.inject({ url: '/', headers: { cookie: first } })
  const middle = app.inject({ url: '/', headers: { cookie: second } })
  // Let both held loads start before the third request overtakes them.
  await new Promise((resolve) => setImmediate(resolve))
  const fast = await app.inject({ url: '/', headers: { cookie: third } })
  t.same(fast.json(), { visits: 2 }, 'the latest call answered first')
  factory.release(idOf(first))
  t.same((await oldest).json(), { visits: 2 }, 'the oldest call answered while a later one still waited')
  factory.release(idOf(second))
  t.same((await middle).json(), { visits: 2 }, 'the last one got its own answer too')
})

t.test('a call that outlasts storeTimeout fails even while others keep answering', async (t) => {
  const factory = new GatedFactory()
  const app = await buildApp({ factory, storeTimeout: 50 })
  t.teardown(() => app.close())
  const held = sessionCookie(await app.inject('/')) as string
  const free = sessionCookie(await app.inject('/')) as string
  factory.hold(idOf(held))

  const started = Date.now()
  const hung = app.inject({ url: '/', headers: { cookie: held } })
  for (let i = 0; i < 3; i++) {
    const response = await app.inject({ url: '/', headers: { cookie: free } })
    t.equal(response.statusCode, 200)
  }
  const failed = await hung
  t.equal(failed.statusCode, 503)
  t.equal(failed.json().code, 'FST_SESSION_STORE_UNAVAILABLE')
  t.ok(Date.now() - started >= 45, 'not before storeTimeout')
  factory.release(idOf(held))
})
