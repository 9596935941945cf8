import type { FastifyBaseLogger } from 'fastify'
import type { TSchema } from 'typebox'
import { Compile } from 'typebox/compile'
import { InvalidData, InvalidOptions } from './errors.js'
import { MAX_AGE_KEY, internals, type Session } from './session.js'
import { isPlainPrototype } from './session-data.js'

/** One way the data fails the schema, as `migrate` gets it: where, and what is wrong (never the value). */
export interface DataError {
  /** JSON pointer to the offending value: `/cart/items/0`; `` for the data itself. */
  instancePath: string
  message: string
  /** The JSON Schema keyword that failed (`type`, `required`, `additionalProperties`...). */
  keyword: string
}

/** The `migrate` option: the upgraded data, or null to treat the session as expired. */
export type Migrate = (data: Record<string, unknown>, errors: DataError[]) => Record<string, unknown> | null

/** What a loaded session's data is, once checked: as it was, upgraded by `migrate` (to be saved back), or dead. */
export type Admission = 'valid' | 'migrated' | 'rejected'

/** The `schema` option: compiled once, checked before every save and after every load. */
export class DataSchema {
  readonly #check: ReturnType<typeof Compile>
  readonly #migrate: Migrate | undefined

  constructor (schema: TSchema, migrate: Migrate | undefined) {
    if (!describesObject(schema)) {
      throw new InvalidOptions('/schema must describe an object (the session data), such as Type.Object({ ... })')
    }
    try {
      this.#check = Compile(schema)
    } catch (cause) {
      throw new InvalidOptions(`/schema cannot be compiled (${(cause as Error).message})`)
    }
    this.#migrate = migrate
  }

  /** Before a save: data that fails the schema throws FST_SESSION_INVALID_DATA, naming each path. */
  assertValid (session: Session<any>): void {
    const data = dataOf(session)
    if (!this.#valid(data)) throw new InvalidData(pathsOf(this.#errors(data)).join('; '))
  }

  /**
   * After a load: data that fails the schema goes through `migrate`; what it answers replaces the
   * data (a change the request then saves back). No `migrate`, a null, or an answer that still
   * fails: 'rejected', logged once at warn with the paths (never the values or the id).
   */
  admit (session: Session<any>, log: FastifyBaseLogger): Admission {
    const data = dataOf(session)
    if (this.#valid(data)) return 'valid'
    const errors = this.#errors(data)
    const migrated = this.#migrate?.({ ...data }, errors) ?? null
    // A promise (an async migrate) or a class instance would pass an all-optional schema as empty data.
    if (migrated !== null && !isPlainObject(migrated)) throw new InvalidOptions('/migrate must answer a plain object or null, synchronously')
    if (migrated !== null && this.#valid(migrated)) {
      session.clear()
      for (const key of Object.keys(migrated)) {
        if (key !== MAX_AGE_KEY && migrated[key] !== undefined) session.set(key, migrated[key])
      }
      log.debug('session: data upgraded by the migrate option, saving it back')
      return 'migrated'
    }
    const still = migrated === null ? '' : ` (migrate() answered data that still fails at ${pathsOf(this.#errors(migrated)).join(', ')})`
    log.warn(`session: stored data does not match the schema at ${pathsOf(errors).join(', ')}${still}; treated as expired`)
    return 'rejected'
  }

  // Not a type guard: the data keeps its record type whatever the answer.
  #valid (data: unknown): boolean {
    return this.#check.Check(data)
  }

  /** TypeBox's errors, a missing or unexpected key named by its own path. */
  #errors (data: unknown): DataError[] {
    const errors: DataError[] = []
    for (const error of this.#check.Errors(data)) {
      const { instancePath, keyword } = error
      // additionalProperties: false fails each extra key twice; the parent's error names it.
      if (keyword === 'boolean' && error.schemaPath.endsWith('/additionalProperties')) continue
      if (error.keyword === 'required') {
        for (const key of error.params.requiredProperties) errors.push({ instancePath: `${instancePath}/${key}`, message: 'is required', keyword })
      } else if (error.keyword === 'additionalProperties') {
        for (const key of error.params.additionalProperties) errors.push({ instancePath: `${instancePath}/${key}`, message: 'is not allowed', keyword })
      } else {
        errors.push({ instancePath, message: error.message, keyword })
      }
    }
    return errors
  }
}

function isPlainObject (value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false
  return isPlainPrototype(Object.getPrototypeOf(value))
}

/** The data a schema sees: without the key that keeps `session.options({ maxAge })`, which is ours. */
function dataOf (session: Session<any>): Record<string, unknown> {
  const data = internals.unwrap(session).data as Record<string, unknown>
  if (!(MAX_AGE_KEY in data)) return data
  const { [MAX_AGE_KEY]: _lifetime, ...rest } = data
  return rest
}

/** One entry per offending path; the last words about a path win (a union's "must match a schema in anyOf" over each branch's). */
function pathsOf (errors: DataError[]): string[] {
  const byPath = new Map<string, string>()
  for (const error of errors) byPath.set(error.instancePath || '/', error.message)
  return [...byPath].map(([path, message]) => `${path} ${message}`)
}

/** A schema whose every accepted value is an object: an object type, a union of them, or an intersection with one. */
function describesObject (schema: unknown): boolean {
  if (typeof schema !== 'object' || schema === null) return false
  const { type, anyOf, oneOf, allOf } = schema as { type?: unknown, anyOf?: unknown, oneOf?: unknown, allOf?: unknown }
  if (type === 'object') return true
  if (type !== undefined) return false
  for (const members of [anyOf, oneOf]) {
    if (Array.isArray(members)) return members.length > 0 && members.every(describesObject)
  }
  return Array.isArray(allOf) && allOf.some(describesObject)
}
