import Fastify from 'fastify'
import sessionPlugin from '../../src/index.js'

/** The error a registration with these options fails with (it must fail). */
export async function registrationError (options: unknown): Promise<Error & { code?: string }> {
  const app = Fastify()
  try {
    await app.register(sessionPlugin, options as never)
    await app.ready()
  } catch (error) {
    return error as Error & { code?: string }
  } finally {
    await app.close()
  }
  throw new Error('registration should have failed')
}
