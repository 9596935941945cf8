// express-session's own MemoryStore, through fromExpressStore: the adapter with no server behind it.
import { fromExpressStore, type SessionFactory } from '../../src/index.js'
import { runFactorySuite, runPluginSuite } from '../../src/testing.js'
import { expressSession } from '../helpers/express-stores.js'
import { EXPRESS_STORE_SKIPS, tapRunner } from '../helpers/suite-runners.js'

const make = (): SessionFactory => fromExpressStore(new expressSession.MemoryStore())
runFactorySuite('fromExpressStore(express-session MemoryStore)', make, { test: tapRunner(), groups: { userIndex: false }, skip: EXPRESS_STORE_SKIPS })
runPluginSuite('fromExpressStore(express-session MemoryStore)', make, { test: tapRunner() })
