import type { Migrate, SessionFactory } from '../../src/index.js'

/** The old release's shape: `name` where the new one has `user`. */
export const renameUser: Migrate = (data) => {
  if (typeof data.name !== 'string') return null
  const { name, ...rest } = data
  return { ...rest, user: name }
}

/** The store's record for a session id, read through the factory itself: its data, or null. */
export async function stored (factory: SessionFactory<any>, id: string): Promise<Record<string, unknown> | null> {
  const session = await factory.load(id)
  return session === null ? null : { ...session.data }
}
