// `npm run example:login`: the sign-in example on http://127.0.0.1:3000 (settings: see config.ts).
import { buildLoginApp } from './app.js'
import { configFromEnv, type LoginConfig } from './config.js'

let config: LoginConfig
try {
  config = configFromEnv(process.env)
} catch (error) {
  console.error(`login example: ${(error as Error).message}`)
  process.exit(1)
}
const app = await buildLoginApp({ ...config.app, logger: true })
for (const warning of config.warnings) app.log.warn(warning)

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    app.close().then(() => process.exit(0), () => process.exit(1))
  })
}
await app.listen(config.listen)
