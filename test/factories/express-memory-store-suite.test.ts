// express-session's own MemoryStore, through fromExpressStore: the adapter with no server behind it.
import { fromExpressStore } from '../../src/index.js'
import { runFactorySuite } from '../../src/testing.js'
import { expressSession } from '../helpers/express-stores.js'

runFactorySuite('fromExpressStore(express-session MemoryStore)', () => fromExpressStore(new expressSession.MemoryStore()))
