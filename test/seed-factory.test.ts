// A custom factory written the way the seed's README writes one: load builds a Session,
// save returns the id. This is what "writing your own factory" in the README shows.
import t from 'tap'
import Fastify from 'fastify'
import sessionPlugin, { Session, type SessionFactory } from '../src/index.js'
import { Client, SECRET } from './helpers/app.js'

class ExampleFactory implements SessionFactory {
  readonly rows = new Map<string, string>()

  async load (id: string): Promise<Session | null> {
    const row = this.rows.get(id)
    return row === undefined ? null : Session.fromJSON(JSON.parse(row))
  }

  async save (session: Session): Promise<string> {
    this.rows.set(session.id as string, JSON.stringify(session))
    return session.id as string
  }

  async destroy (id: string): Promise<void> {
    this.rows.delete(id)
  }
}

t.test('the seed\'s counter runs on a seed-style factory', async (t) => {
  const factory = new ExampleFactory()
  const app = Fastify()
  await app.register(sessionPlugin, { factory, secret: SECRET })
  app.get('/', async (request) => {
    const counter = (request.session.get('counter') ?? 0) + 1
    request.session.set('counter', counter)
    return `Visited ${counter} times\n`
  })
  t.teardown(() => app.close())
  const client = new Client(app)
  t.equal((await client.get('/')).body, 'Visited 1 times\n')
  t.equal((await client.get('/')).body, 'Visited 2 times\n')
  t.equal(factory.rows.size, 1)
  const row = JSON.parse([...factory.rows.values()][0] as string)
  t.same(Object.keys(row).sort(), ['createdAt', 'data', 'expiresAt', 'id', 'touchedAt'])
  t.same(row.data, { counter: 2 })
})
