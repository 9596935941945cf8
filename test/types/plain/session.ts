// Session<MyData>: keys and value types of the data come from the type argument.
import { Session, type SessionRecord } from 'fastify-session-factory'
import { expectType } from '../expect.js'

interface Cart {
  items: string[]
  total: number
}

const cart = new Session<Cart>({ items: [] })
expectType<number | undefined>()(cart.get('total'))
expectType<number>()(cart.get('total', 0))
expectType<string[] | undefined>()(cart.get('items'))
expectType<Readonly<Partial<Cart>>>()(cart.data)
expectType<Cart['items'] | undefined>()(cart.changes().set.items)
expectType<Array<'items' | 'total'>>()(cart.changes().deleted)
expectType<SessionRecord<Cart>>()(cart.toJSON())
expectType<Session<Cart>>()(Session.fromJSON<Cart>(cart.toJSON()))
expectType<Session<Cart>>()(cart.set('total', 3).set('items', ['apple']))
cart.delete('items')
cart.has('total')

// @ts-expect-error total is a number
cart.set('total', '3')
// @ts-expect-error Cart has no user
cart.get('user')
// @ts-expect-error Cart has no user
cart.delete('user')
// @ts-expect-error the fallback has the key's type
cart.get('total', 'none')
// @ts-expect-error data is read-only: change it with set()
cart.data.total = 1

// A type alias works as well as an interface.
type Prefs = { theme: 'dark' | 'light' }
const prefs = new Session<Prefs>()
prefs.set('theme', 'dark')
// @ts-expect-error not a theme
prefs.set('theme', 'blue')

// Without a type argument a session is a Session<SessionData>: its first values do not narrow it.
const open = new Session({ a: 1 })
expectType<Session>()(open)
open.set('b', 'anything')
