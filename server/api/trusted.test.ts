// Boot and agent routes restricted to the boot network, over real HTTP (the peer address comes from the socket).
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb } from '../../test/fakes/db.ts';
import { createTestApp, testConfig, TOKENS } from '../../test/fakes/app.ts';
import type { DbHandle } from '../db/index.ts';
import { parseConfig } from '../config.ts';

const U = '12121212-0000-4000-8000-000000000001';
let db: DbHandle;
const servers: ServerType[] = [];
afterAll(async () => {
  for (const s of servers) s.close();
  await db?.close();
});

async function serveWith(trustedNetworks: string[]) {
  const base = testConfig();
  const t = createTestApp(db, { config: { ...base, http: { ...base.http, publicUrl: undefined }, boot: { ...base.boot, trustedNetworks } } });
  const s = serve({ fetch: t.app.fetch, hostname: '127.0.0.1', port: 0 });
  servers.push(s);
  await new Promise((r) => s.once('listening', r));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  db = await createTestDb();
});

describe('boot.trustedNetworks', () => {
  it('refuses scripts and agent calls from outside the boot network, and nothing else', async () => {
    const url = await serveWith(['10.20.0.0/24', 'fd00::/64']);
    const script = await fetch(`${url}/ipxe/${U}`);
    expect(script.status).toBe(403);
    expect(((await script.json()) as any).error.message).toContain('not accepted from 127.0.0.1');
    expect((await fetch(`${url}/boot.ipxe`)).status).toBe(403);
    expect((await fetch(`${url}/api/v1/agent/register`, { method: 'POST', body: '{}' })).status).toBe(403);
    // the refused request did not enrol the node
    const nodes = await fetch(`${url}/api/v1/nodes`, { headers: { authorization: `Bearer ${TOKENS.viewer}` } });
    expect(nodes.status).toBe(200);
    expect(((await nodes.json()) as any).nodes).toEqual([]);
  });

  it('serves the boot network', async () => {
    const url = await serveWith(['127.0.0.0/8']);
    const script = await fetch(`${url}/ipxe/${U}`);
    expect(script.status).toBe(200);
    expect((await script.text()).startsWith('#!ipxe\n')).toBe(true);
  });

  it('rejects a malformed network at configuration time', () => {
    expect(() => parseConfig({ boot: { trustedNetworks: ['10.0.0.0/33'] } })).toThrow(/boot\.trustedNetworks\.0: must be an address or CIDR/);
    expect(() => parseConfig({ boot: { trustedNetworks: ['999.1.1.1'] } })).toThrow(/must be an address or CIDR/);
  });
});
