// Inventory-only mode (issue 16 item 6) through the agent API: a node whose profile says inventoryOnly registers,
// is told to power off, stays `ready` with reason "inventory only", and is never handed a profile. Per label:
// a profile that matches the label.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb } from '../../test/fakes/db.ts';
import { bootToken, client, createTestApp, sampleFacts, testConfig, TOKENS } from '../../test/fakes/app.ts';
import type { DbHandle } from '../db/index.ts';

const RACKING = '4c4c4544-0042-3510-8052-b4c04f4e0601';
const NORMAL = '4c4c4544-0042-3510-8052-b4c04f4e0602';
let db: DbHandle;
let http: ReturnType<typeof client>;
let app: ReturnType<typeof createTestApp>['app'];

beforeAll(async () => {
  db = await createTestDb();
  const config = testConfig({ profiles: { default: {}, racking: { inventoryOnly: true, match: { stage: 'racking' } } } });
  app = createTestApp(db, { config }).app;
  http = client(app);
});
afterAll(async () => db?.close());

describe('inventory-only nodes', () => {
  it('registers, is told to power off, stays ready with the reason, and gets no profile', async () => {
    await bootToken(app, RACKING);
    expect((await http.patch(`/api/v1/nodes/${RACKING}`, { token: TOKENS.admin, body: { labels: { stage: 'racking' } } })).status).toBe(200);
    const token = await bootToken(app, RACKING);
    const reg = await http.post('/api/v1/agent/register', { token, body: { facts: sampleFacts(RACKING), agentVersion: 't' } });
    expect(reg.status).toBe(200);
    expect(reg.json).toMatchObject({ uuid: RACKING, state: 'ready', next: 'poweroff', reason: 'inventory only' });
    const node = (await http.get(`/api/v1/nodes/${RACKING}`, { token: TOKENS.viewer })).json;
    expect(JSON.stringify(node)).toContain('inventory only');
    expect(node.node?.state ?? node.state).toBe('ready');
    const prof = await http.get(`/api/v1/agent/${RACKING}/profile`, { token });
    expect(prof.status).toBe(409);
    expect(prof.json.error.code).toBe('inventory_only');
    // still ready: nothing moved it towards provisioning
    const after = (await http.get(`/api/v1/nodes/${RACKING}`, { token: TOKENS.viewer })).json;
    expect(after.node?.state ?? after.state).toBe('ready');
  });

  it('a node without the label is provisioned as before', async () => {
    const token = await bootToken(app, NORMAL);
    const reg = await http.post('/api/v1/agent/register', { token, body: { facts: sampleFacts(NORMAL, { serial: 'SN-NORMAL', macs: ['52:54:00:06:00:02'] }) } });
    expect(reg.json).toMatchObject({ state: 'ready', next: 'provision' });
    expect((await http.get(`/api/v1/agent/${NORMAL}/profile`, { token })).status).toBe(200);
  });
});
