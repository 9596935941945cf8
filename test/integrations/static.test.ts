// @fastify/static's files are served by a wildcard route the app did not declare: the `skip`
// option keeps them out of session work, so an asset request with a valid session cookie costs
// no factory call and carries no Set-Cookie.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyStatic from '@fastify/static'
import t from 'tap'
import sessionPlugin, { type SessionPluginOptions } from '../../src/index.js'
import { SECRET, sessionCookie } from '../helpers/app.js'
import { CountingFactory } from '../helpers/factories.js'

const root = fileURLToPath(new URL('./fixtures/public/', import.meta.url))
const css = readFileSync(new URL('./fixtures/public/app.css', import.meta.url), 'utf8')

async function buildStaticApp (factory: CountingFactory<any>, skip?: SessionPluginOptions['skip']): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(sessionPlugin, { factory, secret: SECRET, ...(skip === undefined ? {} : { skip }) })
  await app.register(fastifyStatic, { root, prefix: '/public/' })
  app.get('/', async (request) => {
    const visits = request.session.get('visits', 0) + 1
    request.session.set('visits', visits)
    return { visits }
  })
  return app
}

t.test('with skip, a static asset requested with a valid session cookie loads nothing and sets no cookie', async (t) => {
  const factory = new CountingFactory()
  const app = await buildStaticApp(factory, (request) => request.url.startsWith('/public/'))
  t.teardown(() => app.close())
  const cookie = sessionCookie(await app.inject({ url: '/' })) as string
  t.ok(cookie, 'a session')
  factory.calls.length = 0

  const asset = await app.inject({ url: '/public/app.css', headers: { cookie } })
  t.equal(asset.statusCode, 200)
  t.equal(asset.body, css, 'the file is served')
  t.equal(asset.headers['set-cookie'], undefined, 'no Set-Cookie')
  t.notMatch(String(asset.headers.vary ?? ''), /cookie/i, 'no Vary: Cookie: the response does not depend on the session')
  const missing = await app.inject({ url: '/public/missing.css', headers: { cookie } })
  t.equal(missing.statusCode, 404)
  t.equal(missing.headers['set-cookie'], undefined)
  t.same(factory.calls, [], 'the factory was never asked')

  const page = await app.inject({ url: '/', headers: { cookie } })
  t.same(page.json(), { visits: 2 }, 'the app\'s own routes still have their session')
  t.equal(factory.count('load'), 1, 'and load it')
})

t.test('without skip, the same asset request loads the session (what skip saves)', async (t) => {
  const factory = new CountingFactory()
  const app = await buildStaticApp(factory)
  t.teardown(() => app.close())
  const cookie = sessionCookie(await app.inject({ url: '/' })) as string
  factory.calls.length = 0
  const asset = await app.inject({ url: '/public/app.css', headers: { cookie } })
  t.equal(asset.statusCode, 200)
  t.equal(factory.count('load'), 1)
})
