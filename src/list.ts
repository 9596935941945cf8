/** An entry that carries its own links, so joining or leaving a list allocates nothing. */
export interface Linked<T> {
  prev: T | null
  next: T | null
}

/**
 * A doubly linked list of such entries, from the first pushed to the last: append, removal of
 * any entry and a look at either end, each in constant time.
 */
export class LinkedList<T extends Linked<T>> {
  #head: T | null = null
  #tail: T | null = null

  get head (): T | null {
    return this.#head
  }

  push (entry: T): void {
    entry.prev = this.#tail
    entry.next = null
    if (this.#tail === null) this.#head = entry
    else this.#tail.next = entry
    this.#tail = entry
  }

  remove (entry: T): void {
    if (entry.prev === null) this.#head = entry.next
    else entry.prev.next = entry.next
    if (entry.next === null) this.#tail = entry.prev
    else entry.next.prev = entry.prev
    entry.prev = entry.next = null
  }
}
