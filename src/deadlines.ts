import { StoreUnavailable } from './errors.js'
import { LinkedList, type Linked } from './list.js'

/** A factory call in flight, linked in call order (oldest first) so expiry only looks at the head. */
export interface Watched extends Linked<Watched> {
  readonly method: string
  readonly deadline: number
  readonly fail: (error: Error) => void
  /** Its deadline passed and `fail` got FST_SESSION_STORE_UNAVAILABLE: whatever the factory answers later is ignored. */
  expired: boolean
}

/**
 * The `storeTimeout` of every factory call, on the monotonic clock (a wall-clock step must not
 * fail calls in flight), kept by one coarse interval instead of a timer per
 * call: a call fails at most a tenth of the timeout late, and never early. The interval runs
 * only while calls are in flight, and is not unref'd: a hung call keeps the process up until it
 * has failed, as a timer of its own would.
 */
export class Deadlines {
  readonly #timeoutMs: number
  readonly #tickMs: number
  readonly #calls = new LinkedList<Watched>()
  #timer: NodeJS.Timeout | null = null

  constructor (timeoutMs: number) {
    this.#timeoutMs = timeoutMs
    this.#tickMs = Math.min(1000, Math.ceil(timeoutMs / 10))
  }

  watch (method: string, fail: (error: Error) => void): Watched {
    const entry: Watched = { method, deadline: performance.now() + this.#timeoutMs, fail, prev: null, next: null, expired: false }
    this.#calls.push(entry)
    this.#timer ??= setInterval(() => this.#expire(), this.#tickMs)
    return entry
  }

  /** Takes a call that answered off the list; false when it had already expired. */
  settle (entry: Watched): boolean {
    if (entry.expired) return false
    this.#calls.remove(entry)
    return true
  }

  close (): void {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
  }

  #expire (): void {
    const now = performance.now()
    for (let entry = this.#calls.head; entry !== null && entry.deadline <= now; entry = this.#calls.head) {
      this.#calls.remove(entry)
      entry.expired = true
      entry.fail(new StoreUnavailable({
        cause: new Error(`factory.${entry.method}() took longer than storeTimeout (${this.#timeoutMs} ms)`)
      }))
    }
    // Nothing in flight: stop ticking until the next call.
    if (this.#calls.head === null) this.close()
  }
}
