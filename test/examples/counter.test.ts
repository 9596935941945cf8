import t from 'tap'
import { buildCounterApp } from '../../examples/counter.js'
import { Client, SECRET } from '../helpers/app.js'

t.test('the counter example counts a client\'s visits', async (t) => {
  const app = await buildCounterApp(SECRET)
  t.teardown(() => app.close())
  const client = new Client(app)
  t.equal((await client.get('/')).body, 'Visited 1 times\n')
  t.equal((await client.get('/')).body, 'Visited 2 times\n')
  t.equal((await app.inject('/')).body, 'Visited 1 times\n', 'another client starts at one')
})
