import t from 'tap'
import { buildApp, Client, setCookies } from './helpers/app.js'
import { CountingFactory } from './helpers/factories.js'

t.test('session.save() persists now and the cookie goes out with the reply; onSend writes nothing more', async (t) => {
  const factory = new CountingFactory()
  const app = await buildApp({ factory })
  app.get('/save-early', async (request) => {
    request.session.set('early', true)
    await request.session.save()
    return { id: request.session.id, isNew: request.session.isNew }
  })
  t.teardown(() => app.close())
  const client = new Client(app)
  const response = await client.get('/save-early')
  t.equal(response.json().isNew, false)
  t.equal(typeof response.json().id, 'string')
  t.same(factory.calls, ['save'])
  t.equal(setCookies(response).length, 1)
  t.same((await client.get('/read')).json().data, { early: true })
})

t.test('a hijacked reply: save() before writing puts the cookie on the raw response', async (t) => {
  const app = await buildApp()
  app.get('/stream', async (request, reply) => {
    request.session.set('streamed', true)
    await request.session.save()
    reply.hijack()
    reply.raw.writeHead(200, { 'content-type': 'text/plain' })
    reply.raw.end('streamed')
  })
  app.get('/stream-hijack-first', async (request, reply) => {
    reply.hijack()
    request.session.set('streamed', 'late')
    await request.session.save()
    reply.raw.writeHead(200, { 'content-type': 'text/plain' })
    reply.raw.end('ok')
  })
  t.teardown(() => app.close())
  const client = new Client(app)
  const response = await client.get('/stream')
  t.equal(response.body, 'streamed')
  t.equal(setCookies(response).length, 1)
  t.same((await client.get('/read')).json().data, { streamed: true })

  const other = new Client(app)
  const hijacked = await other.get('/stream-hijack-first')
  t.equal(setCookies(hijacked).length, 1, 'raw headers carry the cookie')
  t.equal(hijacked.headers['cache-control'], 'private')
  t.equal(hijacked.headers.vary, 'Cookie')
  t.same((await other.get('/read')).json().data, { streamed: 'late' })
})

t.test('save() after the headers went out rejects with FST_SESSION_SAVE_AFTER_SEND', async (t) => {
  const app = await buildApp()
  let saveError: unknown
  let done: () => void = () => {}
  const finished = new Promise<void>((resolve) => { done = resolve })
  app.get('/too-late', async (request, reply) => {
    reply.hijack()
    reply.raw.writeHead(200)
    reply.raw.end('sent')
    request.session.set('late', true)
    try {
      await request.session.save()
    } catch (error) {
      saveError = error
    }
    done()
  })
  t.teardown(() => app.close())
  const response = await app.inject('/too-late')
  await finished
  t.equal(response.body, 'sent')
  t.equal((saveError as { code: string }).code, 'FST_SESSION_SAVE_AFTER_SEND')
})

t.test('save() of an unchanged loaded session writes nothing', async (t) => {
  const factory = new CountingFactory()
  const app = await buildApp({ factory })
  app.get('/noop-save', async (request) => {
    await request.session.save()
    return 'ok'
  })
  t.teardown(() => app.close())
  const client = new Client(app)
  await client.get('/')
  factory.calls = []
  const response = await client.get('/noop-save')
  t.same(factory.calls, ['load'])
  t.same(setCookies(response), [])
})
