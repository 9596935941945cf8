import { randomBytes } from 'node:crypto'

// One call to the CSPRNG fills many session ids and IVs: a call per slice costs more than the
// slice. Every byte is handed out once; a spent pool is replaced, never overwritten, so a slice
// stays valid for as long as its holder keeps it.
const POOL_BYTES = 4096
let pool = Buffer.alloc(0)
let offset = 0

/** `size` fresh random bytes (a view into the pool). */
export function randomSlice (size: number): Buffer {
  if (offset + size > pool.length) {
    pool = randomBytes(POOL_BYTES)
    offset = 0
  }
  offset += size
  return pool.subarray(offset - size, offset)
}
