// Micro-measure of SealedCookieFactory, with node:crypto's AES-256-GCM and with libsodium's
// XChaCha20-Poly1305: cookie sizes, and the cost of one seal + open (what a request that changes
// its session pays), of an open, and of a load its seal cache answers.
// Run: npx tsx bench/sealed-cookie.ts [iterations]
import { randomBytes, randomUUID } from 'node:crypto'
import { availableParallelism, loadavg } from 'node:os'
import sodium from 'sodium-native'
import { SealedCookieFactory, Session } from '../src/index.js'

const iterations = Number(process.argv[2] ?? 100_000)
const key = randomBytes(32)
const ciphers = { 'AES-256-GCM': {}, 'XChaCha20-Poly1305 (sodium)': { sodium } }

function stamped (data: Record<string, unknown>): Session {
  const session = new Session(data)
  session.expiresAt = Date.now() + 86_400_000
  return session
}

const sessions = {
  empty: {},
  'ten keys': {
    userId: randomUUID(),
    name: 'Ada Lovelace',
    email: 'ada@example.com',
    roles: ['admin', 'editor'],
    locale: 'en-GB',
    theme: 'dark',
    csrf: randomBytes(32).toString('base64url'),
    loginAt: Date.now(),
    cart: [1042, 2201, 77],
    flash: null
  }
}

for (const [cipher, extra] of Object.entries(ciphers)) {
  // The cache off: every load below decrypts; `cached` keeps the default cache.
  const factory = new SealedCookieFactory({ keys: key, cacheBytes: 0, ...extra })
  const cached = new SealedCookieFactory({ keys: key, ...extra })
  for (const [name, data] of Object.entries(sessions)) {
    const session = stamped(data)
    const sealed = await factory.save(session)
    const json = JSON.stringify(data).length
    // The seal authenticates itself: it is the whole cookie value, no HMAC over it.
    console.log(`${cipher}, ${name}: data JSON ${json} B, sealed (the cookie value) ${sealed.length} B`)

    for (let i = 0; i < 2_000; i++) await factory.load(await factory.save(session)) // warm up
    // CPU time as well as wall time: on a shared, loaded machine the wall clock mostly measures waiting.
    const measure = async (run: () => Promise<unknown>): Promise<string> => {
      const cpu = process.cpuUsage()
      const start = process.hrtime.bigint()
      for (let i = 0; i < iterations; i++) await run()
      const wall = Number(process.hrtime.bigint() - start) / iterations / 1000
      const used = process.cpuUsage(cpu)
      return `${wall.toFixed(1)} µs wall, ${((used.user + used.system) / iterations).toFixed(1)} µs CPU`
    }
    console.log(`  seal + open: ${await measure(async () => factory.load(factory.save(session)))}`)
    console.log(`  open alone:  ${await measure(async () => factory.load(sealed))}`)
    console.log(`  load, cached: ${await measure(async () => cached.load(sealed))}`)
    console.log(`  (${iterations} iterations, load average ${loadavg()[0]!.toFixed(1)} on ${availableParallelism()} cores)`)
  }
}
