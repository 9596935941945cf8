// The README's example factory: the same code as examples/readme-factory.ts, it passes the
// conformance suite's required group and the plugin suite, and the recommended checks it skips
// do fail on it, for the reasons given.
import { readFile } from 'node:fs/promises'
import t from 'tap'
import { ExampleFactory } from '../../examples/readme-factory.js'
import { runFactorySuite, runPluginSuite, type FactoryCheck } from '../../src/testing.js'
import { recordingRunner, tapRunner } from '../helpers/suite-runners.js'

const WHOLE = 'it writes the whole record: the last save wins, which the README allows'
const SKIPPED: Partial<Record<FactoryCheck, string>> = {
  'merges-parallel-saves': WHOLE,
  'merges-a-then-b': WHOLE,
  'merges-b-then-a': WHOLE,
  'no-resurrection-by-save': 'it writes the whole record, so a save after destroy() writes it again',
  'no-resurrection-by-touch': 'it has no touch(): the plugin rolls its sessions with a save',
  'touch-extends': 'it has no touch(): the plugin rolls its sessions with a save'
}

// The user index is off: the example keeps none.
runFactorySuite('README ExampleFactory', () => new ExampleFactory(), { test: tapRunner(), groups: { userIndex: false }, skip: SKIPPED })
runPluginSuite('README ExampleFactory', () => new ExampleFactory(), { test: tapRunner() })

t.test('the README shows examples/readme-factory.ts word for word', async (t) => {
  const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8')
  const example = await readFile(new URL('../../examples/readme-factory.ts', import.meta.url), 'utf8')
  const section = readme.slice(readme.indexOf('### Writing your own factory'))
  const block = /```ts\n([\s\S]*?)```/.exec(section)?.[1]
  t.ok(block?.includes('class ExampleFactory'), 'the section opens with the example factory')
  const asInExamples = (block as string)
    .replace("from 'fastify-session-factory'", "from '../src/index.js'")
    .replace('\nclass ', '\nexport class ')
  t.ok(example.endsWith(asInExamples), 'examples/readme-factory.ts ends with the README\'s code')
})

t.test('each recommended check it skips does fail on it', async (t) => {
  const recorder = recordingRunner()
  runFactorySuite('README ExampleFactory', () => new ExampleFactory(), { test: recorder.test, groups: { userIndex: false } })
  const outcomes = await recorder.run()
  for (const name of Object.keys(SKIPPED)) t.equal(outcomes.get(name)?.status, 'fail', name)
  t.equal(outcomes.get('destroy-forgets')?.status, 'pass', 'and the rest of the group passes')
  t.equal(outcomes.get('destroy-result')?.status, 'pass')
})
