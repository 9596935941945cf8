import { createHash } from 'node:crypto'

/** What a log may show of a session id: a short hash, enough to tell two lines apart. */
export function idHash (id: string): string {
  return createHash('sha256').update(id).digest('base64url').slice(0, 8)
}

// A cause chain is walked to its end; other nesting (an error's `detail.query.args`...) this deep.
const MAX_DEPTH = 20
// Keys a logger reads that an error may hold as non-enumerable own or prototype properties.
const ERROR_KEYS = ['message', 'stack', 'name', 'code', 'cause', 'errors']
// Keys whose values stay at the same depth: a chain of causes is followed however long it is.
const CHAIN_KEYS = new Set(['cause', 'errors'])
// How an Error holds these: not enumerable (`code` is, so that a logger prints it).
const HIDDEN_KEYS = new Set(['message', 'stack', 'name', 'cause', 'errors'])

/**
 * A factory's fault may name the session it failed on, and it is logged as the cause of the 503.
 * Replaces the id with its short hash in the cause: a string, or an error's message, stack,
 * causes and aggregated errors, or an object's properties, however deep the cause chain goes.
 * Objects are changed in place, so an error keeps its identity, class and code; one that cannot
 * be (frozen, a read-only message) is replaced by a redacted copy: an Error of the same name,
 * with its code. One that cannot be walked at all becomes an Error that says so.
 */
export function redactId<T> (cause: T, id: unknown): T {
  return redactIds(cause, [id])
}

/**
 * `redactId` for several ids at once: what a call about many sessions (a user's index) may
 * carry in its error, such as the arguments of the command that failed.
 */
export function redactIds<T> (cause: T, ids: readonly unknown[]): T {
  // Longest first: an id that holds another is replaced whole.
  const known = [...new Set(ids.filter((id): id is string => typeof id === 'string' && id !== ''))].sort((a, b) => b.length - a.length)
  if (known.length === 0) return cause
  const scrubber = new Scrubber(known)
  try {
    return scrubber.scrub(cause, 0) as T
  } catch {
    // A chain deep enough to exhaust the stack (or a proxy that throws): fail closed.
    return new Error(`${scrubber.mark}: the factory's error could not be redacted, so it is not logged`) as T
  }
}

class Scrubber {
  readonly #ids: string[]
  readonly #marks: string[]
  readonly mark: string
  /** Each object walked, and what stands for it: itself, or its copy (cycles end here). */
  readonly #done = new WeakMap<object, unknown>()

  constructor (ids: string[]) {
    this.#ids = ids
    this.#marks = ids.map((id) => `[session #${idHash(id)}]`)
    this.mark = this.#marks.length === 1 ? this.#marks[0] as string : '[sessions]'
  }

  scrub (value: unknown, depth: number): unknown {
    if (typeof value === 'string') return this.#scrubText(value)
    if (!walkable(value)) return value
    if (this.#done.has(value)) return this.#done.get(value)
    if (depth > MAX_DEPTH) return value
    const entries = readable(value)
    const copy = entries.some(([key, inner]) => this.#mayChange(inner) && !replaceable(value, key))
      ? shell(value)
      : null
    const target = copy ?? value
    this.#done.set(value, target)
    for (const [key, inner] of entries) {
      const clean = this.scrub(inner, CHAIN_KEYS.has(key) ? depth : depth + 1)
      if (copy !== null) place(copy, key, clean, value)
      else if (clean !== inner) replace(value, key, clean)
    }
    return target
  }

  #scrubText (text: string): string {
    for (let i = 0; i < this.#ids.length; i++) {
      const id = this.#ids[i] as string
      if (text.includes(id)) text = text.replaceAll(id, this.#marks[i] as string)
    }
    return text
  }

  #holdsId (text: string): boolean {
    return this.#ids.some((id) => text.includes(id))
  }

  /** Whether scrubbing could give something else: a string naming the id, or any object. */
  #mayChange (value: unknown): boolean {
    return typeof value === 'string' ? this.#holdsId(value) : walkable(value)
  }
}

/** An object whose properties are walked; a Buffer's bytes are numbers, not text, and may be millions. */
function walkable (value: unknown): value is object {
  return typeof value === 'object' && value !== null && !ArrayBuffer.isView(value)
}

/** The properties a logger may read: enumerable ones (own and inherited) and an error's own keys. */
function readable (value: object): Array<[string, unknown]> {
  const keys = new Set<string>()
  for (const key in value) keys.add(key)
  for (const key of ERROR_KEYS) keys.add(key)
  const entries: Array<[string, unknown]> = []
  for (const key of keys) {
    let inner: unknown
    try {
      inner = (value as Record<string, unknown>)[key]
    } catch {
      // A getter that throws: a logger reading it fails as well, with nothing of it printed.
      continue
    }
    if (inner !== undefined) entries.push([key, inner])
  }
  return entries
}

/** Whether `key` of `value` can be given a new value where it is (a setter is not trusted to). */
function replaceable (value: object, key: string): boolean {
  const own = Object.getOwnPropertyDescriptor(value, key)
  if (own === undefined) return Object.isExtensible(value)
  return own.configurable === true || own.writable === true
}

function replace (value: object, key: string, clean: unknown): void {
  const own = Object.getOwnPropertyDescriptor(value, key)
  if (own?.writable === true) {
    (value as Record<string, unknown>)[key] = clean
  } else {
    // A prototype getter (a DOMException's message) is shadowed; a read-only own property redefined.
    Object.defineProperty(value, key, { value: clean, writable: true, configurable: true, enumerable: own?.enumerable ?? false })
  }
}

/** The object a redacted copy is built in: an Error for anything error-like, else an array or object. */
function shell (value: object): object {
  if (Array.isArray(value)) return []
  if (value instanceof Error || typeof (value as { message?: unknown }).message === 'string') {
    const copy = new Error()
    // No stack invented: the original's, redacted, is set if it had one.
    delete copy.stack
    return copy
  }
  return {}
}

/** Puts a property in the copy; inherited ones (a DOMException's constants) stay behind. */
function place (copy: object, key: string, clean: unknown, original: object): void {
  const own = Object.getOwnPropertyDescriptor(original, key)
  if (own === undefined && !ERROR_KEYS.includes(key)) return
  const enumerable = own?.enumerable ?? !HIDDEN_KEYS.has(key)
  Object.defineProperty(copy, key, { value: clean, writable: true, configurable: true, enumerable })
}
