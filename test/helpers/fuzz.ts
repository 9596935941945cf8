import { randomInt } from 'node:crypto'
import fc from 'fast-check'

// Fixed by default so CI is reproducible (the model test draws its own, see freshSeed);
// FC_SEED / FC_PATH / FC_RUNS_FACTOR replay or widen a run.
const SEED = process.env.FC_SEED === undefined ? 20_251_127 : Number(process.env.FC_SEED)
const PATH = process.env.FC_PATH
const RUNS_FACTOR = process.env.FC_RUNS_FACTOR === undefined ? 1 : Number(process.env.FC_RUNS_FACTOR)

/** FC_SEED when it is set (a replay), otherwise a seed drawn now: new cases on every run. */
export function freshSeed (): number {
  return process.env.FC_SEED === undefined ? randomInt(2 ** 31) : SEED
}

/** The parameters every property runs with: a fixed seed unless given one, a bounded number of runs. */
export function fuzzParameters<T> (numRuns: number, seed = SEED): fc.Parameters<T> {
  return {
    seed,
    numRuns: Math.max(1, Math.round(numRuns * RUNS_FACTOR)),
    ...(PATH === undefined ? {} : { path: PATH }),
    // Shrinking on a loaded box must not outlive tap's timeout.
    interruptAfterTimeLimit: 45_000,
    markInterruptAsFailure: false
  }
}

/** Runs a property; a failure names the seed and path to replay it with (FC_SEED=… FC_PATH=…). */
export async function checkProperty<T> (property: fc.IAsyncProperty<T> | fc.IProperty<T>, numRuns: number, seed = SEED): Promise<void> {
  const details = await fc.check(property as fc.IAsyncProperty<T>, fuzzParameters<T>(numRuns, seed))
  if (details.failed) {
    const replay = `replay with FC_SEED=${details.seed} FC_PATH="${details.counterexamplePath ?? ''}"`
    throw new Error(`${fc.defaultReportMessage(details) ?? 'property failed'}\n${replay}`, { cause: details.errorInstance })
  }
}
