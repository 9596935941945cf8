// MemoryFactory through both conformance suites, on their default runner (node:test), as a
// user's own test file would run them; the other factories' suite files run them on tap.
import { MemoryFactory } from '../../src/index.js'
import { runFactorySuite, runPluginSuite } from '../../src/testing.js'

runFactorySuite('MemoryFactory', () => new MemoryFactory())
runPluginSuite('MemoryFactory', () => new MemoryFactory())
