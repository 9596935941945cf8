// npm run build: dist/esm (ES modules) and dist/cjs (CommonJS), each with its declaration files,
// from src/ by tsc (tsconfig.build.json and tsconfig.build.cjs.json, side by side). Each tree
// says its module format in a package.json of its own, which Node and TypeScript both read.
// `--no-check` skips the type-check (for test/package.test.ts: `npm run typecheck` does it).
import { spawn } from 'node:child_process'
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')

// Packages our declarations import that ship ES modules only. A CommonJS declaration file
// imports their types in import mode, so that a consumer's CommonJS TypeScript (module node16)
// reads them without TS1479; at run time our CommonJS build require()s them (Node >= 20.19).
const ESM_ONLY = ['typebox']

const noCheck = process.argv.includes('--no-check') ? ['--noCheck'] : []

function build (project) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [tsc, '-p', project, ...noCheck], { stdio: 'inherit' })
    child.on('error', reject)
    child.on('close', (code) => code === 0 ? resolve() : reject(new Error(`tsc -p ${project} exited ${code}`)))
  })
}

function declarations (dir) {
  return readdirSync(dir, { recursive: true }).filter((file) => file.endsWith('.d.ts')).map((file) => join(dir, file))
}

/** `import { A, type B } from 'pkg';` → `import type { A, B } from 'pkg' with { 'resolution-mode': 'import' };` */
function importMode (file) {
  const text = readFileSync(file, 'utf8')
  let changed = text
  for (const name of ESM_ONLY) {
    const from = new RegExp(`^import (?:type )?\\{([^}]*)\\} from '(${name}(?:/[^']*)?)';$`, 'gm')
    changed = changed.replace(from, (_, names, specifier) =>
      `import type {${names.replace(/\btype /g, '')}} from '${specifier}' with { 'resolution-mode': 'import' };`)
    const left = changed.split('\n').find((line) => line.includes(`'${name}`) && !line.includes('resolution-mode'))
    if (left !== undefined) throw new Error(`${file}: an import of ${name} the build cannot put in import mode: ${left}`)
  }
  if (changed !== text) writeFileSync(file, changed)
}

rmSync('dist', { recursive: true, force: true })
await Promise.all([build('tsconfig.build.json'), build('tsconfig.build.cjs.json')])
writeFileSync('dist/esm/package.json', JSON.stringify({ type: 'module' }) + '\n')
writeFileSync('dist/cjs/package.json', JSON.stringify({ type: 'commonjs' }) + '\n')
for (const file of declarations('dist/cjs')) importMode(file)
