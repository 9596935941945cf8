import { setTimeout as sleep } from 'node:timers/promises'
import { MemoryFactory, Session, type FactoryCapabilities, type SessionFactory } from '../../src/index.js'

/** Records every factory call by method name (ids are not kept, as in production logs). */
export class CountingFactory<F extends SessionFactory<any>> implements SessionFactory<any> {
  calls: string[] = []
  constructor (readonly inner: F = new MemoryFactory() as unknown as F) {}

  /** What the inner factory declared, but a user index: this wrapper has no sessionsOf. */
  get capabilities (): FactoryCapabilities {
    return { ...this.inner.capabilities, userIndex: false }
  }

  count (method: string): number {
    return this.calls.filter((c) => c === method).length
  }

  async load (id: string): Promise<Session<any> | null> {
    this.calls.push('load')
    return await this.inner.load(id)
  }

  async save (session: Session<any>): Promise<string> {
    this.calls.push('save')
    return await this.inner.save(session)
  }

  async destroy (id: string): Promise<boolean | void> {
    this.calls.push('destroy')
    return await this.inner.destroy?.(id)
  }

  async touch (session: Session<any>): Promise<void> {
    this.calls.push('touch')
    await this.inner.touch?.(session)
  }
}

/** The seed's way: `load` builds a Session, `save` returns the id; JSON in between, as a real store. */
export class SeedStyleFactory implements SessionFactory<any> {
  readonly rows = new Map<string, string>()

  async load (id: string): Promise<Session<any> | null> {
    const row = this.rows.get(id)
    return row === undefined ? null : Session.fromJSON(JSON.parse(row))
  }

  async save (session: Session<any>): Promise<string> {
    this.rows.set(session.id as string, JSON.stringify(session))
    return session.id as string
  }

  async destroy (id: string): Promise<void> {
    this.rows.delete(id)
  }
}

/** A user's factory that answers synchronously (values, never promises); JSON in between, as a real store. */
export class SyncJsonFactory implements SessionFactory<any> {
  readonly rows = new Map<string, string>()

  load (id: string): Session<any> | null {
    const row = this.rows.get(id)
    return row === undefined ? null : Session.fromJSON(JSON.parse(row))
  }

  save (session: Session<any>): string {
    this.rows.set(session.id as string, JSON.stringify(session))
    return session.id as string
  }

  destroy (id: string): boolean {
    return this.rows.delete(id)
  }
}

export type Fault = 'throw' | 'reject' | 'hang' | 'slow' | 'garbage'

/** A factory that fails the chosen methods in the chosen way, and otherwise behaves. */
export class FaultyFactory implements SessionFactory<any> {
  readonly inner = new MemoryFactory()
  faults: Partial<Record<'load' | 'save' | 'destroy' | 'touch', Fault>> = {}
  slowMs = 200

  async #maybeFail<T> (method: 'load' | 'save' | 'destroy' | 'touch', run: () => T | Promise<T>): Promise<T> {
    const fault = this.faults[method]
    if (fault === 'reject') throw new Error(`${method} rejected`)
    if (fault === 'hang') return new Promise<T>(() => {})
    if (fault === 'slow') {
      await sleep(this.slowMs)
      return run()
    }
    if (fault === 'garbage') return { not: 'a session' } as T
    return run()
  }

  load (id: string): Promise<Session<any> | null> {
    if (this.faults.load === 'throw') throw new Error('load threw')
    return this.#maybeFail('load', () => this.inner.load(id))
  }

  save (session: Session<any>): Promise<string> {
    if (this.faults.save === 'throw') throw new Error('save threw')
    return this.#maybeFail('save', () => this.inner.save(session))
  }

  destroy (id: string): Promise<boolean> {
    if (this.faults.destroy === 'throw') throw new Error('destroy threw')
    return this.#maybeFail('destroy', () => this.inner.destroy(id))
  }

  touch (session: Session<any>): Promise<void> {
    if (this.faults.touch === 'throw') throw new Error('touch threw')
    return this.#maybeFail('touch', () => this.inner.touch(session))
  }
}
