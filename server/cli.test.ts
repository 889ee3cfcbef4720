import { createTestDb } from '../test/fakes/db.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DbHandle } from './db/index.ts';
import { apiClient, CliError, runNodes } from './cli.ts';
import { bootToken, client, createTestApp, sampleFacts, TOKENS } from '../test/fakes/app.ts';

const U = '4c4c4544-0042-3510-8052-b4c04f4e4d32';

describe('bootfarm nodes (CLI against the admin API)', () => {
  let db: DbHandle;
  let t: ReturnType<typeof createTestApp>;
  const fetchVia = (app: { request: (u: string, i?: RequestInit) => Response | Promise<Response> }) => (async (url: string | URL | Request, init?: RequestInit) => app.request(String(url).replace('http://bootfarm', ''), init)) as typeof fetch;
  beforeAll(async () => {
    db = await createTestDb();
    t = createTestApp(db);
    const tok = await bootToken(t.app, U);
    await client(t.app).post('/api/v1/agent/register', { token: tok, body: { facts: sampleFacts(U, { serial: 'CZ1234' }) } });
  });
  afterAll(async () => db?.close());

  const run = async (args: string[], opts: Partial<Parameters<typeof runNodes>[1]> = {}, token = TOKENS.operator) => {
    const lines: string[] = [];
    await runNodes(args, { json: false, api: apiClient('http://bootfarm', token, fetchVia(t.app)), out: (l) => lines.push(l), ...opts });
    return lines;
  };

  it('lists nodes as a table and as JSON', async () => {
    const table = await run(['list']);
    expect(table[0]).toMatch(/^UUID\s+STATE\s+SERIAL/);
    expect(table[1]).toMatch(new RegExp(`^${U}\\s+ready\\s+CZ1234`));
    const json = JSON.parse((await run(['list'], { json: true })).join('\n'));
    expect(json[0]).toMatchObject({ uuid: U, state: 'ready' });
    expect(await run(['list'], { state: 'active' })).toHaveLength(1);
  });

  it('shows a node with its interfaces and switch port', async () => {
    const out = (await run(['show', U])).join('\n');
    expect(out).toMatch(/^state\s+ready$/m);
    expect(out).toMatch(/interface\s+52:54:00:12:34:56 eth0 switch=tor-1 port=rack1 port 7/);
  });

  it('prints the event timeline and acts', async () => {
    const ev = (await run(['events', U])).join('\n');
    expect(ev).toMatch(/transition\s+discovered → inspecting/);
    expect(await run(['action', U, 'maintenance-on'], { reason: 'bios swap' })).toEqual([`${U}: maintenance`]);
  });

  it('turns API errors into a readable CliError', async () => {
    await expect(run(['show', '00000000-0000-0000-0000-000000000000'])).rejects.toThrow(/404 not_found: node 00000000-0000-0000-0000-000000000000 not found/);
    await expect(run(['action', U, 'retire'])).rejects.toThrow(/403 forbidden: this action needs the admin role/);
    await expect(run(['frobnicate', U])).rejects.toBeInstanceOf(CliError);
    await expect(runNodes(['list'], { json: false, api: apiClient('http://127.0.0.1:1', 'x'), out: () => {} })).rejects.toThrow(/cannot reach http:\/\/127\.0\.0\.1:1/);
  });
});
