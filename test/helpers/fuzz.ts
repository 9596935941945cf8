import fc from 'fast-check'

// Fixed by default so CI is reproducible; FC_SEED / FC_PATH / FC_RUNS replay or widen a run.
const SEED = process.env.FC_SEED === undefined ? 20_251_127 : Number(process.env.FC_SEED)
const PATH = process.env.FC_PATH
const RUNS_FACTOR = process.env.FC_RUNS_FACTOR === undefined ? 1 : Number(process.env.FC_RUNS_FACTOR)

/** The parameters every property runs with: a fixed seed, a bounded number of runs. */
export function fuzzParameters<T> (numRuns: number): fc.Parameters<T> {
  return {
    seed: SEED,
    numRuns: Math.max(1, Math.round(numRuns * RUNS_FACTOR)),
    ...(PATH === undefined ? {} : { path: PATH }),
    // Shrinking on a loaded box must not outlive tap's timeout.
    interruptAfterTimeLimit: 45_000,
    markInterruptAsFailure: false
  }
}

/** Runs a property; a failure names the seed and path to replay it with (FC_SEED=… FC_PATH=…). */
export async function checkProperty<T> (property: fc.IAsyncProperty<T> | fc.IProperty<T>, numRuns: number): Promise<void> {
  const details = await fc.check(property as fc.IAsyncProperty<T>, fuzzParameters<T>(numRuns))
  if (details.failed) {
    const replay = `replay with FC_SEED=${details.seed} FC_PATH="${details.counterexamplePath ?? ''}"`
    throw new Error(`${fc.defaultReportMessage(details) ?? 'property failed'}\n${replay}`, { cause: details.errorInstance })
  }
}
