// The factory of the README's "Writing your own factory", word for word (only the import points
// at the source, and the class is exported): test/examples/readme-factory.test.ts keeps the two
// the same, and runs the conformance suite's required group on it.
import { Session, type SessionFactory } from '../src/index.js'

export class ExampleFactory implements SessionFactory {
  rows = new Map<string, string>()   // your database

  async load (id: string): Promise<Session | null> {
    const row = this.rows.get(id)
    if (row === undefined) return null
    const session = Session.fromJSON(JSON.parse(row))
    if (session.expiresAt !== null && session.expiresAt <= Date.now()) return null
    return session
  }

  async save (session: Session): Promise<string> {
    this.rows.set(session.id!, JSON.stringify(session))
    return session.id!   // the cookie's id
  }

  async destroy (id: string): Promise<void> {   // optional
    this.rows.delete(id)
  }
}
