import { CorruptRecord, NotSerializable } from './errors.js'

/**
 * What a session holds. Augment it to type your data:
 * `declare module 'fastify-session-factory' { interface SessionData { userId: string } }`
 */
export interface SessionData {
  [key: string]: any
}

/**
 * Augment with `data` to type `request.session` (and `app.sessions`) from one type, such as the
 * `schema` option's: `interface SessionTypes { data: Static<typeof schema> }`. Unlike SessionData,
 * whose index signature stays open, a key the type does not declare is then a compile error.
 */
export interface SessionTypes {}

/**
 * The data of `request.session`: SessionTypes' `data` when the app declares it, else SessionData.
 * Its keys count as present: a session is partial anyway (a new one starts empty), so
 * `get('visits', 0)` is a number whether the schema marks `visits` optional or not.
 */
export type RequestSessionData = SessionTypes extends { data: infer D extends object } ? Required<D> : SessionData

/** A session as plain JSON: what `toJSON()` gives and `fromJSON()` takes. */
export interface SessionRecord<D extends object = SessionData> {
  id: string | null
  data: Partial<D>
  createdAt: number
  touchedAt: number
  /** Epoch ms; kept by `fromJSON` so a factory's TTL survives a round trip. */
  expiresAt?: number | null
}

// Keys that could reach an object prototype if a store, or a careless copy, handed them on.
export const RESERVED = new Set(['__proto__', 'constructor', 'prototype'])

/** The data key that keeps a session's own cookie lifetime (`session.options({ maxAge })`). */
export const MAX_AGE_KEY = '$cookieMaxAge'
/** What browsers keep a cookie for at most: 400 days, in seconds. */
export const MAX_AGE_LIMIT = 34_560_000

/**
 * A stored timestamp as a number: a number as is, a numeric string (a BIGINT column) read as
 * one, a missing one NaN (which every timeout check treats as expired). Anything else present
 * is a corrupt record, never "now".
 */
export function readTimestamp (value: unknown, name: string): number {
  if (typeof value === 'number') {
    // NaN is how fromJSON spells a missing clock.
    if (Number.isFinite(value) || Number.isNaN(value)) return value
  } else if (value === undefined || value === null) {
    return Number.NaN
  } else if (typeof value === 'string' && /^-?\d+(?:\.\d+)?$/.test(value)) {
    return Number(value)
  }
  throw new CorruptRecord(`its ${name} is not a finite number`)
}

/** A stored lifetime as `options({ maxAge })` takes it; anything else is dropped (a browser-session cookie). */
export function isLifetime (value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_AGE_LIMIT
}

/**
 * A data object with nothing to inherit: what `newData()` makes has one prototype, empty, frozen
 * and itself without one, so no key reaches Object.prototype (`toString`, `__proto__` are plain
 * keys). Not `Object.create(null)`: V8 keeps such an object a dictionary, slower to read,
 * enumerate and stringify on every request; an object made by a constructor stays fast.
 */
const DataObject = function DataObject () {} as unknown as new () => Record<string, unknown>
export const DATA_PROTOTYPE: object = Object.freeze(Object.create(null))
DataObject.prototype = DATA_PROTOTYPE as Record<string, unknown>

/** An empty data object (see DataObject). */
export function newData (): Record<string, unknown> {
  return new DataObject()
}

/** A value's prototype is that of a plain object: Object.prototype, none, or a data object's. */
export function isPlainPrototype (prototype: unknown): boolean {
  return prototype === Object.prototype || prototype === null || prototype === DATA_PROTOTYPE
}

/** A session's own copy of handed-in data: nothing inherited, no reserved key, no lifetime out of range. */
export function copyData (source: unknown): Record<string, unknown> {
  const data = newData()
  if (source !== null && typeof source === 'object') {
    for (const key of Object.keys(source)) {
      const value = (source as Record<string, unknown>)[key]
      if (RESERVED.has(key) || (key === MAX_AGE_KEY && !isLifetime(value))) continue
      data[key] = value
    }
  }
  return data
}

/** Throws `FST_SESSION_NOT_SERIALIZABLE` for anything JSON would drop, mangle or choke on. */
export function assertJson (value: unknown, path: string, seen: unknown[] = []): void {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return
    case 'number':
      if (!Number.isFinite(value)) throw new NotSerializable(path, `${value} is not a finite number`)
      return
    case 'object':
      if (value === null) return
      if (seen.includes(value)) throw new NotSerializable(path, 'a cycle')
      seen.push(value)
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) assertJson(value[i], `${path}/${i}`, seen)
      } else if (typeof (value as { toJSON?: unknown }).toJSON !== 'function') {
        const proto: unknown = Object.getPrototypeOf(value)
        if (!isPlainPrototype(proto)) {
          throw new NotSerializable(path, `a ${(value as object).constructor?.name ?? 'class instance'}, which JSON turns into a plain object`)
        }
        // Keys inside a value are data (a map keyed by email, say) and this message is logged: '*'.
        for (const key of Object.keys(value)) assertJson((value as Record<string, unknown>)[key], `${path}/*`, seen)
      }
      seen.pop()
      return
    default:
      throw new NotSerializable(path, `a ${typeof value}`)
  }
}
