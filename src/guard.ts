import { tracingChannel, type TracingChannel } from 'node:diagnostics_channel'
import type { FastifyRequest } from 'fastify'
import { Deadlines } from './deadlines.js'
import { SessionGone, StoreUnavailable } from './errors.js'
import type { MaybePromise, SessionFactory } from './factory.js'
import { redactIds } from './redact.js'
import { internals } from './session.js'

export type FactoryMethod = 'load' | 'save' | 'destroy' | 'touch' | 'sessionsOf' | 'revokeUser'

/** What a tracing subscriber gets for one factory call: never a session id, a cookie or data. */
export interface FactoryCallContext {
  operation: FactoryMethod
  /** The factory's class name (`RedisFactory`, or `Object` for a literal). */
  factory: string
  /** The request the call serves; undefined outside a route (`app.sessions`). */
  request: FastifyRequest | undefined
  /** Set before the `error` event: FST_SESSION_STORE_UNAVAILABLE, its cause without the id. */
  error?: unknown
}

// One TracingChannel per factory method (start, end, asyncStart, asyncEnd, error), as Node's own are named.
const channels: Record<FactoryMethod, TracingChannel<unknown, FactoryCallContext>> = {
  load: tracingChannel('fastify-session-factory:load'),
  save: tracingChannel('fastify-session-factory:save'),
  destroy: tracingChannel('fastify-session-factory:destroy'),
  touch: tracingChannel('fastify-session-factory:touch'),
  sessionsOf: tracingChannel('fastify-session-factory:sessionsOf'),
  revokeUser: tracingChannel('fastify-session-factory:revokeUser')
}

export function isThenable (value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null)?.then === 'function'
}

/** Runs `next` on the value now, or once the promise settles. */
export function then<T, R> (value: MaybePromise<T>, next: (value: T) => MaybePromise<R>): MaybePromise<R> {
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
  readonly #name: string

  constructor (factory: SessionFactory<any>, storeTimeout: number) {
    this.factory = factory
    this.#deadlines = new Deadlines(storeTimeout)
    const name: unknown = (factory as { constructor?: { name?: unknown } }).constructor?.name
    this.#name = typeof name === 'string' && name !== '' ? name : 'Object'
  }

  /**
   * Calls the factory; traced on `fastify-session-factory:<method>` only while someone subscribes.
   * An optional method the factory lacks is not called: the answer is undefined.
   */
  call<T> (method: FactoryMethod, arg: unknown, request?: FastifyRequest, second?: unknown): MaybePromise<T> {
    if (this.factory[method] === undefined) return undefined as T
    const channel = channels[method]
    if (channel.hasSubscribers) return this.#traced(channel, { operation: method, factory: this.#name, request }, arg, second)
    return this.#call(method, arg, second)
  }

  /**
   * The events of TracingChannel#tracePromise (a call is over at asyncEnd, or at end after a
   * synchronous throw), but a synchronous answer gets them at once, with no promise made; they
   * wrap the guarded call: a timeout is an error event, and the error carries no id.
   */
  #traced<T> (channel: TracingChannel<unknown, FactoryCallContext>, context: FactoryCallContext, arg: unknown, second: unknown): MaybePromise<T> {
    return channel.start.runStores(context, () => {
      let answer: MaybePromise<T>
      try {
        answer = this.#call<T>(context.operation, arg, second)
      } catch (error) {
        context.error = error
        channel.error.publish(context)
        throw error
      } finally {
        channel.end.publish(context)
      }
      if (!isThenable(answer)) {
        channel.asyncStart.publish(context)
        channel.asyncEnd.publish(context)
        return answer
      }
      return (answer as Promise<T>).then((value) => {
        channel.asyncStart.publish(context)
        channel.asyncEnd.publish(context)
        return value
      }, (error: unknown) => {
        context.error = error
        channel.error.publish(context)
        channel.asyncStart.publish(context)
        channel.asyncEnd.publish(context)
        throw error
      })
    })
  }

  #call<T> (method: FactoryMethod, arg: unknown, second: unknown): MaybePromise<T> {
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
