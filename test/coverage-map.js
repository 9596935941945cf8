// Coverage is measured on the package's own code (src/) only, whatever a test also loads
// (examples, helpers, fixtures).
import { readdirSync } from 'node:fs'
import { join } from 'node:path'

function sources (dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sources(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [])
}

const all = sources('src')

export default function coverageMap () {
  return all
}
