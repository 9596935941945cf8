// session.reload() admits the reloaded data through the `schema` option as a load does (issue 25,
// item 1): an older release rewrote the record in its own shape while this request held the
// session; reload() upgrades it with `migrate` and marks it to be saved back, or, without
// `migrate`, the session comes back new and empty (record destroyed, cookie cleared), as an
// ended one does. In a route and outside one (app.sessions), on Memory, Redis and PostgreSQL.
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { Type } from 'typebox'
import type { SessionFactory } from '../src/index.js'
import { Client, buildApp, sessionIdOf, setCookies, type Options } from './helpers/app.js'
import type { TapTest } from './helpers/redis.js'
import { renameUser, stored } from './helpers/schema-releases.js'
import { storesUnderTest } from './helpers/stores.js'

const schema = Type.Object({
  user: Type.Optional(Type.String({ minLength: 1 })),
  counter: Type.Optional(Type.Integer({ minimum: 0 }))
}, { additionalProperties: false })

/** The old release and the new one on one store; the new one's /reload route lets the old rewrite the session, then reloads it. */
async function releases (t: TapTest, factory: SessionFactory<any>, options: Options): Promise<{ old: FastifyInstance, next: FastifyInstance }> {
  const old = await buildApp({ factory })
  const next = await buildApp({ factory, schema, ...options })
  next.post('/reload', async (request) => {
    await rewriteOld(old, request.headers.cookie as string)
    await request.session.reload()
    return { data: request.session.data, isNew: request.session.isNew }
  })
  t.teardown(async () => {
    await next.close()
    await old.close()
  })
  return { old, next }
}

/** The old release's write: `user` renamed `name`, as it stores it. */
async function rewriteOld (old: FastifyInstance, cookie: string): Promise<void> {
  const session = await old.sessions.load(cookie)
  if (session === null) throw new Error('no session to rewrite')
  session.set('name', session.get('user'))
  session.delete('user')
  await session.save()
}

for (const store of storesUnderTest) {
  t.test(`${store.name}: in a route, reload() upgrades old-shape data with migrate, saved back in onSend`, { skip: store.skip }, async (t) => {
    const factory = await store.factory(t)
    const { next } = await releases(t, factory, { migrate: renameUser })
    const client = new Client(next)
    await client.post('/set', { user: 'ada', counter: 1 })
    const id = sessionIdOf(client.cookie as string)
    const reply = await client.post('/reload')
    t.equal(reply.statusCode, 200)
    t.same(reply.json(), { data: { counter: 1, user: 'ada' }, isNew: false }, 'the handler sees the upgraded data')
    t.same(await stored(factory, id), { counter: 1, user: 'ada' }, 'saved back in the new shape')
    t.equal(sessionIdOf(client.cookie as string), id, 'the same session')
  })

  t.test(`${store.name}: in a route, reload() of data the schema refuses, without migrate, gives a new empty session`, { skip: store.skip }, async (t) => {
    const factory = await store.factory(t)
    const { next } = await releases(t, factory, {})
    const client = new Client(next)
    await client.post('/set', { user: 'ada', counter: 1 })
    const id = sessionIdOf(client.cookie as string)
    const reply = await client.post('/reload')
    t.equal(reply.statusCode, 200)
    t.same(reply.json(), { data: {}, isNew: true }, 'new and empty, as an ended session reloads')
    t.match(setCookies(reply), [/^sid=;/], 'the cookie cleared')
    t.equal(await stored(factory, id), null, 'the record destroyed, as at a load')
  })

  t.test(`${store.name}: outside a route, reload() upgrades and saves back, or gives a new empty session`, { skip: store.skip }, async (t) => {
    const factory = await store.factory(t)
    const upgrading = await releases(t, factory, { migrate: renameUser })
    const strict = await releases(t, factory, {})
    const client = new Client(upgrading.next)
    await client.post('/set', { user: 'ada', counter: 1 })
    const cookie = client.cookie as string
    const id = sessionIdOf(cookie)

    const session = await upgrading.next.sessions.load(cookie)
    await rewriteOld(upgrading.old, cookie)
    await session?.reload()
    t.same(session?.data, { counter: 1, user: 'ada' }, 'upgraded')
    t.equal(session?.isModified, false, 'and saved back at once, as app.sessions.load() does')
    t.same(await stored(factory, id), { counter: 1, user: 'ada' }, 'the store holds the new shape')

    const held = await strict.next.sessions.load(cookie)
    await rewriteOld(strict.old, cookie)
    await held?.reload()
    t.equal(held?.isNew, true, 'refused: new')
    t.same(held?.data, {}, 'and empty')
    t.equal(await stored(factory, id), null, 'the record destroyed')
  })
}

t.test('a valid reload after a migrated load leaves nothing to save back', async (t) => {
  const factory = (await storesUnderTest[0]?.factory(t)) as SessionFactory<any>
  const { old, next } = await releases(t, factory, { migrate: renameUser })
  next.post('/load-then-reload', async (request) => {
    const migrated = request.session.get('user')
    // Another request saved the upgrade meanwhile; the reload finds valid data.
    const other = await next.sessions.load(request.headers.cookie as string)
    other?.set('counter', 2)
    await other?.save()
    await request.session.reload()
    return { migrated, data: request.session.data, isModified: request.session.isModified }
  })
  const client = new Client(old)
  await client.post('/set', { name: 'ada', counter: 1 })
  const reply = await next.inject({ method: 'POST', url: '/load-then-reload', headers: { cookie: client.cookie as string } })
  t.same(reply.json(), { migrated: 'ada', data: { counter: 2, user: 'ada' }, isModified: false })
})
