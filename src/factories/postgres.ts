import { createHash } from 'node:crypto'
import { InvalidOptions, SessionGone } from '../errors.js'
import type { IndexedSession, SessionFactory } from '../factory.js'
import { generateId } from '../options.js'
import { Session, type SessionData } from '../session.js'
import { hasLoneSurrogate } from '../unicode.js'
import { LoadedUsers } from '../user.js'

/** A named prepared statement, as `pg` takes it: parsed and planned once per connection. */
export interface PostgresStatement {
  readonly name: string
  readonly text: string
}

/**
 * The one method PostgresFactory calls: a statement (its text, or with `prepare` its name and
 * text) and its values. A `pg` `Pool` has it; the factory is handed one and never creates,
 * connects or ends it.
 */
export interface PostgresPoolLike {
  query (statement: string | PostgresStatement, values: unknown[]): Promise<{ rows: any[], rowCount: number | null }>
}

export interface PostgresFactoryOptions {
  /** Your `pg.Pool`. Recommended: `connectionTimeoutMillis` and `statement_timeout`, so an outage fails fast. */
  pool: PostgresPoolLike
  /** `'name'` or `'schema.name'`, each part an unquoted identifier (kept as written, case included). Default `'fastify_sessions'`. */
  table?: string
  /** Create the table and its indexes if they are missing, before the first query. Default false. */
  createTable?: boolean
  /** Seconds between two sweeps of expired rows; 0 turns the sweep off. Default 300. */
  sweepInterval?: number
  /** Lifetime in seconds of a session saved without `expiresAt` (outside the plugin). Default 86,400. */
  ttl?: number
  /** Send named prepared statements (parsed once per connection). false behind a pooler that cannot keep them (PgBouncer's transaction mode before 1.21). Default true. */
  prepare?: boolean
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/
/** Rows one sweep statement deletes at most, and statements one sweep runs at most. */
const SWEEP_BATCH = 1000
const SWEEP_BATCHES = 10

// jsonb refuses U+0000 and lone surrogates, which JSON.stringify writes as \u escapes; JSON.stringify
// writes \u for nothing else but other control characters. A value whose JSON holds a \u escape is
// stored as its JSON text, under the one key ESC ({"\u001b": "<json>"}); a key whose JSON holds one
// is stored as ESC followed by its JSON. Nothing else holds ESC, so loading knows what to undo.
const ESC = '\u001b'
const JSON_ESC = '\\u001b'

function storedKey (key: string): string {
  const json = JSON.stringify(key)
  return json.includes('\\u') ? ESC + json : key
}

/** The JSON text of `values` (a session's data, or its changed keys) as jsonb can hold it. */
function storedJson (values: Record<string, unknown>): string {
  const json = JSON.stringify(values)
  if (!json.includes('\\u')) return json
  const stored: Record<string, unknown> = Object.create(null)
  for (const key of Object.keys(values)) {
    const value = values[key]
    const text = JSON.stringify(value)
    stored[storedKey(key)] = text !== undefined && text.includes('\\u') ? { [ESC]: text } : value
  }
  return JSON.stringify(stored)
}

/** The session data out of the stored JSON text (what `storedJson` wrote). */
function loadedData (json: string): Record<string, unknown> {
  const stored = JSON.parse(json) as Record<string, unknown>
  if (!json.includes(JSON_ESC)) return stored
  // No prototype: a "__proto__" key stays a plain property until Session.fromJSON drops it.
  const data: Record<string, unknown> = Object.create(null)
  for (const key of Object.keys(stored)) {
    const value = stored[key] as Record<string, unknown> | null
    const wrapped = typeof value === 'object' && value !== null && typeof value[ESC] === 'string'
    data[key.startsWith(ESC) ? JSON.parse(key.slice(1)) as string : key] = wrapped ? JSON.parse(value[ESC] as string) : value
  }
  return data
}

// A session id PostgreSQL cannot hold as text: U+0000, or a lone surrogate (sent as U+FFFD, so
// another id's row). No row can have it.
function unstorableId (id: string): boolean {
  return id.includes('\u0000') || hasLoneSurrogate(id)
}

/** A stored generation; null when the row was never filed. */
function generationOf (stored: string | null | undefined): number | null {
  return stored === null || stored === undefined ? null : Number(stored)
}

function seconds (value: unknown, fallback: number, min: number, name: string): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new InvalidOptions(`PostgresFactory ${name} must be an integer of at least ${min} (seconds)`)
  }
  return value
}

/** `"name"`, or `"table_suffix"` cut with a hash of the table's name when that is over 63 bytes. */
function indexName (table: string, suffix: string): string {
  const name = `${table}_${suffix}`
  if (name.length <= 63) return `"${name}"`
  const hash = createHash('sha256').update(table).digest('hex').slice(0, 8)
  return `"${table.slice(0, 63 - suffix.length - 10)}_${hash}_${suffix}"`
}

/** The statements for one table; `t` is its quoted, possibly schema-qualified name, `u` its users table's. */
function statements (t: string, name: string, u: string) {
  // Two instances creating the table at once can both pass IF NOT EXISTS and collide in the catalog:
  // a transaction-scoped advisory lock, taken in the same statement (a DO block), makes them queue.
  const lock = createHash('sha256').update(`fastify-session-factory:${t}`).digest().readBigInt64BE(0)
  // A save that files a session under a user takes the user's row (created at 0 if missing) in the
  // same statement: revokeUser, which raises it, waits for that save's commit, or the save sees the
  // raised generation. The no-op update is what takes the row lock.
  const generation = `g AS (
  INSERT INTO ${u} AS users (user_id) VALUES ($6) ON CONFLICT (user_id) DO UPDATE SET generation = users.generation RETURNING generation
)`
  const merged = 'data = (data || $2::jsonb) - $3::text[], touched_at = $4, expires_at = $5'
  const filed = 'RETURNING user_id, user_generation::text AS user_generation'
  return {
    create: `DO $fsf$
BEGIN
  PERFORM pg_advisory_xact_lock(${lock});
  CREATE TABLE IF NOT EXISTS ${t} (
    id text PRIMARY KEY,
    data jsonb NOT NULL,
    created_at bigint NOT NULL,
    touched_at bigint NOT NULL,
    expires_at bigint NOT NULL,
    user_id text,
    user_generation bigint
  );
  ALTER TABLE ${t} ADD COLUMN IF NOT EXISTS user_generation bigint;
  CREATE INDEX IF NOT EXISTS ${indexName(name, 'expires_at_idx')} ON ${t} (expires_at);
  CREATE INDEX IF NOT EXISTS ${indexName(name, 'user_id_idx')} ON ${t} (user_id) WHERE user_id IS NOT NULL;
  CREATE TABLE IF NOT EXISTS ${u} (
    user_id text PRIMARY KEY,
    generation bigint NOT NULL DEFAULT 0
  );
END
$fsf$`,
    // Every column as text, compared in JS: whatever type parsers the app set on its pool (int8 as BigInt, jsonb as a string).
    load: `SELECT data::text AS data, created_at::text AS created_at, touched_at::text AS touched_at, expires_at::text AS expires_at, user_id, user_generation::text AS user_generation FROM ${t} WHERE id = $1`,
    dropExpired: `DELETE FROM ${t} WHERE id = $1 AND expires_at <= $2`,
    insert: `INSERT INTO ${t} (id, data, created_at, touched_at, expires_at, user_id, user_generation) VALUES ($1, $2::jsonb, $3, $4, $5, NULL, NULL)
ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data, created_at = EXCLUDED.created_at, touched_at = EXCLUDED.touched_at, expires_at = EXCLUDED.expires_at, user_id = NULL, user_generation = NULL`,
    // $7: the generation a rotation carries (NULL for a login): an older one than the user's inserts nothing.
    insertFiled: `WITH ${generation}
INSERT INTO ${t} (id, data, created_at, touched_at, expires_at, user_id, user_generation)
SELECT $1::text, $2::jsonb, $3::bigint, $4::bigint, $5::bigint, $6::text, g.generation FROM g WHERE $7::bigint IS NULL OR g.generation <= $7::bigint
ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data, created_at = EXCLUDED.created_at, touched_at = EXCLUDED.touched_at, expires_at = EXCLUDED.expires_at, user_id = EXCLUDED.user_id, user_generation = EXCLUDED.user_generation
${filed}`,
    merge: `UPDATE ${t} SET ${merged} WHERE id = $1 AND expires_at > $6 ${filed}`,
    mergeUnfiled: `UPDATE ${t} SET ${merged}, user_id = NULL, user_generation = 0 WHERE id = $1 AND expires_at > $6 ${filed}`,
    mergeFiled: `WITH ${generation}
UPDATE ${t} SET ${merged}, user_id = $6, user_generation = g.generation FROM g WHERE id = $1 AND expires_at > $7 ${filed}`,
    // A row never filed (no user, no generation: saved before userKey was set) is filed under $5 now.
    touch: `UPDATE ${t} SET touched_at = $2, expires_at = $3,
  user_id = CASE WHEN user_id IS NULL AND user_generation IS NULL THEN $5::text ELSE user_id END,
  user_generation = CASE WHEN user_id IS NULL AND user_generation IS NULL AND $5::text IS NOT NULL
    THEN COALESCE((SELECT generation FROM ${u} WHERE ${u}.user_id = $5::text), 0) ELSE user_generation END
WHERE id = $1 AND expires_at > $4`,
    destroy: `DELETE FROM ${t} WHERE id = $1 RETURNING expires_at::text AS expires_at`,
    sessionsOf: `SELECT id, created_at::text AS created_at, touched_at::text AS touched_at, expires_at::text AS expires_at FROM ${t} WHERE user_id = $1 AND expires_at > $2 ORDER BY created_at`,
    // Raises the user's generation; $2, the session kept signed in, moves on to it.
    revoke: `WITH g AS (
  INSERT INTO ${u} AS users (user_id, generation) VALUES ($1, 1) ON CONFLICT (user_id) DO UPDATE SET generation = users.generation + 1 RETURNING generation
)
UPDATE ${t} SET user_generation = g.generation FROM g WHERE id = $2 AND user_id = $1`,
    // SKIP LOCKED: the sweeps of several instances take different rows instead of queueing.
    sweep: `DELETE FROM ${t} WHERE id IN (SELECT id FROM ${t} WHERE expires_at <= $1 LIMIT ${SWEEP_BATCH} FOR UPDATE SKIP LOCKED)`,
    // A user at generation 0 with no session is as good as absent; a raised generation stays.
    sweepUsers: `DELETE FROM ${u} WHERE generation = 0 AND NOT EXISTS (SELECT 1 FROM ${t} WHERE ${t}.user_id = ${u}.user_id)`
  }
}

type Statement = string | PostgresStatement

/**
 * PostgreSQL's invalid_sql_statement_name: a named statement the connection never prepared, what
 * a pooler in transaction mode causes (it hands the statement to another server connection).
 * The error then says what to change; its cause is PostgreSQL's own.
 */
function namePrepareFix (error: unknown): never {
  if ((error as { code?: unknown } | null)?.code !== '26000') throw error
  throw new Error('PostgreSQL does not know a prepared statement of PostgresFactory on this connection: behind a pooler in transaction mode (PgBouncer before 1.21, or max_prepared_statements = 0), set PostgresFactory\'s prepare: false', { cause: error })
}

/**
 * Each statement named after a hash of its text (equal texts share a name), one object per
 * statement (pg copies it on every call, values apart); `create`, run once, stays text.
 */
function prepared (texts: ReturnType<typeof statements>, prepare: boolean): Record<keyof typeof texts, Statement> {
  const named = Object.entries(texts).map(([key, text]) => prepare && key !== 'create'
    ? [key, { name: `fsf_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`, text }]
    : [key, text])
  return Object.fromEntries(named) as Record<keyof typeof texts, Statement>
}

/**
 * Sessions in PostgreSQL, one row per session with its data as jsonb. A save applies only the
 * session's changes, in one statement, so concurrent requests on one session all keep theirs, and
 * it never brings back a row that was destroyed or expired meanwhile.
 */
export class PostgresFactory<D extends object = SessionData> implements SessionFactory<D> {
  /** A destroy() that says whether a record went, and a user index: read once by the plugin. */
  readonly capabilities = { destroyReports: true, userIndex: true } as const
  readonly #pool: PostgresPoolLike
  readonly #sql: ReturnType<typeof prepared>
  readonly #ttlMs: number
  readonly #sweepMs: number
  /** The table still has to be created (createTable), and the promise of that work once it runs. */
  #mustCreate: boolean
  #creating: Promise<void> | null = null
  #sweeper: NodeJS.Timeout | null = null
  #sweeping: Promise<void> | null = null
  #closed = false
  readonly #loaded = new LoadedUsers()

  constructor (options: PostgresFactoryOptions) {
    const { pool, table = 'fastify_sessions', createTable = false, sweepInterval, ttl, prepare = true } = options ?? {}
    if (pool == null || typeof pool.query !== 'function') {
      throw new InvalidOptions('PostgresFactory pool must be a pg Pool (an object with a query method)')
    }
    const parts = typeof table === 'string' ? table.split('.') : []
    if (parts.length < 1 || parts.length > 2 || !parts.every((part) => IDENTIFIER.test(part))) {
      throw new InvalidOptions('PostgresFactory table must be "name" or "schema.name", each part a letter or _ then up to 62 letters, digits or _')
    }
    if (typeof createTable !== 'boolean') throw new InvalidOptions('PostgresFactory createTable must be a boolean')
    if (typeof prepare !== 'boolean') throw new InvalidOptions('PostgresFactory prepare must be a boolean')
    this.#pool = pool
    const name = parts.at(-1) as string
    const users = [...parts.slice(0, -1), indexName(name, 'users').slice(1, -1)]
    this.#sql = prepared(statements(parts.map((part) => `"${part}"`).join('.'), name, users.map((part) => `"${part}"`).join('.')), prepare)
    this.#ttlMs = seconds(ttl, 86_400, 1, 'ttl') * 1000
    this.#sweepMs = seconds(sweepInterval, 300, 0, 'sweepInterval') * 1000
    this.#mustCreate = createTable
  }

  async load (id: string): Promise<Session<D> | null> {
    if (unstorableId(id)) return null
    await this.#begin()
    const { rows } = await this.#query(this.#sql.load, [id])
    const row = rows[0]
    if (row === undefined) return null
    const now = Date.now()
    if (Number(row.expires_at) <= now) {
      await this.#query(this.#sql.dropExpired, [id, now])
      return null
    }
    const session = Session.fromJSON<D>({
      id,
      data: loadedData(row.data) as Partial<D>,
      createdAt: row.created_at,
      touchedAt: row.touched_at,
      expiresAt: row.expires_at
    })
    this.#loaded.remember(session, row.user_id ?? null, generationOf(row.user_generation))
    return session
  }

  /** The id. A rotation of a session its user was signed out of everywhere since its load throws FST_SESSION_GONE. */
  async save (session: Session<D>): Promise<string> {
    await this.#begin()
    const id = session.id ?? generateId()
    const now = Date.now()
    const expiresAt = session.expiresAt ?? now + this.#ttlMs
    const filing = this.#loaded.filingOf(session)
    let rows: any[]
    if (session.isNew) {
      const data = storedJson(session.data as Record<string, unknown>)
      const values = [id, data, session.createdAt, session.touchedAt, expiresAt]
      if (filing.userId === null) {
        await this.#query(this.#sql.insert, values)
        this.#loaded.remember(session, null, null)
        return id
      }
      rows = (await this.#query(this.#sql.insertFiled, [...values, filing.userId, filing.generation])).rows
      // Nothing inserted: the generation the rotation carries is older than its user's.
      if (rows.length === 0) throw new SessionGone()
    } else {
      const { set, deleted } = session.changes() as { set: Record<string, unknown>, deleted: string[] }
      const values = [id, storedJson(set), deleted.map(storedKey), session.touchedAt, expiresAt]
      // A row destroyed or expired meanwhile matches nothing: it stays gone, and the id is returned all the same.
      const query = !filing.refile
        ? this.#query(this.#sql.merge, [...values, now])
        : filing.userId === null
          ? this.#query(this.#sql.mergeUnfiled, [...values, now])
          : this.#query(this.#sql.mergeFiled, [...values, filing.userId, now])
      rows = (await query).rows
    }
    const row = rows[0]
    if (row !== undefined) this.#loaded.remember(session, row.user_id ?? null, generationOf(row.user_generation))
    return id
  }

  /** Extends the expiry; a row never filed (saved before `userKey` was set) is filed under its user now. */
  async touch (session: Session<D>): Promise<void> {
    if (session.id === null) return
    await this.#begin()
    const now = Date.now()
    await this.#query(this.#sql.touch, [session.id, session.touchedAt, session.expiresAt ?? now + this.#ttlMs, now, session.filedUnder ?? null])
  }

  /**
   * Sign out everywhere, first step: raises the user's generation, so that a session loaded
   * before cannot be rotated into a new row; `keep` moves on to the new generation.
   */
  async revokeUser (userId: string, keep: string | null): Promise<void> {
    await this.#begin()
    await this.#query(this.#sql.revoke, [userId, keep])
  }

  async destroy (id: string): Promise<boolean> {
    if (unstorableId(id)) return false
    await this.#begin()
    const now = Date.now()
    const { rows } = await this.#query(this.#sql.destroy, [id])
    return rows.length > 0 && Number(rows[0].expires_at) > now
  }

  /** The user index: the live sessions last saved with `session.filedUnder === userId`, oldest first. */
  async sessionsOf (userId: string): Promise<IndexedSession[]> {
    await this.#begin()
    const { rows } = await this.#query(this.#sql.sessionsOf, [userId, Date.now()])
    return rows.map((row) => ({
      id: row.id as string,
      createdAt: Number(row.created_at),
      touchedAt: Number(row.touched_at),
      expiresAt: Number(row.expires_at)
    }))
  }

  /**
   * Deletes expired rows now, at most 10,000 (in statements of 1,000), and resolves to how many.
   * It also runs every `sweepInterval` seconds on its own once the factory is in use.
   */
  async sweep (now = Date.now()): Promise<number> {
    await this.#begin()
    let removed = 0
    for (let batch = 0; batch < SWEEP_BATCHES; batch++) {
      const { rowCount } = await this.#query(this.#sql.sweep, [now])
      removed += Number(rowCount)
      if (Number(rowCount) < SWEEP_BATCH) break
    }
    await this.#query(this.#sql.sweepUsers, [])
    return removed
  }

  /** Stops the sweep (and waits for one under way). The pool stays open: it is yours to end. */
  async close (): Promise<void> {
    this.#closed = true
    if (this.#sweeper !== null) clearInterval(this.#sweeper)
    this.#sweeper = null
    await this.#sweeping
  }

  /** Before each query: starts the sweep timer once, and waits for the table when it must be created. */
  #begin (): Promise<void> | undefined {
    if (this.#sweeper === null && this.#sweepMs > 0 && !this.#closed) {
      this.#sweeper = setInterval(this.#sweepInBackground, this.#sweepMs).unref()
    }
    if (!this.#mustCreate) return undefined
    this.#creating ??= this.#pool.query(this.#sql.create, []).then(() => {
      this.#mustCreate = false
    }, (error: unknown) => {
      // The database may be down at startup: the next call tries again.
      this.#creating = null
      throw error
    })
    return this.#creating
  }

  #query (statement: Statement, values: unknown[]): Promise<{ rows: any[], rowCount: number | null }> {
    const result = this.#pool.query(statement, values)
    return typeof statement === 'string' ? result : result.catch(namePrepareFix)
  }

  readonly #sweepInBackground = (): void => {
    // One sweep at a time; a failure (the database is down) waits for the next round, and the
    // requests meanwhile get their 503s: never an unhandled rejection.
    if (this.#sweeping !== null) return
    this.#sweeping = this.sweep().then(() => {}, () => {}).finally(() => {
      this.#sweeping = null
    })
  }
}
