// Defects the hardening tests found in the core, each pinned by a test named after it.
import t from 'tap'
import { buildApp, sessionCookie } from './helpers/app.js'

t.test('readCookie is linear: a 600 kB Cookie header of "="-less segments costs milliseconds, not seconds', async (t) => {
  const app = await buildApp()
  t.teardown(() => app.close())
  const login = await app.inject({ method: 'POST', url: '/login', payload: { user: 'ada' } })
  const cookie = sessionCookie(login) as string
  for (const filler of [';', 'a;', ' sid;']) {
    const header = filler.repeat(Math.ceil(600_000 / filler.length)) + cookie
    const started = performance.now()
    const response = await app.inject({ method: 'GET', url: '/read', headers: { cookie: header } })
    const elapsed = performance.now() - started
    t.equal(response.json().data.user, 'ada', `the cookie after ${JSON.stringify(filler)} filler is found`)
    // Quadratic scanning took ~5 s here; linear takes ~10 ms. The bound leaves room for a loaded box.
    t.ok(elapsed < 1_500, `${JSON.stringify(filler)} filler: ${elapsed.toFixed(0)} ms`)
  }
})
