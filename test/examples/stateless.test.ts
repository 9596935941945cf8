import { randomBytes } from 'node:crypto'
import t from 'tap'
import { buildStatelessApp, main } from '../../examples/stateless.js'
import { Client, SECRET } from '../helpers/app.js'

t.test('examples/stateless.ts: login, read, logout, with the session sealed in the cookie', async (t) => {
  const key = randomBytes(32).toString('base64')
  const app = await buildStatelessApp({ secret: SECRET, keys: [key] })
  t.teardown(() => app.close())
  const client = new Client(app)
  t.equal((await client.get('/me')).statusCode, 401)
  t.same((await client.post('/login', { user: 'ada' })).json(), { user: 'ada' })
  t.ok(client.cookie?.startsWith('sid='))
  t.same((await client.get('/me')).json(), { user: 'ada' })
  t.equal((await client.post('/login', {})).statusCode, 400, 'the body is validated')

  // A restart with a new key prepended still knows the user, and reseals the cookie with the new key.
  const rotated = await buildStatelessApp({ secret: SECRET, keys: [randomBytes(32).toString('base64'), key] })
  t.teardown(() => rotated.close())
  const sameBrowser = new Client(rotated)
  sameBrowser.cookie = client.cookie
  t.same((await sameBrowser.get('/me')).json(), { user: 'ada' })
  t.not(sameBrowser.cookie, client.cookie, 'resealed with the new key')

  t.same((await client.post('/logout')).json(), { ok: true })
  t.equal(client.cookie, undefined, 'the cookie is cleared')
  t.equal((await client.get('/me')).statusCode, 401)
})

t.test('examples/stateless.ts main(): keys and secret from the environment, or random ones', async (t) => {
  const key = randomBytes(32).toString('base64')
  const configured = await main({ SESSION_KEYS: ` ${randomBytes(32).toString('base64')} , ${key},`, SESSION_SECRET: SECRET, PORT: '0', HOST: '127.0.0.1' }, false)
  t.teardown(() => configured.close())
  const address = configured.server.address()
  t.ok(address !== null && typeof address === 'object' && address.port > 0, 'listening')
  const login = await configured.inject({ method: 'POST', url: '/login', payload: { user: 'ada' } })
  t.equal(login.statusCode, 200)

  const random = await main({ PORT: '0', HOST: '127.0.0.1' }, false)
  t.teardown(() => random.close())
  t.equal((await random.inject({ method: 'POST', url: '/login', payload: { user: 'ada' } })).statusCode, 200)
})
