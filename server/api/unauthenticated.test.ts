// Every authenticated route of the running server, as a caller without a valid credential meets it (issue 13
// item 6): 401 before any validation — whatever the path parameters, query, content type or body — and the same
// answer whether or not the node exists. The routes come from the server's own openapi.json, so a new route is
// walked as soon as it is documented. The server is the product's (startServer: every module mounted), on a
// PGlite data directory whose files this test also checks are private to the server's user.
import { lstatSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseConfig } from '../config.ts';
import { silentLogger } from '../log.ts';
import { startServer, type Running } from '../main.ts';

const ADMIN = 'walk-admin-token-0123456789abcdef';
const EXISTING = 'eeeeeeee-0000-0000-0000-000000000001';
const MISSING = 'ffffffff-0000-0000-0000-00000000dead';
let dir: string;
let server: Running;
let doc: { paths: Record<string, Record<string, { security?: unknown[]; 'x-role'?: string; requestBody?: unknown }>> };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bootfarm-walk-'));
  const config = parseConfig({ dataDir: dir, http: { host: '127.0.0.1', port: 0 }, auth: { tokens: [{ name: 'walker', role: 'admin', token: ADMIN }] }, fleet: { enabled: false } });
  server = await startServer(config, { log: silentLogger() });
  // a node that exists, to compare with one that does not
  const enrol = await fetch(`${server.url}/api/v1/nodes/${EXISTING}/bmc`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ driver: 'ipmi', address: '192.0.2.1', username: 'admin', password: 'secret-password' }),
  });
  expect(enrol.status).toBe(200);
  doc = (await (await fetch(`${server.url}/api/v1/openapi.json`)).json()) as typeof doc;
});
afterAll(async () => {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** the documented routes that need an admin-API role (viewer, operator, admin) */
function roleRoutes() {
  const out: { method: string; path: string; hasBody: boolean }[] = [];
  for (const [path, ops] of Object.entries(doc.paths))
    for (const [method, op] of Object.entries(ops)) if (['viewer', 'operator', 'admin'].includes(op['x-role'] ?? '')) out.push({ method: method.toUpperCase(), path, hasBody: method !== 'get' && method !== 'delete' });
  return out;
}

const PARAMS = [EXISTING, MISSING, 'not-a-uuid', '%00', 'a'.repeat(300), '..%2f..%2fetc', '%F0%9F%92%A5', '%ud800', '-1'];
const BODIES: { type?: string; body?: string }[] = [
  {},
  { type: 'application/json', body: '{' },
  { type: 'application/json', body: '['.repeat(5000) + ']'.repeat(5000) },
  { type: 'application/json', body: '{"action":"retire","reason":"\\u0000","labels":{"a\\ud800":null}}' },
  { type: 'application/json', body: JSON.stringify({ unexpected: 'x'.repeat(100_000) }) },
  { type: 'text/plain', body: 'hello' },
  { type: 'application/yaml', body: 'a: ' + '['.repeat(1000) + ']'.repeat(1000) },
];
const CREDENTIALS: Record<string, string>[] = [{}, { authorization: 'Bearer not-a-valid-token-0123456789' }, { authorization: 'Basic YWRtaW46YWRtaW4=' }, { cookie: 'bootfarm_session=forged-session-id' }];

const fill = (path: string, value: string) => path.replace(/\{[^}]+\}/g, value);

it('walks every documented admin route and gets 401 without a valid credential, before any validation', async () => {
  const routes = roleRoutes();
  // the core, firmware, images, BMC setup and power modules are all there
  for (const p of ['/api/v1/nodes', '/api/v1/nodes/{uuid}/actions', '/api/v1/firmware/baselines', '/api/v1/nodes/{uuid}/power']) expect(Object.keys(doc.paths)).toContain(p);
  expect(routes.length).toBeGreaterThan(15);
  const wrong: string[] = [];
  let cases = 0;
  for (const r of routes) {
    for (const param of PARAMS) {
      for (const cred of CREDENTIALS) {
        for (const b of r.hasBody ? BODIES : [{}]) {
          const url = `${server.url}${fill(r.path, param)}?state=bogus&limit=-1&%00=1&label=%ud800`;
          const res = await fetch(url, { method: r.method, headers: { ...cred, ...(b.type ? { 'content-type': b.type } : {}) }, body: b.body });
          const text = await res.text();
          cases++;
          let code: string | undefined;
          try {
            code = JSON.parse(text).error?.code;
          } catch {
            code = undefined;
          }
          if (res.status !== 401 || code !== 'unauthorized') wrong.push(`${r.method} ${fill(r.path, param)} ${JSON.stringify(cred)} ${b.type ?? ''}(${b.body?.length ?? 0} B) → ${res.status} ${text.slice(0, 120)}`);
        }
      }
    }
  }
  console.log(`unauthenticated walk: ${routes.length} admin routes, ${cases} requests`);
  expect(wrong).toEqual([]);
}, 240_000); // thousands of requests through the real server: slow on a loaded two-core machine

it('answers an unauthenticated caller the same for a node that exists and one that does not', async () => {
  for (const r of roleRoutes().filter((x) => x.path.includes('{uuid}'))) {
    const answer = async (uuid: string) => {
      const res = await fetch(`${server.url}${fill(r.path, uuid)}`, { method: r.method, headers: r.hasBody ? { 'content-type': 'application/json' } : {}, body: r.hasBody ? '{}' : undefined });
      const body = (await res.json()) as { error: { code: string; message: string } };
      return `${res.status} ${body.error.code} ${body.error.message}`;
    };
    expect(await answer(EXISTING), `${r.method} ${r.path}`).toBe(await answer(MISSING));
  }
}, 240_000); // thousands of requests through the real server: slow on a loaded two-core machine

it('walks the agent routes (per-boot token) too: 401 without a token, whatever the input', async () => {
  const wrong: string[] = [];
  for (const [path, ops] of Object.entries(doc.paths))
    for (const [method, op] of Object.entries(ops)) {
      if (!path.startsWith('/api/v1/agent/') || !op.security?.length) continue;
      for (const param of PARAMS)
        for (const b of method === 'get' ? [{}] : BODIES) {
          const res = await fetch(`${server.url}${fill(path, param)}`, { method: method.toUpperCase(), headers: b.type ? { 'content-type': b.type } : {}, body: b.body });
          if (res.status !== 401) wrong.push(`${method.toUpperCase()} ${fill(path, param)} ${b.type ?? ''}(${b.body?.length ?? 0} B) → ${res.status} ${(await res.text()).slice(0, 120)}`);
        }
    }
  expect(wrong).toEqual([]);
}, 240_000); // thousands of requests through the real server: slow on a loaded two-core machine

it('leaves the data directory private: 0700 directories, 0600 files', () => {
  const open: string[] = [];
  const visit = (p: string) => {
    const st = lstatSync(p);
    if (st.isSymbolicLink()) return;
    if ((st.mode & 0o777) !== (st.isDirectory() ? 0o700 : 0o600)) open.push(`${(st.mode & 0o777).toString(8)} ${p}`);
    if (st.isDirectory()) for (const n of readdirSync(p)) visit(join(p, n));
  };
  visit(dir);
  expect(readdirSync(dir)).toEqual(expect.arrayContaining(['kek', 'pglite', 'images']));
  expect(open).toEqual([]);
});
