// `fastify-session-factory/testing`: the conformance suites for a factory, and a helper for a
// user's own tests. `runFactorySuite` checks the factory on its own, in groups (required,
// recommended, user index); `runPluginSuite` checks it behind the plugin, over `inject`. Both
// register with node:test unless handed another runner's `describe` and `it`. Each group lives
// in a file of its own under testing/.
export { runFactorySuite, type FactoryCheck, type FactorySuiteOptions } from './testing/factory-suite.js'
export { runPluginSuite, type PluginCheck, type PluginSuiteOptions } from './testing/plugin-suite.js'
export type { CheckOptions, TestFunctions } from './testing/runner.js'
export { sessionCookie } from './testing/session-cookie.js'
