import t from 'tap'
import { buildApp, Client } from './helpers/app.js'
import { SeedStyleFactory } from './helpers/factories.js'
import { MemoryFactory } from '../src/index.js'

t.test('overlapping requests on one session that set different keys all keep their change', async (t) => {
  const app = await buildApp({ factory: new MemoryFactory() })
  app.post<{ Params: { key: string } }>('/slow-set/:key', async (request) => {
    request.session.get('counter')
    await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 20))
    request.session.set(request.params.key, true)
    return 'ok'
  })
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.get('/')
  const cookie = client.cookie as string
  const keys = Array.from({ length: 50 }, (_, i) => `k${i}`)
  const responses = await Promise.all(keys.map((key) =>
    app.inject({ method: 'POST', url: `/slow-set/${key}`, headers: { cookie } })))
  t.ok(responses.every((r) => r.statusCode === 200))
  const data = (await client.get('/read')).json().data
  for (const key of keys) t.equal(data[key], true, key)
  t.equal(data.counter, 1)
})

t.test('overlapping deletes and sets of different keys merge too', async (t) => {
  const app = await buildApp()
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.post('/set', { a: 1, b: 2, c: 3 })
  const cookie = client.cookie as string
  await Promise.all([
    app.inject({ method: 'POST', url: '/delete', payload: ['a'], headers: { cookie } }),
    app.inject({ method: 'POST', url: '/set', payload: { d: 4 }, headers: { cookie } }),
    app.inject({ method: 'POST', url: '/delete', payload: ['c'], headers: { cookie } })
  ])
  t.same((await client.get('/read')).json().data, { b: 2, d: 4 })
})

t.test('a request that saves after a parallel logout does not resurrect the session', async (t) => {
  const app = await buildApp()
  let release: () => void = () => {}
  const gate = new Promise<void>((resolve) => { release = resolve })
  app.post('/slow-write', async (request) => {
    request.session.get('user')
    await gate
    request.session.set('late', true)
    return 'ok'
  })
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.post('/login', { user: 'ada' })
  const cookie = client.cookie as string
  const slow = app.inject({ method: 'POST', url: '/slow-write', headers: { cookie } })
  await new Promise((resolve) => setTimeout(resolve, 20))
  await app.inject({ method: 'POST', url: '/logout', headers: { cookie } })
  release()
  await slow
  const after = await app.inject({ url: '/read', headers: { cookie } })
  t.same(after.json().data, {}, 'the logged-out session stays dead')
})

t.test('a whole-record factory (the seed style) keeps working under overlap, last write wins', async (t) => {
  const app = await buildApp({ factory: new SeedStyleFactory() })
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.get('/')
  const cookie = client.cookie as string
  const results = await Promise.all(Array.from({ length: 10 }, () => app.inject({ url: '/', headers: { cookie } })))
  t.ok(results.every((r) => r.statusCode === 200))
  t.ok((await client.get('/read')).json().data.counter >= 2)
})
