import type { FastifyInstance, FastifyRequest } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import type { MaybePromise } from './factory.js'
import { isThenable } from './guard.js'
import { SessionLifecycle, afterSend } from './lifecycle.js'
import { resolveOptions, type SessionPluginOptions } from './options.js'
import { RequestSession } from './request-session.js'
import { internals, type RequestSessionData, type Session } from './session.js'
import { Sessions } from './sessions.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The request's session (or the name given by the `decorator` option). */
    session: Session<RequestSessionData>
  }
  interface FastifyInstance {
    /**
     * The sessions of this registration outside a request: a user's sessions (list, end, end
     * all) and the session behind a Cookie header. Named after `decorator` plus "s".
     */
    sessions: Sessions<RequestSessionData>
  }
  interface FastifyContextConfig {
    /** `false` skips loading and saving the session on this route. */
    session?: boolean
  }
}

/**
 * Registers one session setup: resolves the options, decorates the request and the instance, and
 * hands each request to the SessionLifecycle (load in onRequest, write in onSend).
 */
export async function plugin (fastify: FastifyInstance, options: SessionPluginOptions): Promise<void> {
  const resolved = resolveOptions(options)
  // Registered after ours, @fastify/cookie fails with Fastify's own FST_ERR_DEC_ALREADY_PRESENT.
  if (!fastify.hasPlugin('@fastify/cookie')) await fastify.register(fastifyCookie)

  // Each registration has its own slot, so several decorators (or sibling scopes) never collide.
  const kState = Symbol(`fastify-session-factory:${resolved.decorator}`)
  const lifecycle = new SessionLifecycle(fastify, resolved, kState)
  type WithState = FastifyRequest & { [kState]: RequestSession | null }

  fastify.decorateRequest(kState, null)
  fastify.decorateRequest(resolved.decorator, {
    getter (this: FastifyRequest): Session {
      return lifecycle.handlerSession((this as WithState)[kState])
    }
  })
  fastify.decorate(`${resolved.decorator}s`, new Sessions(lifecycle, fastify.log, resolved.secrets[0] as string))

  fastify.addHook('onRequest', function loadSession (request, reply, done) {
    if (!lifecycle.inScope(request)) return done()
    const state = new RequestSession(lifecycle, request, reply)
    ;(request as WithState)[kState] = state
    let loading: MaybePromise<void>
    try {
      loading = lifecycle.load(state)
    } catch (error) {
      lifecycle.failLoad(state, error)
      return done()
    }
    if (!isThenable(loading)) return done()
    // A failed load fails only the requests that read the session: the first read throws it.
    // A promise returned to Fastify settles the hook, and a throw in what follows cannot escape.
    return loading.then(undefined, (error: unknown) => lifecycle.failLoad(state, error))
  })

  if (resolved.saveUninitialized) {
    // saveUninitialized stores a session for requests that reached a handler, not for a 400 or a 404.
    fastify.addHook('preHandler', function reachedHandler (request, _reply, done) {
      const state = (request as WithState)[kState]
      if (state !== null && !request.is404) state.handled = true
      done()
    })
  }

  fastify.addHook('onSend', function saveSession (request, _reply, payload, done) {
    const state = (request as WithState)[kState]
    if (state === null || state.phase === 'done') return done(null, payload)
    // A second send while the first one's session work is still running (`reply.send()` without
    // `return`, a send from a hook and a returned value): the first response goes out, whole,
    // and this one is dropped here, as Fastify drops a send after the reply went out.
    if (state.phase === 'saving') {
      // A dropped stream would hold its file handle open for good.
      if (isStream(payload)) payload.destroy()
      return
    }
    state.phase = 'saving'
    // From here on a change could not be saved: it throws instead of being lost.
    if (state.session !== null) internals.lock(state.session, afterSend)
    let pending: MaybePromise<void>
    try {
      pending = lifecycle.commit(state)
    } catch (error) {
      state.phase = 'done'
      return done(error as Error)
    }
    if (!isThenable(pending)) {
      state.phase = 'done'
      return done(null, payload)
    }
    return pending.then(() => {
      state.phase = 'done'
      return payload
    }, (error: unknown) => {
      state.phase = 'done'
      throw error
    })
  })

  fastify.addHook('onClose', async () => {
    lifecycle.close()
    await lifecycle.guard.factory.close?.()
  })
}

function isStream (payload: unknown): payload is { destroy: () => void } {
  return typeof (payload as { pipe?: unknown } | null)?.pipe === 'function' && typeof (payload as { destroy?: unknown }).destroy === 'function'
}
