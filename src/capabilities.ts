import { InvalidOptions } from './errors.js'
import type { FactoryCapabilities, SessionFactory } from './factory.js'

/** A factory's capabilities as registration resolved them: every flag present, frozen. */
export type ResolvedCapabilities = Readonly<Required<FactoryCapabilities>>

/**
 * Reads `factory.capabilities` once, at registration, and refuses a declaration that the
 * factory's methods contradict: the plugin never guesses a kind from a missing method.
 */
export function resolveCapabilities (factory: SessionFactory<any>): ResolvedCapabilities {
  // Only `true` declares: anything else (left out, false, a typo's value) is false.
  const flags = (factory.capabilities ?? {}) as Record<string, unknown>
  const capabilities: ResolvedCapabilities = Object.freeze({
    destroyReports: flags.destroyReports === true,
    userIndex: flags.userIndex === true,
    stateless: flags.stateless === true,
    selfAuthenticatingIds: flags.selfAuthenticatingIds === true
  })
  const has = (method: keyof SessionFactory): boolean => typeof factory[method] === 'function'
  const problems: string[] = []
  if (capabilities.userIndex && !has('sessionsOf')) {
    problems.push('/factory declares capabilities: { userIndex: true } but has no sessionsOf(userId) method: implement it (and revokeUser), or drop the declaration')
  }
  if (!capabilities.userIndex && has('sessionsOf')) {
    problems.push('/factory has a sessionsOf() method but does not declare its user index: add capabilities: { userIndex: true }')
  }
  if (capabilities.destroyReports && !has('destroy')) {
    problems.push('/factory declares capabilities: { destroyReports: true } but has no destroy(id) method: implement it, or drop the declaration')
  }
  if (capabilities.stateless && has('touch')) {
    problems.push('/factory declares capabilities: { stateless: true } and has a touch() method: a stateless factory is rolled by a save, so drop touch() or the declaration')
  }
  if (capabilities.stateless && capabilities.userIndex) {
    problems.push('/factory declares capabilities: { stateless: true, userIndex: true }: a stateless factory keeps no record to index, so drop one of them')
  }
  if (problems.length > 0) throw new InvalidOptions(problems.join('; '))
  return capabilities
}
