import { createHash } from 'node:crypto'

/** What a log may show of a session id: a short hash, enough to tell two lines apart. */
export function idHash (id: string): string {
  return createHash('sha256').update(id).digest('base64url').slice(0, 8)
}

/**
 * A factory's fault may name the session it failed on, and it is logged as the cause of the 503.
 * Replaces the id with its short hash in the cause: a string, or an error's message, stack and
 * causes, or an object's properties. Objects are changed in place, so an error keeps its
 * identity, class and code.
 */
export function redactId<T> (cause: T, id: unknown): T {
  if (typeof id !== 'string' || id === '') return cause
  return scrub(cause, id, `[session #${idHash(id)}]`, 0) as T
}

function scrub (value: unknown, id: string, mark: string, depth: number): unknown {
  if (typeof value === 'string') return value.includes(id) ? value.replaceAll(id, mark) : value
  if (typeof value !== 'object' || value === null || depth > 4) return value
  for (const key of new Set([...Object.keys(value), 'message', 'stack', 'cause'])) {
    const inner: unknown = (value as Record<string, unknown>)[key]
    const clean = scrub(inner, id, mark, depth + 1)
    // Reflect.set: a frozen error stays as it is rather than throwing inside the rejection.
    if (clean !== inner) Reflect.set(value, key, clean)
  }
  return value
}
