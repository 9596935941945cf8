// The example's HTML: plain forms, no scripts, and every value that came from a person escaped.
import type { FastifyReply } from 'fastify'

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/** Makes any text safe inside HTML content and double- or single-quoted attributes. */
export function escapeHtml (text: string): string {
  return text.replace(/[&<>"']/g, (char) => ESCAPES[char] as string)
}

/** Flash messages by type, as @fastify/flash keeps them. */
export type Flash = Record<string, string[]>

// No script may run, forms may only post back here, and no other site may frame the page.
const CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

const STYLE = 'body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}' +
  'label{display:block;margin:.5rem 0}input{font:inherit}.flash{padding:.5rem 1rem;border-radius:4px;background:#e8f0fe}' +
  '.error{background:#fde8e8}'

function layout (title: string, body: string, flash: Flash = {}): string {
  const messages = Object.entries(flash).flatMap(([type, list]) =>
    list.map((message) => `<p class="flash ${escapeHtml(type)}" role="status">${escapeHtml(message)}</p>`))
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
${messages.join('\n')}
${body}
</body>
</html>
`
}

function csrfField (token: string): string {
  return `<input type="hidden" name="_csrf" value="${escapeHtml(token)}">`
}

export function homePage (user: string | undefined, flash: Flash, csrfToken: string | undefined): string {
  if (user === undefined || csrfToken === undefined) {
    return layout('Home', '<p id="status">You are not signed in.</p>\n<p><a id="sign-in" href="/login">Sign in</a></p>', flash)
  }
  return layout('Home', `<p id="status">Signed in as <strong id="user">${escapeHtml(user)}</strong></p>
<form method="post" action="/logout">
${csrfField(csrfToken)}
<button id="sign-out" type="submit">Sign out</button>
</form>`, flash)
}

export function loginPage (csrfToken: string, username = '', error?: string): string {
  const problem = error === undefined ? '' : `<p class="flash error" role="alert">${escapeHtml(error)}</p>\n`
  return layout('Sign in', `${problem}<form method="post" action="/login">
${csrfField(csrfToken)}
<label>User name <input id="username" name="username" autocomplete="username" required value="${escapeHtml(username)}"></label>
<label>Password <input id="password" name="password" type="password" autocomplete="current-password" required></label>
<button id="submit" type="submit">Sign in</button>
</form>
<p>Demo account: <code>alice</code> / <code>wonderland</code></p>`)
}

export function errorPage (title: string, message: string): string {
  return layout(title, `<p id="status">${escapeHtml(message)}</p>\n<p><a href="/">Home</a></p>`)
}

/** Sends a page that must never be cached: it shows who is signed in. */
export function sendPage (reply: FastifyReply, status: number, html: string): FastifyReply {
  return reply.code(status)
    .type('text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('content-security-policy', CSP)
    .header('referrer-policy', 'same-origin')
    .send(html)
}
