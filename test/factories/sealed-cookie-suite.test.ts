import { randomBytes } from 'node:crypto'
import { SealedCookieFactory } from '../../src/index.js'
import { runFactorySuite, runPluginSuite } from '../../src/testing.js'
import { tapRunner } from '../helpers/suite-runners.js'

const make = (): SealedCookieFactory => new SealedCookieFactory({ keys: randomBytes(32) })
runFactorySuite('SealedCookieFactory', make, { test: tapRunner(), stateless: true, groups: { userIndex: false } })
runPluginSuite('SealedCookieFactory', make, { test: tapRunner(), stateless: true })
