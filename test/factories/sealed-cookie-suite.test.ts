import { randomBytes } from 'node:crypto'
import { SealedCookieFactory } from '../../src/index.js'
import { runFactorySuite } from '../../src/testing.js'

runFactorySuite('SealedCookieFactory', () => new SealedCookieFactory({ keys: randomBytes(32) }), { stateless: true })
