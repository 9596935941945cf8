// examples/custom-factory.ts passes every group of the conformance suite and the plugin suite,
// and is built on the package's public entry alone.
import { readFile } from 'node:fs/promises'
import t from 'tap'
import { MapFactory } from '../../examples/custom-factory.js'
import { Session } from '../../src/index.js'
import { runFactorySuite, runPluginSuite } from '../../src/testing.js'
import { tapRunner } from '../helpers/suite-runners.js'

runFactorySuite('examples/custom-factory.ts MapFactory', () => new MapFactory(), { test: tapRunner() })
runPluginSuite('examples/custom-factory.ts MapFactory', () => new MapFactory(), { test: tapRunner() })

t.test('it imports nothing of the package but its public entry', async (t) => {
  const source = await readFile(new URL('../../examples/custom-factory.ts', import.meta.url), 'utf8')
  const imported = [...source.matchAll(/^import .* from '([^']+)'$/gm)].map((match) => match[1])
  t.same(imported.filter((specifier) => specifier?.startsWith('node:') !== true), ['../src/index.js'])
})

t.test('it answers at once, and a session saved without expiresAt lives ttl seconds', async (t) => {
  const factory = new MapFactory({ ttl: 60 })
  const session = new Session({ n: 1 })
  const before = Date.now()
  const id = factory.save(session)
  t.type(id, 'string', 'save() answers the id itself, not a promise')
  const loaded = factory.load(id)
  t.ok(loaded instanceof Session, 'load() answers the session itself')
  t.ok((loaded as Session).expiresAt! >= before + 60_000 && (loaded as Session).expiresAt! <= Date.now() + 60_000)
})
