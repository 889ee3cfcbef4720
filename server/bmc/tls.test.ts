// The per-trust-setting connection pools of bmc/tls.ts against a real HTTPS server (openssl's self-signed
// certificate for 127.0.0.1, as most BMCs ship). The cache is bounded; when a pool is evicted, requests that
// already use it — one under way, one just started, and the next call of a Redfish operation that was handed the
// fetch before the eviction — must still complete: eviction drops the cache entry, it does not close the pool.
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { requireCommand } from '../../test/harness/require.ts';
import { bmcFetch, MAX_AGENTS } from './tls.ts';

let dir: string;
let cert: string;
let server: Server;
let url: string;
/** responses held back until the test releases them (a slow BMC) */
const held: (() => void)[] = [];

beforeAll(async () => {
  requireCommand('openssl', 'openssl');
  dir = await mkdtemp(join(tmpdir(), 'bf-bmc-tls-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'bmc.key'), '-out', join(dir, 'bmc.pem'), '-days', '2', '-subj', '/CN=bmc', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'pipe' });
  cert = await readFile(join(dir, 'bmc.pem'), 'utf8');
  server = createServer({ key: await readFile(join(dir, 'bmc.key')), cert }, (req, res) => {
    const answer = () => res.end(JSON.stringify({ path: req.url }));
    if (req.url === '/slow') held.push(answer);
    else answer();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server?.closeAllConnections();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** fills the cache with other trust settings until the first one in it is evicted (no connection is made for them) */
function evictOldest() {
  for (let i = 0; i < MAX_AGENTS; i++) bmcFetch({ caBundle: `not a certificate ${Math.random()} ${i}` });
}

it('an evicted pool still serves the requests that use it: in flight, just started, and the next call', async () => {
  const f = bmcFetch({ caBundle: cert })!;
  expect(await (await f(`${url}/first`)).json()).toEqual({ path: '/first' });

  // a request the BMC is still answering when the pool is evicted
  const slow = f(`${url}/slow`);
  await expect.poll(() => held.length).toBe(1);
  // a request started in the same tick as the eviction (fetch dispatches it a few microtasks later)
  const started = f(`${url}/started`);
  evictOldest();
  held.shift()!();
  expect(await (await slow).json()).toEqual({ path: '/slow' });
  expect(await (await started).json()).toEqual({ path: '/started' });
  // the Redfish client keeps its fetch for the whole operation (session, then the action)
  expect(await (await f(`${url}/next`)).json()).toEqual({ path: '/next' });
  // and a new fetch for the same setting after the eviction works too (a fresh pool)
  expect(await (await bmcFetch({ caBundle: cert })!(`${url}/fresh`)).json()).toEqual({ path: '/fresh' });
});
