// MemoryFactory through both conformance suites, on their default runner (node:test), as a
// user's own test file would run them; the other factories' suite files run them on tap.
import { MemoryFactory } from '../../src/index.js'
import { runFactorySuite, runPluginSuite } from '../../src/testing.js'
import { userIndexTodo } from '../helpers/suite-runners.js'

runFactorySuite('MemoryFactory', () => new MemoryFactory(), { todo: userIndexTodo('MemoryFactory has no sessionsOf() yet') })
runPluginSuite('MemoryFactory', () => new MemoryFactory())
