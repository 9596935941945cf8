import { StoreUnavailable } from './errors.js'
import { readTimestamp, type Session } from './session.js'

/** The idle and absolute timeouts of one registration: when a session is dead, when it expires, how often it is touched. */
export class Timeouts {
  readonly #idleMs: number
  readonly #absoluteMs: number
  /** At most one touch (and one rolling cookie refresh) per tenth of the idle timeout. */
  readonly #touchEveryMs: number

  /** Both in seconds, as the options give them. */
  constructor (idleTimeout: number, absoluteTimeout: number) {
    this.#idleMs = idleTimeout * 1000
    this.#absoluteMs = absoluteTimeout * 1000
    this.#touchEveryMs = this.#idleMs / 10
  }

  /** Whether a loaded session is past either timeout; its timestamps are read as numbers on the way. */
  isExpired (session: Session, now: number): boolean {
    // Fails closed: a missing timestamp is NaN, and NaN is never "recent enough". Present but
    // not a number (nor a numeric string) is a corrupt record: 503.
    let touchedAt: number, createdAt: number
    try {
      touchedAt = readTimestamp(session.touchedAt, 'touchedAt')
      createdAt = readTimestamp(session.createdAt, 'createdAt')
    } catch (cause) {
      throw new StoreUnavailable({ cause })
    }
    session.touchedAt = touchedAt
    session.createdAt = createdAt
    return !(now - touchedAt < this.#idleMs && now - createdAt < this.#absoluteMs)
  }

  /** When a session saved or touched now expires (epoch ms): the earlier of its idle and absolute expiry. */
  expiresAt (session: Session, now: number): number {
    return Math.min(now + this.#idleMs, session.createdAt + this.#absoluteMs)
  }

  /** How often an unchanged session is touched: a tenth of the idle timeout, or of a shorter persistent cookie's life. */
  touchEvery (maxAge: number | undefined): number {
    // At most one touch a second, however short the cookie's life.
    return maxAge === undefined ? this.#touchEveryMs : Math.min(this.#touchEveryMs, Math.max(maxAge * 100, 1000))
  }
}
