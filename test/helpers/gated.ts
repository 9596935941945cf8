// A factory whose chosen calls wait at a gate the test opens (the call goes on to the real
// factory) or fails (the call rejects with the test's error): a store that answers late or
// refuses, at exactly the moment the test picks, without a sleep.
import type { SessionFactory } from '../../src/index.js'

export type GatedMethod = 'load' | 'save' | 'destroy' | 'touch' | 'sessionsOf'

/** A factory call held at the gate. */
export interface HeldCall {
  readonly method: GatedMethod
  /** What the call was given: an id, a Session, or a user id. */
  readonly arg: unknown
  /** Lets the call reach the inner factory; settles (never rejects) once its answer was passed on. */
  release: () => Promise<void>
  /** Rejects the call with `error`; the inner factory never sees it. */
  fail: (error: unknown) => void
}

export class Gates {
  readonly factory: SessionFactory<any>
  readonly #held = new Set<GatedMethod>()
  readonly #arrived: HeldCall[] = []
  readonly #waiting: Array<{ method: GatedMethod, take: (call: HeldCall) => void }> = []

  constructor (readonly inner: SessionFactory<any>) {
    const factory: SessionFactory<any> = {
      capabilities: inner.capabilities,
      load: (id) => this.#call('load', id),
      save: (session) => this.#call('save', session)
    }
    // Optional methods stay absent when the inner factory has none.
    if (inner.destroy !== undefined) factory.destroy = (id) => this.#call('destroy', id)
    if (inner.touch !== undefined) factory.touch = (session) => this.#call('touch', session)
    if (inner.sessionsOf !== undefined) factory.sessionsOf = (userId) => this.#call('sessionsOf', userId)
    if (inner.close !== undefined) factory.close = () => inner.close!()
    this.factory = factory
  }

  /** From now on, calls of these methods wait at the gate. */
  hold (...methods: GatedMethod[]): void {
    for (const method of methods) this.#held.add(method)
  }

  /** From now on, calls of these methods go straight through (calls already held stay held). */
  pass (...methods: GatedMethod[]): void {
    for (const method of methods) this.#held.delete(method)
  }

  /** The next held call of `method`: one that arrived already, or the next to arrive. */
  next (method: GatedMethod): Promise<HeldCall> {
    const index = this.#arrived.findIndex((call) => call.method === method)
    if (index !== -1) return Promise.resolve(this.#arrived.splice(index, 1)[0] as HeldCall)
    return new Promise((resolve) => { this.#waiting.push({ method, take: resolve }) })
  }

  /** Held calls nobody has taken with next() yet. */
  get waiting (): number {
    return this.#arrived.length
  }

  #call (method: GatedMethod, arg: unknown): any {
    const run = (): unknown => (this.inner[method] as (arg: unknown) => unknown).call(this.inner, arg)
    if (!this.#held.has(method)) return run()
    return new Promise((resolve, reject) => {
      let settled = false
      const call: HeldCall = {
        method,
        arg,
        release: async () => {
          if (settled) throw new Error(`${method}: released or failed twice`)
          settled = true
          try {
            resolve(await run())
          } catch (error) {
            reject(error)
          }
        },
        fail: (error) => {
          if (settled) throw new Error(`${method}: released or failed twice`)
          settled = true
          reject(error)
        }
      }
      const waiter = this.#waiting.findIndex((w) => w.method === method)
      if (waiter === -1) this.#arrived.push(call)
      else this.#waiting.splice(waiter, 1)[0]?.take(call)
    })
  }
}

/** Every unhandled rejection while the test runs (the listener goes at teardown). */
export function unhandledRejections (t: { teardown: (fn: () => void) => void }): unknown[] {
  const seen: unknown[] = []
  const listener = (reason: unknown): void => { seen.push(reason) }
  process.on('unhandledRejection', listener)
  t.teardown(() => { process.off('unhandledRejection', listener) })
  return seen
}

/** Lets pending callbacks and promise jobs run (Node reports unhandled rejections by then). */
export function turn (): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

/** Tracks whether a promise has settled yet, without handling its rejection for the caller. */
export function watch<T> (promise: Promise<T>): { promise: Promise<T>, readonly settled: boolean } {
  let settled = false
  promise.then(() => { settled = true }, () => { settled = true })
  return { promise, get settled () { return settled } }
}
