// Debian's Chromium driven by playwright-core: never a downloaded browser, always a fresh profile.
import { existsSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Cookie, type Page } from 'playwright-core'
import { buildLoginApp, type LoginAppOptions } from '../../examples/login/app.js'

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

// Quiet and deterministic: no sandbox (we run as root), no GPU, no calls home, no QUIC.
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic'
]

export const SECRET = 'an-e2e-secret-that-is-long-enough-0123456789'
export const USER = 'alice'
export const PASSWORD = 'wonderland'

/** A CI run must prove the browser scenarios; elsewhere a missing browser only skips them. */
export function isCI (): boolean {
  const ci = process.env.CI
  return ci !== undefined && ci !== '' && ci !== '0' && ci.toLowerCase() !== 'false'
}

/** Why the browser scenarios cannot run on this machine, or null when they can. */
export function missingBrowser (): string | null {
  if (existsSync(CHROMIUM)) return null
  return `no Chromium at ${CHROMIUM} (install it with: apt-get install -y chromium, or set CHROMIUM_PATH)`
}

/** Headless Chromium; playwright gives each launch a new temporary profile and deletes it on close. */
export async function launchChromium (t: Test, extraArgs: string[] = []): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    chromiumSandbox: false,
    args: [...CHROMIUM_ARGS, ...extraArgs]
  })
  t.teardown(() => browser.close())
  return browser
}

/** A cookie without its value, so that a failed assertion never prints a session id. */
export function withoutValue (cookie: Cookie): Omit<Cookie, 'value'> {
  const { value: _value, ...rest } = cookie
  return rest
}

/**
 * One scenario's browser contexts and servers. Pages snapped along the way are kept as HTML (cheap)
 * and rendered to PNG files in a temporary folder only when the scenario failed, next to screenshots
 * of every page still open then. Everything closes at the end.
 */
export class Scene {
  readonly #t: Test
  readonly #browser: Browser
  readonly #contexts: BrowserContext[] = []
  readonly #closers: Array<() => Promise<unknown>> = []
  readonly #snaps: Array<{ label: string, html: string }> = []

  constructor (t: Test, browser: Browser) {
    this.#t = t
    this.#browser = browser
    t.teardown(() => this.#close())
  }

  /** Starts the example app on an ephemeral port and returns its origin. */
  async serve (options: Partial<LoginAppOptions> = {}): Promise<string> {
    const app = await buildLoginApp({ secret: SECRET, ...options })
    this.#closers.push(() => app.close())
    await app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = app.server.address() as { port: number }
    return `${options.https === undefined ? 'http' : 'https'}://127.0.0.1:${port}`
  }

  /** A fresh browser context: its own cookie jar, like a new private window. */
  async context (options: BrowserContextOptions = {}): Promise<BrowserContext> {
    const context = await this.#browser.newContext(options)
    // Local pages answer in milliseconds; a long wait means a bug, so fail well before tap's timeout.
    context.setDefaultTimeout(15_000)
    this.#contexts.push(context)
    return context
  }

  async page (context?: BrowserContext): Promise<Page> {
    return (context ?? await this.context()).newPage()
  }

  /** Remembers what the page shows now, for the failure report. */
  async snap (page: Page, label: string): Promise<void> {
    this.#snaps.push({ label, html: await page.content() })
  }

  async #close (): Promise<void> {
    if (!this.#t.passing()) await this.#saveScreenshots()
    for (const context of this.#contexts) await context.close()
    for (const close of this.#closers) await close()
  }

  async #saveScreenshots (): Promise<void> {
    const dir = await mkdtemp(join(tmpdir(), 'login-e2e-screenshots-'))
    let n = 0
    const file = (label: string): string => join(dir, `${String(++n).padStart(2, '0')}-${label.replace(/[^\w-]+/g, '-')}.png`)
    for (const context of this.#contexts) {
      for (const page of context.pages()) {
        await page.screenshot({ fullPage: true, path: file(`open-at-failure ${page.url()}`) }).catch(() => {})
      }
    }
    // The pages carry their own styles and no scripts, so their HTML renders as the browser showed it.
    const album = await this.#browser.newContext({ javaScriptEnabled: false })
    const canvas = await album.newPage()
    for (const { label, html } of this.#snaps) {
      await canvas.setContent(html)
      await canvas.screenshot({ fullPage: true, path: file(label) })
    }
    await album.close()
    this.#t.comment(`screenshots of "${this.#t.name}": ${dir}`)
  }
}
