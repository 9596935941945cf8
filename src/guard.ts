import { Deadlines } from './deadlines.js'
import { SessionGone, StoreUnavailable } from './errors.js'
import type { SessionFactory } from './factory.js'
import { redactIds } from './redact.js'
import { internals } from './session.js'

export type FactoryMethod = 'load' | 'save' | 'destroy' | 'touch' | 'sessionsOf' | 'revokeUser'

/** A value or a promise of it: what the plugin's steps return, so a synchronous factory pays no promise. */
export type Maybe<T> = T | Promise<T>

export function isThenable (value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null)?.then === 'function'
}

/** Runs `next` on the value now, or once the promise settles. */
export function then<T, R> (value: Maybe<T>, next: (value: T) => Maybe<R>): Maybe<R> {
  return isThenable(value) ? (value as Promise<T>).then(next) : next(value as T)
}

/**
 * The one path every factory call takes, whatever the factory: a value, a thenable or a throw;
 * the result checked; ids redacted from the cause; the `storeTimeout` deadline only for a call
 * still pending. Any fault becomes FST_SESSION_STORE_UNAVAILABLE.
 */
export class FactoryGuard {
  readonly factory: SessionFactory<any>
  readonly #deadlines: Deadlines

  constructor (factory: SessionFactory<any>, storeTimeout: number) {
    this.factory = factory
    this.#deadlines = new Deadlines(storeTimeout)
  }

  call<T> (method: FactoryMethod, arg: unknown, second?: unknown): Maybe<T> {
    const id = typeof arg === 'string' ? arg : (arg as { id?: unknown }).id
    // revokeUser's second argument is the id of the session kept signed in.
    const ids = second === undefined ? [id] : [id, second]
    let answer: unknown
    try {
      answer = second === undefined
        ? (this.factory[method] as (arg: unknown) => unknown)(arg)
        : (this.factory[method] as (arg: unknown, second: unknown) => unknown)(arg, second)
    } catch (cause) {
      throw unavailable(cause, ids)
    }
    if (!isThenable(answer)) return checked(method, answer) as T
    return new Promise<T>((resolve, reject) => {
      const watched = this.#deadlines.watch(method, reject)
      answer.then((value) => {
        if (!this.#deadlines.settle(watched)) return
        try {
          resolve(checked(method, value) as T)
        } catch (error) {
          reject(error)
        }
      }, (cause: unknown) => {
        if (this.#deadlines.settle(watched)) reject(unavailable(cause, ids))
      })
    })
  }

  close (): void {
    this.#deadlines.close()
  }
}

/** A factory's fault as a 503, its ids redacted; FST_SESSION_GONE (a refused rotation) is an answer, not a fault. */
function unavailable (cause: unknown, ids: unknown[]): Error {
  if (cause instanceof SessionGone) return cause
  return new StoreUnavailable({ cause: redactIds(cause, ids) })
}

// A factory that breaks its contract is a faulty store, not a reason to crash or adopt garbage.
function checked (method: FactoryMethod, value: unknown): unknown {
  let problem: string | null = null
  if (method === 'load' && value !== null && !internals.isSession(value)) {
    problem = 'factory.load() must answer a Session (built with new Session() or Session.fromJSON()) or null'
  } else if (method === 'save' && (typeof value !== 'string' || value === '')) {
    problem = 'factory.save() must answer a non-empty string id'
  } else if (method === 'sessionsOf' && !Array.isArray(value)) {
    problem = 'factory.sessionsOf() must answer an array'
  }
  if (problem !== null) throw new StoreUnavailable({ cause: new TypeError(problem) })
  return value
}
