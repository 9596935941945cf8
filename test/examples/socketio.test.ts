// examples/socketio.ts over real sockets: a socket.io client connects with the cookie of a
// signed-in page, the server reads that session in the handshake and writes it back.
import t from 'tap'
import { io as connect, type Socket } from 'socket.io-client'
import { buildSocketApp } from '../../examples/socketio.js'
import { SECRET } from '../helpers/app.js'

function open (url: string, cookie?: string): Socket {
  return connect(url, { transports: ['websocket'], extraHeaders: cookie === undefined ? {} : { cookie }, reconnection: false, forceNew: true })
}

t.test('the handshake reads the session; a message changes it, saved for the next page view', async (t) => {
  const { app } = await buildSocketApp(SECRET)
  t.teardown(() => app.close())
  const url = await app.listen({ port: 0, host: '127.0.0.1' })

  const login = await fetch(`${url}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'ada' }) })
  const cookie = (login.headers.get('set-cookie') as string).split(';')[0] as string

  const socket = open(url, cookie)
  t.teardown(() => socket.close())
  const hello = await new Promise<string>((resolve) => socket.once('hello', resolve))
  t.equal(hello, 'ada', 'the socket knows who opened it')
  t.equal(await socket.emitWithAck('message', 'hi'), 1)
  t.equal(await socket.emitWithAck('message', 'again'), 2)

  const me = await (await fetch(`${url}/me`, { headers: { cookie } })).json()
  t.same(me, { name: 'ada', messages: 2 }, 'the page sees what the socket saved')
})

t.test('a handshake without a session, or with a forged cookie, is refused', async (t) => {
  const { app } = await buildSocketApp(SECRET)
  t.teardown(() => app.close())
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  for (const cookie of [undefined, 'sid=made-up.signature']) {
    const socket = open(url, cookie)
    const error = await new Promise<Error>((resolve) => socket.once('connect_error', resolve))
    socket.close()
    t.equal(error.message, 'sign in first', String(cookie))
  }
})

t.test('sign out everywhere reaches an open socket: its next event disconnects it, nothing is saved', async (t) => {
  const { app } = await buildSocketApp(SECRET)
  t.teardown(() => app.close())
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  const post = (path: string, body: unknown, cookie?: string): Promise<Response> => fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(cookie === undefined ? {} : { cookie }) },
    body: JSON.stringify(body)
  })
  const login = await post('/login', { name: 'ada' })
  const cookie = (login.headers.get('set-cookie') as string).split(';')[0] as string

  const socket = open(url, cookie)
  t.teardown(() => socket.close())
  await new Promise((resolve) => socket.once('hello', resolve))
  t.equal(await socket.emitWithAck('message', 'hi'), 1)

  const ended = await (await post('/sign-out-everywhere', { name: 'ada' })).json()
  t.same(ended, { ended: 1 }, 'the page\'s session, which the socket shares, ended')
  const disconnected = new Promise<string>((resolve) => socket.once('disconnect', resolve))
  socket.emit('message', 'still there?')
  t.equal(await disconnected, 'io server disconnect', 'the server closed the socket')
  const me = await (await fetch(`${url}/me`, { headers: { cookie } })).json()
  t.same(me, { name: null, messages: 0 }, 'the old cookie opens nothing')
})
