import { MemoryFactory } from '../../src/index.js'
import { runFactorySuite } from '../../src/testing.js'

runFactorySuite('MemoryFactory', () => new MemoryFactory())
