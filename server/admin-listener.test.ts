// The admin listener over TLS (issue 17 item 3), end to end: the real `bootfarm serve` in a child process with a
// certificate from a private CA made by openssl, the real CLI in this process. With the CA the CLI works;
// without it the CLI says the certificate is not trusted; the boot listener no longer serves the admin API or
// the dashboard; replacing the files and sending SIGHUP serves the new certificate on the same listening socket
// (a connection opened before keeps working); a pair that does not load is refused and the old one kept.
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { main, CliError } from './cli.ts';
import { httpsFetch } from './cli/http.ts';
import { bootListenerFetch, isBootListenerPath } from './api/listeners.ts';
import { startAdminListener } from './admin-listener.ts';
import { ConfigError } from './config.ts';
import { silentLogger } from './log.ts';
import { freePort } from '../test/harness/net.ts';
import { until } from '../test/harness/wait.ts';
import { issueCert, makeCa, type TestCa } from '../test/harness/tls.ts';

const TOKEN = 'admin-token-for-the-tls-test-0123456789';

describe('boot listener path allowlist', () => {
  it('keeps iPXE, agent, images, health and metrics; everything else is admin-only', () => {
    for (const p of ['/boot.ipxe', '/ipxe/4c4c4544-0042-3510-8052-b4c04f4e4d32', '/api/v1/agent/x/register', '/images/sha256:ab', '/healthz', '/readyz', '/metrics']) expect(isBootListenerPath(p), p).toBe(true);
    for (const p of ['/', '/ui', '/ui/login', '/api/v1/nodes', '/api/v1/openapi.json', '/api/v1/images', '/api/v1/agentx', '//api/v1/nodes', '/boot.ipxe/x']) expect(isBootListenerPath(p), p).toBe(false);
  });

  it('answers 404 in the API error shape, after URL normalisation', async () => {
    const inner = async () => new Response('inner');
    const f = bootListenerFetch(inner);
    const res = await f(new Request('http://x/api/v1/agent/../nodes'), {});
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: { code: 'not_found', message: 'GET /api/v1/nodes is not served on the boot listener: the admin API and dashboard are on the admin listener (HTTPS, config admin.listen)' } });
    expect(await (await f(new Request('http://x/ipxe/abc'), {})).text()).toBe('inner');
  });

  it('refuses to start with a missing or mismatched certificate, naming the setting', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bf-tls-cfg-'));
    try {
      const ca = makeCa(dir);
      const pair = { cert: join(dir, 'a.crt'), key: join(dir, 'a.key') };
      issueCert(ca, pair);
      const start = (tls: { cert: string; key: string }) => startAdminListener({ config: { listen: { host: '127.0.0.1', port: 0 }, tls }, fetch: () => new Response(''), log: silentLogger() });
      await expect(start({ cert: join(dir, 'missing.crt'), key: pair.key })).rejects.toThrow(/admin\.tls\.cert: cannot read .*missing\.crt/);
      const err = await start({ cert: pair.cert, key: ca.key }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(/admin\.tls: .*a\.crt and .*ca\.key are not a usable certificate and key/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('bootfarm serve with an admin listener over TLS', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bf-tls-'));
  const tls = { cert: join(dir, 'admin.crt'), key: join(dir, 'admin.key') };
  let ca: TestCa;
  let child: ChildProcess | undefined;
  let log = '';
  let bootUrl: string;
  let adminUrl: string;
  let adminPort: number;
  let firstFingerprint: string;

  beforeAll(async () => {
    ca = makeCa(dir);
    firstFingerprint = issueCert(ca, tls);
    const [bootPort, port] = [await freePort(), await freePort()];
    adminPort = port;
    bootUrl = `http://127.0.0.1:${bootPort}`;
    adminUrl = `https://127.0.0.1:${adminPort}`;
    const config = join(dir, 'bootfarm.yaml');
    writeFileSync(
      config,
      stringify({
        dataDir: join(dir, 'data'),
        http: { host: '127.0.0.1', port: bootPort },
        admin: { listen: { host: '127.0.0.1', port: adminPort }, tls },
        auth: { tokens: [{ name: 'ops', role: 'admin', token: TOKEN }] },
      }),
    );
    child = spawn(process.execPath, ['--import', 'tsx', 'server/cli.ts', 'serve'], { env: { ...process.env, BOOTFARM_CONFIG: config, BOOTFARM_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d) => (log += d));
    child.stderr!.on('data', (d) => (log += d));
    await until(
      'the server to listen on both listeners',
      async () => {
        if (child?.exitCode !== null) throw new Error(`server exited: ${log}`);
        return log.includes('bootfarm serving');
      },
      { limitMs: 150_000, pollMs: 50 },
    );
  }, 180_000);
  afterAll(async () => {
    if (child?.pid && child.exitCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  const cli = async (args: string[], env: Record<string, string> = {}) => {
    const out: string[] = [];
    const code = await main(args, { out: (l) => out.push(l), err: () => {}, env: { BOOTFARM_TOKEN: TOKEN, ...env } });
    return { code, out };
  };
  /** the certificate a fresh TLS handshake gets (trusting the test CA) */
  const peerFingerprint = () =>
    new Promise<string>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: adminPort, ca: readFileSync(ca.cert), servername: 'localhost' }, () => {
        resolve(s.getPeerCertificate().fingerprint256);
        s.end();
      });
      s.on('error', reject);
    });

  it('the CLI verifies the certificate: works with the CA (--ca or BOOTFARM_CA), fails clearly without it', async () => {
    const withCa = await cli(['nodes', 'list', '--url', adminUrl, '--ca', ca.cert]);
    expect(withCa.code).toBe(0);
    expect(withCa.out[0]).toMatch(/^UUID\s+STATE\s+SERIAL/);
    expect((await cli(['fleet', 'status', '--json'], { BOOTFARM_URL: adminUrl, BOOTFARM_CA: ca.cert })).out.join('\n')).toMatch(/"degraded": false/);

    const without = await cli(['nodes', 'list', '--url', adminUrl]).catch((e: unknown) => e);
    expect(without).toBeInstanceOf(CliError);
    expect((without as Error).message).toMatch(
      new RegExp(`^cannot reach ${adminUrl}: the server certificate is not trusted \\(UNABLE_TO_VERIFY_LEAF_SIGNATURE: unable to verify the first certificate\\); pass --ca FILE \\(or BOOTFARM_CA\\)`),
    );
    // a CA that did not sign it is no better
    const other = makeCa(dir, 'other');
    await expect(cli(['nodes', 'list', '--url', adminUrl, '--ca', other.cert])).rejects.toThrow(/the server certificate is not trusted/);
    await expect(cli(['nodes', 'list', '--url', adminUrl, '--ca', join(dir, 'nope.pem')])).rejects.toThrow(/cannot read the CA bundle .*nope\.pem/);
  });

  it('the boot listener keeps iPXE and health but no longer serves the admin API or the dashboard', async () => {
    const boot = await fetch(`${bootUrl}/boot.ipxe`);
    expect(boot.status).toBe(200);
    expect((await boot.text()).split('\n')[0]).toBe('#!ipxe');
    expect((await fetch(`${bootUrl}/healthz`)).status).toBe(200);
    for (const path of ['/api/v1/nodes', '/ui', '/ui/login', '/api/v1/openapi.json', '/']) {
      const r = await fetch(`${bootUrl}${path}`, { headers: { authorization: `Bearer ${TOKEN}` }, redirect: 'manual' });
      expect(r.status, path).toBe(404);
      expect(((await r.json()) as { error: { message: string } }).error.message).toContain('is not served on the boot listener');
    }
    // agent calls still reach their routes on the boot listener (refused for want of a node token, not 404)
    expect((await fetch(`${bootUrl}/api/v1/agent/4c4c4544-0042-3510-8052-b4c04f4e4d32/heartbeat`, { method: 'POST' })).status).toBe(401);
    await expect(cli(['nodes', 'list', '--url', bootUrl])).rejects.toThrow(/^404 not_found: GET \/api\/v1\/nodes is not served on the boot listener/);
    // the dashboard is on the admin listener, and its session cookie is Secure there
    const https = httpsFetch(ca.cert, (m) => new Error(m));
    expect(await (await https(`${adminUrl}/ui/login`)).text()).toContain('name="token"');
    const login = await https(`${adminUrl}/ui/login`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `token=${TOKEN}` });
    expect(login.status).toBe(302);
    expect(login.headers.get('set-cookie')).toMatch(/; Secure/);
  });

  it('SIGHUP serves a replaced certificate on the same listener; a bad pair is refused and the old one kept', async () => {
    expect(await peerFingerprint()).toBe(firstFingerprint);
    // a connection opened before the reload
    const before: TLSSocket = await new Promise((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: adminPort, ca: readFileSync(ca.cert), servername: 'localhost' }, () => resolve(s));
      s.on('error', reject);
    });
    const renewed = issueCert(ca, tls);
    expect(renewed).not.toBe(firstFingerprint);
    process.kill(child!.pid!, 'SIGHUP');
    await until('the renewed certificate to be served', async () => (await peerFingerprint()) === renewed, { limitMs: 60_000, pollMs: 50 });
    await until('the reload to be logged', () => log.includes('admin TLS certificate reloaded'), { limitMs: 60_000 });
    // the old connection was not dropped: it still answers, with the certificate it was opened with
    expect(before.getPeerCertificate().fingerprint256).toBe(firstFingerprint);
    const answer = await new Promise<string>((resolve) => {
      let text = '';
      before.on('data', (d) => (text += d));
      before.on('end', () => resolve(text));
      before.write('GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n');
    });
    expect(answer).toMatch(/^HTTP\/1\.1 200/);
    expect((await cli(['nodes', 'list', '--url', adminUrl, '--ca', ca.cert])).code).toBe(0);

    // a key that does not match the certificate: logged, and the renewed certificate stays
    const goodKey = readFileSync(tls.key);
    copyFileSync(ca.key, tls.key);
    process.kill(child!.pid!, 'SIGHUP');
    await until('the refused reload to be logged', () => log.includes('admin TLS certificate not reloaded'), { limitMs: 60_000 });
    expect(await peerFingerprint()).toBe(renewed);
    writeFileSync(tls.key, goodKey);
    expect(child!.exitCode).toBe(null);
  }, 120_000);
});
