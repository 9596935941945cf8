// Runners for the conformance suites (src/testing.ts): tap's, and one that records what each check did.
import tap, { type Test } from 'tap'
import type { CheckOptions, FactoryCheck, TestFunctions } from '../../src/testing.js'

/**
 * `describe` and `it` on tap, which has neither: a describe is a subtest, and the its registered
 * inside it are its subtests.
 */
export function tapRunner (root: Test = tap): TestFunctions {
  let current = root
  return {
    describe (name, fn) {
      const parent = current
      return parent.test(name, async (child) => {
        current = child
        try {
          fn()
        } finally {
          current = parent
        }
      })
    },
    it (name, options, fn) {
      return current.test(name, options, async () => { await fn() })
    }
  }
}

/** What one check did under `recordingRunner`. */
export interface Outcome {
  group: string
  options: CheckOptions
  status: 'pass' | 'fail' | 'skip'
  error?: Error
}

/**
 * A runner that only records the checks; `run()` then runs every check that is not skipped
 * (todo ones included), or only those named in `only`, and answers each outcome by the check's
 * name (the `[name]` of its title).
 */
export function recordingRunner (): { test: TestFunctions, run: (only?: string[]) => Promise<Map<string, Outcome>> } {
  const registered: Array<{ group: string, name: string, options: CheckOptions, fn: () => Promise<void> }> = []
  let group = ''
  return {
    test: {
      describe (name, fn) {
        group = name
        fn()
      },
      it (title, options, fn) {
        const name = /\[([\w-]+)\]$/.exec(title)?.[1]
        if (name === undefined) throw new Error(`a check title without its [name]: ${title}`)
        registered.push({ group, name, options, fn })
      }
    },
    async run (only) {
      const outcomes = new Map<string, Outcome>()
      for (const { group, name, options, fn } of registered) {
        if (only !== undefined && !only.includes(name)) continue
        if (options.skip !== false) {
          outcomes.set(name, { group, options, status: 'skip' })
          continue
        }
        try {
          await fn()
          outcomes.set(name, { group, options, status: 'pass' })
        } catch (error) {
          outcomes.set(name, { group, options, status: 'fail', error: error as Error })
        }
      }
      return outcomes
    }
  }
}

/** The checks of the user index group. */
export const USER_INDEX_CHECKS: FactoryCheck[] = ['index-lists', 'index-apart', 'index-destroy', 'index-expiry', 'index-moves', 'index-counts', 'index-stale-save', 'index-touch-files', 'index-revoke']

/**
 * What a factory from fromExpressStore skips, by design: it has no touch() (a store's touch only
 * extends a TTL and cannot record the last activity; the plugin rolls these sessions by a save).
 * Its files also switch the user index off: an express-session store has none to offer.
 */
export const EXPRESS_STORE_SKIPS: Partial<Record<FactoryCheck, string>> = {
  'no-resurrection-by-touch': 'fromExpressStore has no touch(): the plugin rolls its sessions with a save',
  'touch-extends': 'fromExpressStore has no touch(): the plugin rolls its sessions with a save'
}
