// One benchmark server in its own process: `node --import tsx bench/server.ts <kind>`, driven over IPC.
import { writeFile } from 'node:fs/promises'
import { Session as InspectorSession } from 'node:inspector/promises'
import { join } from 'node:path'
import { NotBuilt, buildServer, type ServerConfig } from './apps.js'
import type { ServerKind } from './scenarios.js'

/** Parent → child. */
export type Command =
  | { type: 'mark' }
  | { type: 'profile-start' }
  | { type: 'profile-stop', name: string }
  | { type: 'exit' }

/** Child → parent. */
export type Report =
  | { type: 'ready', port: number }
  | { type: 'failed', notBuilt: boolean, message: string }
  | { type: 'mark', cpuUs: number, rss: number }
  | { type: 'profiled', file: string }

function send (report: Report): void {
  process.send?.(report)
}

async function main (): Promise<void> {
  const kind = process.argv[2] as ServerKind
  const config = JSON.parse(process.env.BENCH_CONFIG ?? '{}') as ServerConfig
  const profileDir = process.env.BENCH_PROFILE_DIR
  let app
  try {
    app = await buildServer(kind, config)
    await app.listen({ host: '127.0.0.1', port: 0 })
  } catch (error) {
    send({ type: 'failed', notBuilt: error instanceof NotBuilt, message: (error as Error).message })
    process.exit(1)
  }
  const address = app.server.address()
  const inspector = profileDir === undefined ? null : new InspectorSession()

  process.on('message', (command: Command) => {
    switch (command.type) {
      case 'mark': {
        const cpu = process.cpuUsage()
        send({ type: 'mark', cpuUs: cpu.user + cpu.system, rss: process.memoryUsage.rss() })
        break
      }
      case 'profile-start':
        startProfile(inspector).catch(reportProfileError)
        break
      case 'profile-stop':
        stopProfile(inspector, profileDir, command.name).catch((error: Error) => {
          reportProfileError(error)
          send({ type: 'profiled', file: '' })
        })
        break
      case 'exit':
        process.exit(0)
    }
  })
  // The bench went away: never outlive it.
  process.on('disconnect', () => process.exit(0))
  send({ type: 'ready', port: typeof address === 'object' && address !== null ? address.port : 0 })
}

function reportProfileError (error: Error): void {
  process.stderr.write(`bench server: profiling failed: ${error.message}\n`)
}

async function startProfile (inspector: InspectorSession | null): Promise<void> {
  if (inspector === null) return
  inspector.connect()
  await inspector.post('Profiler.enable')
  await inspector.post('Profiler.start')
}

async function stopProfile (inspector: InspectorSession | null, dir: string | undefined, name: string): Promise<void> {
  if (inspector === null || dir === undefined) return
  const { profile } = await inspector.post('Profiler.stop')
  const file = join(dir, `${name}.cpuprofile`)
  await writeFile(file, JSON.stringify(profile))
  send({ type: 'profiled', file })
}

await main()
