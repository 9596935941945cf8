import createError from '@fastify/error'

// Every error this package raises, in one place. Tests assert `err.code`, never the message.
export const InvalidOptions = createError(
  'FST_SESSION_INVALID_OPTIONS',
  'Invalid fastify-session-factory options: %s',
  500,
  TypeError
)

export const StoreUnavailable = createError(
  'FST_SESSION_STORE_UNAVAILABLE',
  'The session store is unavailable; try again later',
  503
)

export const NotSerializable = createError(
  'FST_SESSION_NOT_SERIALIZABLE',
  'Session value at "%s" cannot be stored as JSON (%s); store plain objects, arrays, strings, finite numbers, booleans or null',
  500,
  TypeError
)

export const CookieTooLarge = createError(
  'FST_SESSION_COOKIE_TOO_LARGE',
  'The session cookie would be %d bytes, over the %d-byte limit browsers keep; store less in the session or use a store-backed factory',
  500
)

export const SaveAfterSend = createError(
  'FST_SESSION_SAVE_AFTER_SEND',
  'The session cannot be saved after the response headers were sent; call `await request.session.save()` before sending',
  500
)

export const AfterSend = createError(
  'FST_SESSION_AFTER_SEND',
  'The session was changed after its response went out, so the change could never be saved; change the session before sending the reply (return reply.send(...) once the change is made)',
  500
)

export const ReservedKey = createError(
  'FST_SESSION_RESERVED_KEY',
  'Session key "%s" is reserved (it could reach an object prototype); pick another key',
  500,
  TypeError
)

export const Detached = createError(
  'FST_SESSION_DETACHED',
  'This session is not attached to a request, so it cannot be saved; sessions are saved by the plugin',
  500
)

export const NotLoaded = createError(
  'FST_SESSION_NOT_LOADED',
  'No session on this request, so it cannot be changed (it reads like a visitor\'s): its route has `config: { session: false }`, the `skip` option matched it, its path is outside `cookie.path`, or a hook read it before the session plugin loaded it',
  500
)

export const CorruptRecord = createError(
  'FST_SESSION_CORRUPT_RECORD',
  'A stored session record cannot be read (%s); another writer may share this key prefix: give each app its own prefix, or delete the key',
  500
)

export const StoreReservedKey = createError(
  'FST_SESSION_STORE_RESERVED_KEY',
  'Session key "%s" is reserved by the express-session record format, which keeps its metadata there; pick another key',
  500,
  TypeError
)

export const NoUserIndex = createError(
  'FST_SESSION_NO_USER_INDEX',
  '%s has no user index (no sessionsOf method), so a user\'s sessions cannot be listed or ended; use MemoryFactory, RedisFactory or PostgresFactory, or give your factory a sessionsOf(userId) method',
  500
)

export const IdChanged = createError(
  'FST_SESSION_ID_CHANGED',
  'A session loaded outside a route cannot get a new id (%s asked for one): there is no response to carry the new cookie; change the id in a route, or use a store-backed factory',
  500
)

export const InvalidUser = createError(
  'FST_SESSION_INVALID_USER',
  'The session\'s user (the userKey option) is %s, but a user id must be a non-empty string or a finite number: point userKey at the id itself (\'passport.user\' for @fastify/passport), or give it a function that answers the id',
  500,
  TypeError
)

export const SessionGone = createError(
  'FST_SESSION_GONE',
  'The session was ended (signed out, destroyed or expired) after it was loaded, so nothing was saved; load it again, or treat the user as signed out',
  409
)

export const InvalidData = createError(
  'FST_SESSION_INVALID_DATA',
  'The session data does not match the `schema` option, so nothing was saved: %s',
  500
)

export const errors = {
  FST_SESSION_INVALID_OPTIONS: InvalidOptions,
  FST_SESSION_STORE_UNAVAILABLE: StoreUnavailable,
  FST_SESSION_NOT_SERIALIZABLE: NotSerializable,
  FST_SESSION_COOKIE_TOO_LARGE: CookieTooLarge,
  FST_SESSION_SAVE_AFTER_SEND: SaveAfterSend,
  FST_SESSION_AFTER_SEND: AfterSend,
  FST_SESSION_RESERVED_KEY: ReservedKey,
  FST_SESSION_DETACHED: Detached,
  FST_SESSION_NOT_LOADED: NotLoaded,
  FST_SESSION_CORRUPT_RECORD: CorruptRecord,
  FST_SESSION_STORE_RESERVED_KEY: StoreReservedKey,
  FST_SESSION_NO_USER_INDEX: NoUserIndex,
  FST_SESSION_ID_CHANGED: IdChanged,
  FST_SESSION_INVALID_USER: InvalidUser,
  FST_SESSION_GONE: SessionGone,
  FST_SESSION_INVALID_DATA: InvalidData
} as const
