// The helper for a user's own inject tests: a Cookie header that starts a test logged in.
import type { FastifyInstance } from 'fastify'
import { Sessions } from '../sessions.js'

/**
 * The Cookie header (`sid=<signed id>`) of a new session holding `data`, stored in the app's own
 * factory and signed with its secret: send it with `inject` to start a test logged in. The
 * app must have registered the plugin; `decorator` names the registration (default 'session').
 */
export async function sessionCookie (app: FastifyInstance, data: Record<string, unknown>, options: { decorator?: string } = {}): Promise<string> {
  await app.ready()
  const name = `${options.decorator ?? 'session'}s`
  const sessions: unknown = (app as unknown as Record<string, unknown>)[name]
  if (!(sessions instanceof Sessions)) {
    throw new TypeError(`sessionCookie(): app.${name} is not there; register fastify-session-factory on this app (with decorator '${options.decorator ?? 'session'}') before calling it`)
  }
  return await sessions.cookieFor(data)
}
