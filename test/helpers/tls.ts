// A throwaway TLS identity for https tests: made by openssl, deleted when the test ends.
import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { Test } from 'tap'

/** A self-signed certificate for 127.0.0.1 (PEM files in a temporary folder). */
export async function selfSignedCertificate (t: Test): Promise<{ certFile: string, keyFile: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'session-test-tls-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const certFile = join(dir, 'cert.pem')
  const keyFile = join(dir, 'key.pem')
  await promisify(execFile)('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', keyFile, '-out', certFile, '-days', '1',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'
  ])
  return { certFile, keyFile }
}
