import type { SessionBase } from './session-base.js'
import { MAX_AGE_KEY } from './session-data.js'

/** The key under which a session, or its view, answers the session itself (past the traps). */
export const kView = Symbol('fastify-session-factory.view')

// The fields a factory and the plugin write; every other member is a method or a read-only getter.
const FIELDS = new Set(['id', 'expiresAt', 'createdAt', 'touchedAt', 'filedUnder'])

/** A method as the view hands it out: it runs on the session behind the view it is called on. */
type ViewMethod = (this: { [kView]: SessionBase<any> }, a?: unknown, b?: unknown) => unknown

/**
 * The traps of a session's property view: a Session member is the member (its methods bound to
 * the session, once, here); any other name is a data key, read, written and deleted through the
 * tracked methods. `assertOpen` throws when the session no longer takes changes.
 */
export function viewTraps (prototype: SessionBase<any>, assertOpen: (session: SessionBase<any>) => void): ProxyHandler<SessionBase<any>> {
  const methods = new Map<string, ViewMethod>()
  for (const name of Object.getOwnPropertyNames(prototype)) {
    const method = Object.getOwnPropertyDescriptor(prototype, name)?.value as unknown
    if (name === 'constructor' || typeof method !== 'function') continue
    methods.set(name, function (this: { [kView]: SessionBase<any> }, a, b) { return method.call(this[kView], a, b) })
  }
  return {
    get (target, key) {
      if (typeof key === 'symbol') return key === kView ? target : Reflect.get(target, key, target)
      const method = methods.get(key)
      if (method !== undefined) return method
      if (key in target) return (target as unknown as Record<string, unknown>)[key]
      return target.get(key)
    },
    set (target, key, value) {
      if (typeof key === 'symbol') return Reflect.set(target, key, value, target)
      if (FIELDS.has(key)) {
        assertOpen(target)
        ;(target as unknown as Record<string, unknown>)[key] = value
        return true
      }
      if (key in target) throw new TypeError(`session.${key} is a method or a read-only field of the session, not a data key: store data under this name with session.set('${key}', value) and read it with session.get('${key}')`)
      target.set(key, value)
      return true
    },
    deleteProperty (target, key) {
      if (typeof key === 'symbol' || key in target) return false
      target.delete(key)
      return true
    },
    has: (target, key) => key in target || (typeof key === 'string' && target.has(key)),
    ownKeys: (target) => Object.keys(target.data).filter((key) => key !== MAX_AGE_KEY),
    getOwnPropertyDescriptor (target, key) {
      if (typeof key === 'symbol' || key in target || !target.has(key)) return undefined
      return { value: target.get(key), writable: true, enumerable: true, configurable: true }
    },
    defineProperty (target, key, descriptor) {
      if (typeof key === 'symbol' || key in target || !('value' in descriptor)) return false
      target.set(key, descriptor.value)
      return true
    }
  }
}
