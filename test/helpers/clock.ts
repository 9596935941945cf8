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
