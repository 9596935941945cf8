// A factory wrapper whose calls wait at gates the test opens, one step at a time: it holds a
// request and `endAll` at any interleaving of their factory calls, without a single sleep. Each
// call is told apart by the actor that makes it: code run inside `gates.as('R', fn)` is actor R.
import { AsyncLocalStorage } from 'node:async_hooks'
import type { FastifyInstance } from 'fastify'
import type { SessionFactory } from '../../src/index.js'

export type Actor = string
/** `actor:method`, such as 'R:destroy' or 'E:sessionsOf'. */
export type Step = `${Actor}:${string}`

const GATED = ['save', 'destroy', 'touch', 'sessionsOf', 'revokeUser'] as const

interface Parked {
  step: Step
  /** Lets the call through to the factory. */
  open: () => void
  /** Settles once the factory answered (or failed). */
  done: Promise<void>
}

export class Gates {
  readonly #actor = new AsyncLocalStorage<Actor>()
  /** Calls waiting at a gate, by actor (an actor's calls come one at a time, or all at once in a Promise.all). */
  readonly #parked = new Map<Actor, Parked[]>()
  /** Steps opened for good: later calls of the step go straight through. */
  readonly #open = new Set<Step>()
  /** Actors whose work ended. */
  readonly #finished = new Set<Actor>()
  #wake: () => void = () => {}
  #changed = new Promise<void>((resolve) => { this.#wake = resolve })

  /** Runs `fn` as `actor`: its factory calls wait at their gates; the actor counts as finished when it settles. */
  as<T> (actor: Actor, fn: () => Promise<T>): Promise<T> {
    const run = this.#actor.run(actor, fn)
    const finish = (): void => {
      this.#finished.add(actor)
      this.#notify()
    }
    run.then(finish, finish)
    return run
  }

  /**
   * Makes a request with the header `x-actor: <actor>` that actor (Fastify runs a request outside
   * the caller's async context, so `as()` alone cannot reach it). Add it before the routes.
   */
  install (app: FastifyInstance): void {
    app.addHook('onRequest', (request, _reply, done) => {
      const actor = request.headers['x-actor']
      if (typeof actor === 'string') this.#actor.run(actor, done)
      else done()
    })
  }

  /** The factory, gated: calls made outside any actor, or of a method never gated, go straight through. */
  wrap (inner: SessionFactory<any>): SessionFactory<any> {
    const gated: Record<string, unknown> = { capabilities: inner.capabilities, load: (id: string) => inner.load(id) }
    for (const method of GATED) {
      const fn = (inner as unknown as Record<string, ((...args: unknown[]) => unknown) | undefined>)[method]
      if (typeof fn !== 'function') continue
      gated[method] = (...args: unknown[]) => {
        const actor = this.#actor.getStore()
        const step: Step = `${actor ?? ''}:${method}`
        if (actor === undefined || this.#open.has(step)) return fn.apply(inner, args)
        return this.#park(actor, step, () => fn.apply(inner, args))
      }
    }
    if (typeof inner.close === 'function') gated.close = () => inner.close?.()
    return gated as unknown as SessionFactory<any>
  }

  #park (actor: Actor, step: Step, call: () => unknown): Promise<unknown> {
    let open!: () => void
    const opened = new Promise<void>((resolve) => { open = resolve })
    const answer = opened.then(call)
    const parked: Parked = { step, open, done: answer.then(() => {}, () => {}) }
    const list = this.#parked.get(actor) ?? []
    list.push(parked)
    this.#parked.set(actor, list)
    this.#notify()
    return answer
  }

  #notify (): void {
    this.#wake()
    this.#changed = new Promise<void>((resolve) => { this.#wake = resolve })
  }

  /**
   * Lets `step` happen now: waits until its actor is parked at a gate or finished. Parked at this
   * step: opens it (every call of it, now and later) and waits for the factory's answers. Parked
   * at another step, or finished: this step does not come in this run (a destroy that found
   * nothing to list, say), and false says it was skipped.
   */
  async release (step: Step): Promise<boolean> {
    const actor = step.slice(0, step.indexOf(':'))
    for (;;) {
      const parked = this.#parked.get(actor) ?? []
      if (parked.length > 0) {
        if (parked[0]?.step !== step) return false
        this.#open.add(step)
        const now = parked.filter((entry) => entry.step === step)
        this.#parked.set(actor, parked.filter((entry) => entry.step !== step))
        for (const entry of now) entry.open()
        await Promise.all(now.map((entry) => entry.done))
        return true
      }
      if (this.#finished.has(actor)) return false
      await this.#changed
    }
  }

  /** Waits until a call of `step` waits at its gate, without opening it. */
  async parked (step: Step): Promise<void> {
    const actor = step.slice(0, step.indexOf(':'))
    while (!(this.#parked.get(actor) ?? []).some((entry) => entry.step === step)) await this.#changed
  }

  /** Opens every gate: whatever is parked, and every later call, goes through. */
  openAll (): void {
    for (const [actor, parked] of this.#parked) {
      for (const entry of parked) {
        this.#open.add(entry.step)
        entry.open()
      }
      this.#parked.set(actor, [])
    }
    this.#actor.disable()
  }
}

/** Every order of two sequences' steps that keeps each sequence's own order. */
export function interleavings<T> (a: readonly T[], b: readonly T[]): T[][] {
  if (a.length === 0) return [[...b]]
  if (b.length === 0) return [[...a]]
  return [
    ...interleavings(a.slice(1), b).map((rest) => [a[0] as T, ...rest]),
    ...interleavings(a, b.slice(1)).map((rest) => [b[0] as T, ...rest])
  ]
}
