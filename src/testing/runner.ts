// How a check reaches a test runner: node:test's `describe` and `it` by default, or any runner
// handed in the same shape. Shared by the factory suite and the plugin suite.
import * as nodeTest from 'node:test'
import type { MaybePromise, SessionFactory } from '../factory.js'

/** What a check hands its runner: node:test's test options (a reason string, or false). */
export interface CheckOptions {
  skip: string | false
  todo: string | false
  timeout: number
}

/** A test runner, in node:test's shape: `import { describe, it } from 'node:test'`. */
export interface TestFunctions {
  describe (name: string, fn: () => void): unknown
  it (name: string, options: CheckOptions, fn: () => Promise<void>): unknown
}

/** Builds the factory a check runs on: a fresh one per check. */
export type Make = () => MaybePromise<SessionFactory<any>>

export interface CommonOptions {
  /** The runner to register with; node:test's `describe` and `it` by default. */
  test?: TestFunctions
  /**
   * The factory keeps nothing: the id it returns is the session itself (a sealed cookie). Checks
   * that need shared state are skipped: the recommended group (merging, destroy, touch), the
   * expiry check (the plugin enforces a stateless session's timeouts) and the old cookie being
   * dead after logout.
   */
  stateless?: boolean
  /** Called after each check with the factory it used, before the factory is closed. */
  cleanup?: (factory: SessionFactory<any>) => MaybePromise<void>
  /** Milliseconds a check may take; 30,000 by default. */
  timeout?: number
}

/** One check: `name` is what `skip` and `todo` take, `title` what it checks. */
export interface Check<Name extends string, Context> {
  name: Name
  title: string
  /** Why the check does not apply to a stateless factory. */
  stateless?: string
  run (context: Context): Promise<void>
}

/** A describe block: its title, its checks, and why it is switched off (false: it runs). */
export type CheckGroup<Name extends string, Context> = [string, Array<Check<Name, Context>>, string | false]

const DEFAULT_TIMEOUT = 30_000

/** The title a check is reported under: what it checks, then the name `skip` and `todo` take. */
function titleOf (check: Check<string, unknown>): string {
  return `${check.title} [${check.name}]`
}

/** Rejects names that are no check of the suite, so a typo cannot silently skip nothing. */
export function checkNames (label: string, given: Record<string, unknown> | undefined, known: Set<string>): void {
  for (const name of Object.keys(given ?? {})) {
    if (!known.has(name)) throw new TypeError(`${label}: "${name}" is not a check of this suite`)
  }
}

/** Registers every check of `groups` in a describe of its own; `run` runs one check on a fresh factory. */
export function register<Name extends string, Context> (
  name: string,
  groups: Array<CheckGroup<Name, Context>>,
  options: CommonOptions & { skip?: Partial<Record<Name, string>>, todo?: Partial<Record<Name, string>> },
  run: (check: Check<Name, Context>) => Promise<void>
): void {
  const { describe, it } = options.test ?? nodeTest
  const skips: Partial<Record<string, string>> = options.skip ?? {}
  const todos: Partial<Record<string, string>> = options.todo ?? {}
  for (const [title, checks, off] of groups) {
    describe(`${name}: ${title}`, () => {
      for (const check of checks) {
        const skip = off !== false
          ? off
          : skips[check.name] ?? (options.stateless === true && check.stateless !== undefined ? check.stateless : false)
        it(titleOf(check), { skip, todo: todos[check.name] ?? false, timeout: options.timeout ?? DEFAULT_TIMEOUT }, () => run(check))
      }
    })
  }
}
