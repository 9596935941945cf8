// Reads the example's settings from the environment, with clear errors for values that make no sense.
import { randomBytes } from 'node:crypto'
import type { LoginAppOptions } from './app.js'

export interface LoginConfig {
  app: LoginAppOptions
  listen: { port: number, host: string }
  /** Things the operator should hear about once the logger is up. */
  warnings: string[]
}

function integer (env: NodeJS.ProcessEnv, name: string, min: number, max: number): number | undefined {
  const text = env[name]
  if (text === undefined || text === '') return undefined
  const value = Number(text)
  if (!/^\d+$/.test(text) || value < min || value > max) {
    throw new Error(`${name} must be an integer from ${min} to ${max}`)
  }
  return value
}

function text (env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name]
  return value === undefined || value === '' ? undefined : value
}

/**
 * PORT, HOST, SESSION_SECRET, IDLE_TIMEOUT (seconds), COOKIE_NAME, HTTPS_CERT + HTTPS_KEY
 * (PEM file paths) and REDIS_URL.
 */
export function configFromEnv (env: NodeJS.ProcessEnv): LoginConfig {
  const warnings: string[] = []
  let secret = text(env, 'SESSION_SECRET')
  if (secret === undefined) {
    secret = randomBytes(32).toString('base64url')
    warnings.push('SESSION_SECRET is not set: using a random secret, so sessions end when the server restarts')
  }
  const app: LoginAppOptions = { secret }

  const idleTimeout = integer(env, 'IDLE_TIMEOUT', 1, 31_536_000)
  if (idleTimeout !== undefined) app.idleTimeout = idleTimeout
  const cookieName = text(env, 'COOKIE_NAME')
  if (cookieName !== undefined) app.cookieName = cookieName

  const certFile = text(env, 'HTTPS_CERT')
  const keyFile = text(env, 'HTTPS_KEY')
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new Error('HTTPS_CERT and HTTPS_KEY go together: set both (PEM file paths) or neither')
  }
  if (certFile !== undefined && keyFile !== undefined) app.https = { certFile, keyFile }

  const redisUrl = text(env, 'REDIS_URL')
  if (redisUrl !== undefined) app.redis = { url: redisUrl }

  return {
    app,
    listen: { port: integer(env, 'PORT', 0, 65_535) ?? 3000, host: text(env, 'HOST') ?? '127.0.0.1' },
    warnings
  }
}
