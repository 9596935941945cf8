// The login example in a real browser: what Chromium keeps, sends, rotates and drops.
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import Fastify from 'fastify'
import type { BrowserContext, Cookie, Page } from 'playwright-core'
import { attributesOf } from '../helpers/app.js'
import { selfSignedCertificate } from '../helpers/tls.js'
import { PASSWORD, Scene, USER, isCI, launchChromium, missingBrowser, withoutValue } from './browser.js'

const SIGNED_OUT = 'You are not signed in.'
const SIGNED_IN = `Signed in as ${USER}`

// What every session cookie of ours looks like in the jar on http://127.0.0.1.
const SESSION_COOKIE = { name: 'sid', domain: '127.0.0.1', path: '/', expires: -1, httpOnly: true, secure: false, sameSite: 'Lax' }

async function status (page: Page): Promise<string> {
  return (await page.textContent('#status'))?.trim() ?? ''
}

async function flashes (page: Page): Promise<string[]> {
  return (await page.locator('.flash').allTextContents()).map((text) => text.trim())
}

/** Clicks something that navigates, and waits until the page it leads to has loaded. */
async function follow (page: Page, selector: string): Promise<void> {
  await Promise.all([page.waitForEvent('load'), page.click(selector)])
}

async function fillSignIn (page: Page, origin: string): Promise<void> {
  await page.goto(`${origin}/login`)
  await page.fill('#username', USER)
  await page.fill('#password', PASSWORD)
}

async function signIn (page: Page, origin: string): Promise<void> {
  await fillSignIn(page, origin)
  await follow(page, '#submit')
}

/** The jar's cookies called `name`. */
async function jarOf (context: BrowserContext, name = 'sid'): Promise<Cookie[]> {
  return (await context.cookies()).filter((cookie) => cookie.name === name)
}

// Each scenario starts browser pages on a 2-core box shared with other work: allow for it.
t.setTimeout(240_000)

const missing = missingBrowser()
if (missing !== null && isCI()) {
  t.fail(`e2e: ${missing}; under CI the browser scenarios must run`)
} else {
  t.test('login example in headless Chromium', { skip: missing === null ? false : `e2e skipped: ${missing}` }, async (t) => {
    const browser = await launchChromium(t)

    t.test('1. a first visit stores no cookie; signing in stores one HttpOnly, Lax sid with a new value', async (t) => {
      const scene = new Scene(t, browser)
      const origin = await scene.serve()
      const context = await scene.context()
      const page = await scene.page(context)

      await page.goto(`${origin}/`)
      await scene.snap(page, 'first visit')
      t.equal(await status(page), SIGNED_OUT)
      t.same(await context.cookies(), [], 'the home page stores nothing (saveUninitialized: false)')

      // The form's CSRF token needs a secret kept server-side, so the form page starts an anonymous session.
      await follow(page, '#sign-in')
      const before = await jarOf(context)
      t.equal(before.length, 1, 'the sign-in form issued one session cookie')
      t.match(before.map(withoutValue), [SESSION_COOKIE])
      t.same((await context.cookies()).map((cookie) => cookie.name), ['sid'], 'and no other cookie')

      await page.fill('#username', USER)
      await page.fill('#password', PASSWORD)
      await follow(page, '#submit')
      await scene.snap(page, 'signed in')
      t.equal(page.url(), `${origin}/`, 'redirected home')
      t.equal(await status(page), SIGNED_IN)
      t.same(await flashes(page), [`Welcome, ${USER}.`])
      const after = await jarOf(context)
      t.equal(after.length, 1, 'still one session cookie')
      t.match(after.map(withoutValue), [SESSION_COOKIE], 'HttpOnly, SameSite=Lax, not Secure over http (secure: auto)')
      t.ok(after[0]?.value !== before[0]?.value, 'the cookie value changed at sign-in (fixation defence)')

      // Someone who planted or saw the anonymous id learns nothing: it no longer names a session.
      const planted = await scene.context()
      await planted.addCookies([{ name: 'sid', value: before[0]?.value ?? '', url: origin }])
      const plantedPage = await scene.page(planted)
      await plantedPage.goto(`${origin}/`)
      t.equal(await status(plantedPage), SIGNED_OUT, 'the pre-sign-in cookie does not sign anyone in')
    })

    t.test('2. reload keeps the user, a second tab shares it, a fresh context has nobody', async (t) => {
      const scene = new Scene(t, browser)
      const origin = await scene.serve()
      const context = await scene.context()
      const page = await scene.page(context)
      await signIn(page, origin)
      t.equal(await status(page), SIGNED_IN)

      await page.reload()
      await scene.snap(page, 'after reload')
      t.equal(await status(page), SIGNED_IN, 'reload')
      t.same(await flashes(page), [], 'the welcome message was shown once')

      const tab = await scene.page(context)
      await tab.goto(`${origin}/`)
      await scene.snap(tab, 'second tab')
      t.equal(await status(tab), SIGNED_IN, 'a second tab of the same context')

      const stranger = await scene.context()
      const strangerPage = await scene.page(stranger)
      await strangerPage.goto(`${origin}/`)
      await scene.snap(strangerPage, 'fresh context')
      t.equal(await status(strangerPage), SIGNED_OUT, 'a fresh context')
      t.same(await stranger.cookies(), [], 'which stores no cookie')
    })

    t.test('3. signing out drops the cookie; back + reload and a replayed cookie show signed out', async (t) => {
      const scene = new Scene(t, browser)
      const origin = await scene.serve()
      const context = await scene.context()
      const page = await scene.page(context)
      await signIn(page, origin)
      const [signedIn] = await jarOf(context)
      t.ok(signedIn, 'signed in with a cookie')

      const logout = page.waitForResponse((response) => response.url() === `${origin}/logout`)
      const landing = page.waitForResponse((response) => response.url() === `${origin}/` && response.request().method() === 'GET')
      await follow(page, '#sign-out')
      await scene.snap(page, 'signed out')
      t.equal(await status(page), SIGNED_OUT)
      t.same(await flashes(page), ['You have signed out.'])

      // destroy() then a flash: the logout reply replaces the cookie with an anonymous session holding
      // only the message; the page that shows the message drops that session and clears the cookie.
      const logoutCookie = await (await logout).headerValue('set-cookie') ?? ''
      t.match(logoutCookie, /^sid=[^;]+;/, 'the logout reply sets an anonymous session cookie')
      t.same(attributesOf(logoutCookie as string), { Path: '/', HttpOnly: true, SameSite: 'Lax' })
      t.notOk(logoutCookie.includes(signedIn?.value ?? '-'), 'with a new value')
      const landingCookie = await (await landing).headerValue('set-cookie') ?? ''
      t.match(landingCookie, /^sid=; .*Max-Age=0/, 'the page showing the message clears it')
      t.same(await context.cookies(), [], 'nothing left in the jar')

      await page.goBack()
      await page.reload()
      await scene.snap(page, 'back and reload')
      t.equal(await status(page), SIGNED_OUT, 'back button + reload')

      const replay = await scene.context()
      await replay.addCookies([{ name: 'sid', value: signedIn?.value ?? '', url: origin, httpOnly: true, sameSite: 'Lax' }])
      const replayPage = await scene.page(replay)
      await replayPage.goto(`${origin}/`)
      await scene.snap(replayPage, 'replayed cookie')
      t.equal(await status(replayPage), SIGNED_OUT, 'the old cookie value, replayed, signs nobody in')
      t.same(await replay.cookies(), [], 'and the server clears it')
    })

    t.test('4. page scripts cannot read the session cookie (HttpOnly)', async (t) => {
      const scene = new Scene(t, browser)
      const origin = await scene.serve()
      const context = await scene.context()
      const page = await scene.page(context)
      await signIn(page, origin)
      t.equal((await jarOf(context)).length, 1, 'the jar holds the cookie')
      t.equal(await page.evaluate<string>('document.cookie'), '', 'document.cookie does not show it')
    })

    t.test('5. an idle session ends; activity keeps it alive (idleTimeout: 2 s, real waits)', async (t) => {
      const scene = new Scene(t, browser)
      const origin = await scene.serve({ idleTimeout: 2 })
      const context = await scene.context()
      const page = await scene.page(context)
      await signIn(page, origin)
      t.equal(await status(page), SIGNED_IN)

      // Three reloads 0.8 s apart span more than the timeout, yet each finds the session alive (rolling).
      for (let i = 1; i <= 3; i++) {
        await sleep(800)
        await page.reload()
        t.equal(await status(page), SIGNED_IN, `activity ${i} keeps the session`)
      }

      await sleep(3000)
      await page.reload()
      await scene.snap(page, 'after idle timeout')
      t.equal(await status(page), SIGNED_OUT, 'after 3 s idle the user is signed out')
      t.same(await context.cookies(), [], 'and the stale cookie is cleared')
    })

    t.test('6. a cross-site form cannot sign the user out (SameSite=Lax + CSRF token)', async (t) => {
      const scene = new Scene(t, browser)
      const origin = await scene.serve()
      // Another site: "localhost" is not the same site as "127.0.0.1".
      const evil = Fastify()
      t.teardown(() => evil.close())
      evil.get('/', (_request, reply) => reply.type('text/html').send(
        `<form method="post" action="${origin}/logout"><input type="hidden" name="_csrf" value="guess"><button id="go">Win a prize</button></form>`))
      await evil.listen({ port: 0, host: '127.0.0.1' })
      const { port } = evil.server.address() as { port: number }

      const context = await scene.context()
      const page = await scene.page(context)
      await signIn(page, origin)
      const [cookie] = await jarOf(context)

      await page.goto(`http://localhost:${port}/`)
      await follow(page, '#go')
      await scene.snap(page, 'after the cross-site post')
      t.equal(page.url(), `${origin}/`, 'the forged post landed on our home page')
      t.equal(await status(page), SIGNED_IN, 'the user is still signed in')
      t.equal((await jarOf(context))[0]?.value, cookie?.value, 'with the same cookie')
    })

    t.test('7. over https', async (t) => {
      const tls = await selfSignedCertificate(t)
      const secureBrowser = await launchChromium(t, ['--ignore-certificate-errors'])

      t.test('secure: auto makes the cookie Secure', async (t) => {
        const scene = new Scene(t, secureBrowser)
        const origin = await scene.serve({ https: tls })
        const context = await scene.context()
        const page = await scene.page(context)
        await signIn(page, origin)
        await scene.snap(page, 'signed in over https')
        t.equal(await status(page), SIGNED_IN)
        t.match((await jarOf(context)).map(withoutValue), [{ ...SESSION_COOKIE, secure: true }])
      })

      t.test('a __Host-sid cookie works (secure: true, path /, no domain)', async (t) => {
        const scene = new Scene(t, secureBrowser)
        const origin = await scene.serve({ https: tls, cookieName: '__Host-sid' })
        const context = await scene.context()
        const page = await scene.page(context)
        await signIn(page, origin)
        await scene.snap(page, 'signed in with __Host-sid')
        t.equal(await status(page), SIGNED_IN)
        t.same((await context.cookies()).map((cookie) => cookie.name), ['__Host-sid'], 'the jar holds the __Host- cookie only')
        t.match((await jarOf(context, '__Host-sid')).map(withoutValue), [{ ...SESSION_COOKIE, name: '__Host-sid', secure: true }])

        await page.reload()
        t.equal(await status(page), SIGNED_IN, 'the browser sends it back')
        await follow(page, '#sign-out')
        await scene.snap(page, 'signed out with __Host-sid')
        t.equal(await status(page), SIGNED_OUT)
        t.same(await context.cookies(), [], 'signing out removes it')
      })
    })
  })
}
