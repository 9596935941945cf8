// runPluginSuite: the factory behind the plugin, driven with `inject` as a user's app would be.
import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import { buildPluginApp, cookieOf, dataOf, mustSetCookie, post, secret, sidOf, viewOf } from './plugin-app.js'
import { checkNames, register, type Check, type CommonOptions, type Make } from './runner.js'

/** The checks of `runPluginSuite`. */
export type PluginCheck =
  | 'first-visit' | 'returning-visit' | 'login' | 'logout-clears-cookie' | 'logout-kills-old-cookie' | 'secret-rotation'

export interface PluginSuiteOptions extends CommonOptions {
  /** Plugin checks to skip, each with its reason. */
  skip?: Partial<Record<PluginCheck, string>>
  /** Plugin checks known to fail for now, each with the reason. */
  todo?: Partial<Record<PluginCheck, string>>
}

interface PluginContext {
  /** A fresh app with the plugin on the check's factory, closed after the check. */
  app (secret: string | string[]): Promise<FastifyInstance>
  /** The factory declares ids that authenticate themselves: its cookie carries no HMAC. */
  selfAuthenticating: boolean
}

const PLUGIN_CHECKS: Array<Check<PluginCheck, PluginContext>> = [
  {
    name: 'first-visit',
    title: 'a first visit that stores data gets a session cookie',
    async run ({ app }) {
      const server = await app(secret())
      const response = await post(server, '/set', { visits: 1 })
      assert.deepEqual(response.json(), { data: { visits: 1 } })
      mustSetCookie(response, 'POST /set')
    }
  },
  {
    name: 'returning-visit',
    title: 'a returning visit sees its data, and its changes are kept',
    async run ({ app }) {
      const server = await app(secret())
      const first = mustSetCookie(await post(server, '/set', { visits: 1, cart: ['apple'] }), 'first visit')
      assert.deepEqual(await dataOf(server, first), { visits: 1, cart: ['apple'] })
      // A changed session is saved; a new cookie comes only when the id changed (a stateless factory's does).
      const changed = await post(server, '/set', { visits: 2 }, first)
      assert.equal(changed.statusCode, 200, `second visit: status ${changed.statusCode}`)
      const second = cookieOf(changed) ?? first
      assert.deepEqual(await dataOf(server, second), { visits: 2, cart: ['apple'] })
    }
  },
  {
    name: 'login',
    title: 'login with regenerate() changes the cookie; the old cookie does not load the logged-in data',
    async run ({ app }) {
      const server = await app(secret())
      const before = mustSetCookie(await post(server, '/set', { cart: ['apple'] }), 'POST /set')
      const after = mustSetCookie(await post(server, '/login', { user: 'ada' }, before), 'POST /login')
      assert.notEqual(after, before, 'regenerate() must give the session a new cookie')
      assert.deepEqual(await dataOf(server, after), { cart: ['apple'], user: 'ada' })
      assert.equal((await dataOf(server, before)).user, undefined, 'the cookie from before the login must not reach the logged-in session')
    }
  },
  {
    name: 'logout-clears-cookie',
    title: 'logout with destroy() clears the cookie',
    async run ({ app }) {
      const server = await app(secret())
      const cookie = mustSetCookie(await post(server, '/login', { user: 'ada' }), 'POST /login')
      const response = await post(server, '/logout', {}, cookie)
      assert.equal(response.statusCode, 200)
      assert.equal(sidOf(response, 'POST /logout'), '', 'the logout response must clear the session cookie')
    }
  },
  {
    name: 'logout-kills-old-cookie',
    title: 'after logout, the old cookie loads nothing',
    stateless: 'a stateless session lives in the cookie: an old copy stays valid until it expires',
    async run ({ app }) {
      const server = await app(secret())
      const cookie = mustSetCookie(await post(server, '/login', { user: 'ada' }), 'POST /login')
      assert.equal((await post(server, '/logout', {}, cookie)).statusCode, 200)
      assert.deepEqual(await dataOf(server, cookie), {}, 'the logged-out session must be gone')
    }
  },
  {
    name: 'secret-rotation',
    title: 'a cookie signed with the old secret works after a new one is prepended, and is re-signed (a self-authenticating id needs no secret)',
    async run ({ app, selfAuthenticating }) {
      const oldSecret = secret()
      const newSecret = secret()
      const before = await app(oldSecret)
      const cookie = mustSetCookie(await post(before, '/set', { visits: 1 }), 'POST /set')
      if (selfAuthenticating) {
        assert.deepEqual(await dataOf(await app(newSecret), cookie), { visits: 1 }, 'an id that authenticates itself opens whatever the secrets are')
        return
      }
      const rotated = await app([newSecret, oldSecret])
      const response = await rotated.inject({ url: '/', headers: { cookie } })
      assert.deepEqual(response.json(), { data: { visits: 1 } }, 'the old signature still verifies')
      const resigned = mustSetCookie(response, 'GET / with an old signature')
      assert.notEqual(resigned, cookie, 'the cookie is re-signed')
      const after = await app(newSecret)
      assert.deepEqual(await dataOf(after, resigned), { visits: 1 }, 'the new cookie is signed with the new secret')
      assert.deepEqual(await dataOf(after, cookie), {}, 'and the old one was not')
    }
  }
]

/**
 * Registers checks of the factory behind the plugin: a fresh Fastify app per check (and a fresh
 * factory from `make`), driven with `inject`; with node:test, or with the runner in `options.test`.
 */
export function runPluginSuite (name: string, make: Make, options: PluginSuiteOptions = {}): void {
  const known = new Set<string>(PLUGIN_CHECKS.map((check) => check.name))
  checkNames('runPluginSuite skip', options.skip, known)
  checkNames('runPluginSuite todo', options.todo, known)
  register(name, [['the plugin on this factory', PLUGIN_CHECKS, false]], options, async (check) => {
    const factory = await make()
    const apps: FastifyInstance[] = []
    const app = async (secret: string | string[]): Promise<FastifyInstance> => {
      const server = await buildPluginApp(viewOf(factory), secret)
      apps.push(server)
      return server
    }
    try {
      await check.run({ app, selfAuthenticating: factory.capabilities?.selfAuthenticatingIds === true })
    } finally {
      await options.cleanup?.(factory)
      for (const server of apps) await server.close()
      await factory.close?.()
    }
  })
}
