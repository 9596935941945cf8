import type { Test } from 'tap'

/** Freezes Date.now() for one test and lets it move forward by hand (timers keep real time). */
export function fakeClock (t: Test, start = Date.now()): { advance: (ms: number) => void, now: () => number } {
  const realNow = Date.now
  let now = start
  Date.now = () => now
  t.teardown(() => {
    Date.now = realNow
  })
  return {
    advance (ms) {
      now += ms
    },
    now: () => now
  }
}

/**
 * A clock the test moves by hand. The plugin and MemoryFactory read time only through
 * `Date.now()`, so this replaces just that: setTimeout (storeTimeout) keeps real time and never hangs.
 */
export class FakeClock {
  readonly #real = Date.now
  now: number

  constructor (start = Date.UTC(2030, 0, 1)) {
    this.now = start
    Date.now = () => this.now
  }

  advance (ms: number): void {
    this.now += ms
  }

  restore (): void {
    Date.now = this.#real
  }
}
