// runFactorySuite: the factory on its own, in groups (required, recommended, user index, declared
// capabilities), each check on a fresh factory from `make`.
import type { SessionFactory } from '../factory.js'
import { CAPABILITY_CHECKS, type CapabilityCheck } from './capabilities.js'
import { REQUIRED_CHECKS, type RequiredCheck } from './required.js'
import { RECOMMENDED_CHECKS, type RecommendedCheck } from './recommended.js'
import { checkNames, register, type CheckGroup, type CommonOptions, type Make } from './runner.js'
import { USER_INDEX_CHECKS, type UserIndexCheck } from './user-index.js'

/** The checks of `runFactorySuite`, by the name `skip` and `todo` take. */
export type FactoryCheck = RequiredCheck | RecommendedCheck | UserIndexCheck | CapabilityCheck

export interface FactorySuiteOptions extends CommonOptions {
  /**
   * Which groups run. `required` always does. `recommended` (merging concurrent saves, destroy,
   * touch) and `userIndex` (`sessionsOf`) are on unless set to false; a factory without the
   * method a group needs fails that group's checks with a message saying to switch it off. The
   * declared capabilities group always runs: it holds the factory to its `capabilities`.
   */
  groups?: { required?: true, recommended?: boolean, userIndex?: boolean }
  /** Recommended, user index or capability checks to skip, each with the reason the report shows. */
  skip?: Partial<Record<FactoryCheck, string>>
  /** Checks known to fail for now, each with the reason: the runner reports them as todo, not as failures. */
  todo?: Partial<Record<FactoryCheck, string>>
}

/**
 * Registers the factory conformance checks for the factory `make` builds (a fresh one per check),
 * with node:test, or with the runner in `options.test`.
 */
export function runFactorySuite (name: string, make: Make, options: FactorySuiteOptions = {}): void {
  const groups = options.groups ?? {}
  if ((groups.required as boolean | undefined) === false) {
    throw new TypeError('runFactorySuite: the required group cannot be switched off (mark a check todo instead)')
  }
  const known = new Set<string>([...REQUIRED_CHECKS, ...RECOMMENDED_CHECKS, ...USER_INDEX_CHECKS, ...CAPABILITY_CHECKS].map((check) => check.name))
  checkNames('runFactorySuite skip', options.skip, known)
  checkNames('runFactorySuite todo', options.todo, known)
  for (const check of REQUIRED_CHECKS) {
    if (options.skip?.[check.name] !== undefined) {
      throw new TypeError(`runFactorySuite skip: "${check.name}" is a required check, which cannot be skipped (mark it todo instead)`)
    }
  }
  const stateless = options.stateless === true && 'a stateless factory has no shared record to merge into, destroy or touch'
  const selected: Array<CheckGroup<FactoryCheck, SessionFactory<any>>> = [
    ['SessionFactory conformance, required', REQUIRED_CHECKS, false],
    ['SessionFactory conformance, recommended', RECOMMENDED_CHECKS, groups.recommended === false ? 'the recommended group is switched off' : stateless],
    ['SessionFactory conformance, user index', USER_INDEX_CHECKS, groups.userIndex === false && 'the user index group is switched off'],
    // Always on: each check holds the factory to what it declares, and has nothing to do otherwise.
    ['SessionFactory conformance, declared capabilities', CAPABILITY_CHECKS, false]
  ]
  register(name, selected, options, async (check) => {
    const factory = await make()
    try {
      await check.run(factory)
    } finally {
      await options.cleanup?.(factory)
      await factory.close?.()
    }
  })
}
