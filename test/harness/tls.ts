// Certificates for tests, made by Debian's `openssl` (deps/base.txt): a private CA and server certificates it
// signs, with subjectAltName for the addresses a test connects to. EC P-256 keys: quick to generate.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';

export interface TestCa {
  cert: string;
  key: string;
}

const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });

/** A self-signed CA in DIR (`NAME.crt`, `NAME.key`). */
export function makeCa(dir: string, name = 'ca'): TestCa {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=bootfarm test ${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  return { cert, key };
}

/** A server certificate signed by CA, written to CERT and KEY (overwriting: a renewal); returns its SHA-256
 * fingerprint as node prints it (`AA:BB:…`). */
export function issueCert(ca: TestCa, out: { cert: string; key: string }, { cn = 'localhost', san = ['DNS:localhost', 'IP:127.0.0.1'] } = {}): string {
  const csr = `${out.cert}.csr`;
  const ext = `${out.cert}.ext`;
  openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', out.key, '-out', csr, '-subj', `/CN=${cn}`]);
  writeFileSync(ext, `subjectAltName=${san.join(',')}\nextendedKeyUsage=serverAuth\n`);
  openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', out.cert, '-days', '2', '-extfile', ext]);
  return new X509Certificate(readFileSync(out.cert)).fingerprint256;
}
