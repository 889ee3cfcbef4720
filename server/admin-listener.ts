// The admin API and dashboard over HTTPS (config `admin`): a second listener on the same app, with certificate
// and key read from PEM files. `reload()` (SIGHUP in `bootfarm serve`) reads them again and swaps the TLS
// context with server.setSecureContext: the listening socket and open connections stay; new handshakes get
// the new certificate. A bad pair on reload is refused and the old certificate is kept.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { createSecureContext } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { getRequestListener } from '@hono/node-server';
import { ConfigError, type Config } from './config.ts';
import type { Logger } from './log.ts';

export interface AdminListener {
  url: string;
  port: number;
  server: Server;
  /** the certificate now served */
  certificate(): CertInfo;
  /** read cert and key again; throws (and keeps the old pair) when they do not load */
  reload(): CertInfo;
  close(): Promise<void>;
}

export interface CertInfo {
  fingerprint256: string;
  subject: string;
  validTo: string;
}

type AdminConfig = NonNullable<Config['admin']>;

/** Reads and checks the pair: readable PEM, the key matches the certificate. Errors name the setting and file. */
function loadPair(tls: AdminConfig['tls']): { cert: string; key: string; info: CertInfo } {
  const read = (what: 'cert' | 'key') => {
    try {
      return readFileSync(tls[what], 'utf8');
    } catch (e) {
      throw new ConfigError([`admin.tls.${what}: cannot read ${tls[what]}: ${(e as Error).message}`]);
    }
  };
  const cert = read('cert');
  const key = read('key');
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
    createSecureContext({ cert, key });
  } catch (e) {
    throw new ConfigError([`admin.tls: ${tls.cert} and ${tls.key} are not a usable certificate and key (${(e as Error).message})`]);
  }
  return { cert, key, info: { fingerprint256: x509.fingerprint256, subject: x509.subject.replace(/\n/g, ', '), validTo: x509.validTo } };
}

export async function startAdminListener({ config, fetch, log }: { config: AdminConfig; fetch: Parameters<typeof getRequestListener>[0]; log: Logger }): Promise<AdminListener> {
  let pair = loadPair(config.tls);
  const server = createServer({ cert: pair.cert, key: pair.key }, getRequestListener(fetch));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: config.listen.port, host: config.listen.host }, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.listen.port;
  const host = config.listen.host === '0.0.0.0' ? '127.0.0.1' : config.listen.host === '::' ? '[::1]' : config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host;
  const url = `https://${host}:${port}`;
  log.info({ url, certificate: pair.info }, 'admin API and dashboard serving over TLS');
  return {
    url,
    port,
    server,
    certificate: () => pair.info,
    reload() {
      const next = loadPair(config.tls);
      server.setSecureContext({ cert: next.cert, key: next.key });
      pair = next;
      log.info({ certificate: pair.info }, 'admin TLS certificate reloaded');
      return pair.info;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
