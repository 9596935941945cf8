// Real Redis for the tests: the shared server at 127.0.0.1:6379, or throwaway redis-servers on
// ports 17000-17999 that a test starts and kills itself. No mocks.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Cluster, Redis, type RedisOptions } from 'ioredis'
import type tap from 'tap'

/** A tap subtest, as the callback of `t.test` receives it. */
export type TapTest = Parameters<Parameters<typeof tap.test>[0]>[0]

export const REDIS_HOST = '127.0.0.1'
export const REDIS_PORT = 6379
const CI = process.env.CI === 'true'

/** What we recommend in the README: fail fast while Redis is away, never replay stale writes. */
export const RECOMMENDED: RedisOptions = { enableOfflineQueue: false, maxRetriesPerRequest: 1 }

function unavailable (reason: string): string {
  if (CI) throw new Error(`${reason}; CI=true requires it, so the run fails`)
  return `${reason}; skipped (under CI=true this fails the run)`
}

/** Null when the Redis at 127.0.0.1:6379 answers; otherwise why its tests are skipped. Throws under CI=true. */
export async function sharedRedisSkipReason (): Promise<string | null> {
  const client = new Redis({
    host: REDIS_HOST,
    port: REDIS_PORT,
    lazyConnect: true,
    connectTimeout: 2000,
    retryStrategy: () => null,
    ...RECOMMENDED
  })
  client.on('error', () => {})
  try {
    await client.connect()
    await client.ping()
    return null
  } catch (error) {
    return unavailable(`Redis is unreachable at ${REDIS_HOST}:${REDIS_PORT} (${(error as Error).message})`)
  } finally {
    client.disconnect()
  }
}

/** Null when these binaries run here; otherwise why the tests that start servers are skipped. Throws under CI=true. */
export function binariesSkipReason (...names: string[]): string | null {
  for (const name of names) {
    const result = spawnSync(name, ['--version'], { stdio: 'ignore' })
    if (result.error !== undefined || result.status !== 0) return unavailable(`${name} cannot be run here`)
  }
  return null
}

/** A client for the shared Redis, ready before it is returned. */
export async function sharedClient (options: RedisOptions = {}): Promise<Redis> {
  const client = new Redis({ host: REDIS_HOST, port: REDIS_PORT, ...RECOMMENDED, ...options })
  await once(client, 'ready')
  return client
}

/** A key prefix no other test (or helper on this machine) uses. */
export function randomPrefix (): string {
  return `test:${randomBytes(6).toString('hex')}:`
}

/** Every key under `prefix`, on one server or on each master of a cluster. */
export async function keysUnder (client: Redis | Cluster, prefix: string): Promise<string[]> {
  const nodes = client instanceof Cluster ? client.nodes('master') : [client]
  const keys: string[] = []
  for (const node of nodes) {
    let cursor = '0'
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
      keys.push(...batch)
      cursor = next
    } while (cursor !== '0')
  }
  return keys
}

/** Deletes every key under `prefix` (one key at a time, so it works on a cluster too). */
export async function removeKeys (client: Redis | Cluster, prefix: string): Promise<void> {
  for (const key of await keysUnder(client, prefix)) await client.del(key)
}

/** A client on the shared Redis for one test: when the test ends, the keys under `prefix` go and the client quits. */
export async function cleaningClient (t: TapTest, prefix: string): Promise<Redis> {
  const client = await sharedClient()
  t.teardown(async () => {
    await removeKeys(client, prefix)
    await client.quit()
  })
  return client
}

function canListen (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, REDIS_HOST, () => server.close(() => resolve(true)))
  })
}

/** A port in this suite's range (17000-17999) that nothing listens on now, and not one in `taken`. */
export async function freePort (taken: number[] = []): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = 17000 + Math.floor(Math.random() * 1000)
    if (!taken.includes(port) && await canListen(port)) return port
  }
  throw new Error('no free port in 17000-17999')
}

/** A redis-server of our own, without persistence, that the test kills and may restart on the same port. */
export class RedisServer {
  process: ChildProcess | null = null
  output = ''

  private constructor (readonly port: number, readonly dir: string, readonly args: string[]) {}

  static async start (port: number, args: string[] = []): Promise<RedisServer> {
    const dir = await mkdtemp(join(tmpdir(), 'fsf-redis-'))
    const server = new RedisServer(port, dir, args)
    await server.restart()
    return server
  }

  /** Starts the server (again) on its port; resolves once it accepts connections. */
  async restart (): Promise<void> {
    const child = spawn('redis-server', [
      '--port', String(this.port), '--bind', REDIS_HOST, '--dir', this.dir,
      '--save', '', '--appendonly', 'no', '--loglevel', 'notice', ...this.args
    ], { stdio: ['ignore', 'pipe', 'pipe'] })
    this.process = child
    const ready = new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer): void => {
        this.output += chunk.toString()
        if (this.output.includes('Ready to accept connections')) resolve()
      }
      child.stdout.on('data', onData)
      child.stderr.on('data', onData)
      child.once('exit', (code) => reject(new Error(`redis-server on ${this.port} exited (${code}): ${this.output.slice(-500)}`)))
    })
    // An unref'd timer: once the server is up, the spare 10 s wait must not hold the test process open.
    await Promise.race([ready, sleep(10_000, undefined, { ref: false }).then(() => { throw new Error(`redis-server on ${this.port} did not start`) })])
    this.output = ''
  }

  /** SIGKILL, as a crash or an OOM kill would; resolves once the process is gone. */
  async kill (): Promise<void> {
    const child = this.process
    this.process = null
    if (child === null || child.exitCode !== null || child.signalCode !== null) return
    const exited = once(child, 'exit')
    child.kill('SIGKILL')
    await exited
  }

  /** Kills the server and removes its directory. */
  async stop (): Promise<void> {
    await this.kill()
    await rm(this.dir, { recursive: true, force: true })
  }
}

/** A 3-master Redis Cluster on six free ports of our range (three for clients, three for the cluster bus). */
export class RedisCluster {
  private constructor (readonly servers: RedisServer[]) {}

  get nodes (): Array<{ host: string, port: number }> {
    return this.servers.map((server) => ({ host: REDIS_HOST, port: server.port }))
  }

  static async start (): Promise<RedisCluster> {
    const ports: number[] = []
    for (let i = 0; i < 6; i++) ports.push(await freePort(ports))
    const servers: RedisServer[] = []
    const cluster = new RedisCluster(servers)
    try {
      for (let i = 0; i < 3; i++) {
        servers.push(await RedisServer.start(ports[i] as number, [
          '--cluster-enabled', 'yes',
          '--cluster-config-file', 'nodes.conf',
          '--cluster-port', String(ports[i + 3]),
          '--cluster-node-timeout', '5000'
        ]))
      }
      const create = spawnSync('redis-cli', [
        '--cluster', 'create', ...cluster.nodes.map((n) => `${n.host}:${n.port}`),
        '--cluster-replicas', '0', '--cluster-yes'
      ], { encoding: 'utf8', timeout: 30_000 })
      if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`)
      await cluster.#waitUntilOk()
      return cluster
    } catch (error) {
      await cluster.stop()
      throw error
    }
  }

  async #waitUntilOk (): Promise<void> {
    for (let attempt = 0; attempt < 100; attempt++) {
      const states = this.servers.map((server) => spawnSync('redis-cli', ['-p', String(server.port), 'cluster', 'info'], { encoding: 'utf8' }).stdout)
      if (states.every((info) => info.includes('cluster_state:ok'))) return
      await sleep(100)
    }
    throw new Error('the cluster did not reach cluster_state:ok')
  }

  async stop (): Promise<void> {
    await Promise.all(this.servers.map((server) => server.stop()))
  }
}

/**
 * A redis-server of the test's own on a free port (to stop and restart at will), and a client on
 * it with the README's options and a quick reconnect, so a test need not wait ioredis's backoff.
 * Both are closed when the test ends.
 */
export async function ownRedis (t: TapTest): Promise<{ server: RedisServer, redis: Redis }> {
  const server = await RedisServer.start(await freePort())
  t.teardown(() => server.stop())
  const redis = new Redis({ port: server.port, ...RECOMMENDED, retryStrategy: () => 50, lazyConnect: true })
  // The client's error events during an outage must not crash anything.
  redis.on('error', () => {})
  await redis.connect()
  t.teardown(() => redis.disconnect())
  return { server, redis }
}
