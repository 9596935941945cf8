// The example's user table. A real app would look people up in its database and keep password hashes.
import { createHash, timingSafeEqual } from 'node:crypto'

const DEMO_USERS: ReadonlyMap<string, string> = new Map([['alice', 'wonderland'], ['bob', 'builder']])

function digest (text: string): Buffer {
  return createHash('sha256').update(text).digest()
}

/** True when the password is right; compares digests in constant time so timing tells nothing. */
export function checkPassword (username: string, password: string): boolean {
  const expected = DEMO_USERS.get(username)
  // An unknown name costs the same comparison as a known one.
  const same = timingSafeEqual(digest(expected ?? ''), digest(password))
  return expected !== undefined && same
}
