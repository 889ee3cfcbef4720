// Operator power control through a real BMC simulator (ipmi_sim from openipmi, driven by real ipmitool).
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createApp } from './app.ts';
import { powerMount } from './power.ts';
import { createBmcFactory } from '../bmc/index.ts';
import { createTestDb } from '../../test/fakes/db.ts';
import { client, createTestApp, TOKENS } from '../../test/fakes/app.ts';
import { startIpmiSim, type IpmiSim } from '../../test/harness/ipmisim.ts';
import type { DbHandle } from '../db/index.ts';

const U = '0a0a0a0a-0000-4000-8000-000000000001';
let db: DbHandle;
let sim: IpmiSim;
let http: ReturnType<typeof client>;
let nodes: ReturnType<typeof createTestApp>['nodes'];

beforeAll(async () => {
  [db, sim] = await Promise.all([createTestDb(), startIpmiSim({ power: 0 })]);
  const t = createTestApp(db);
  nodes = t.nodes;
  const app = createApp({ ...t.deps }, { extra: [powerMount({ nodes: t.nodes, bmcs: t.bmcs, createBmc: createBmcFactory() })] });
  http = client(app);
});
afterAll(async () => {
  await sim?.stop();
  await db?.close();
});

it('enrols an unknown node with its BMC, then powers it on to PXE', async () => {
  const put = await http.put(`/api/v1/nodes/${U}/bmc`, { token: TOKENS.admin, body: { driver: 'ipmi', address: '127.0.0.1', port: sim.port, username: sim.username, password: sim.password } });
  expect(put.status).toBe(200);
  const node = await http.get(`/api/v1/nodes/${U}`, { token: TOKENS.viewer });
  expect(node.json.node).toMatchObject({ state: 'discovered', stateReason: 'enrolled with its BMC' });

  expect((await http.get(`/api/v1/nodes/${U}/power`, { token: TOKENS.viewer })).json.power).toBe('off');
  const on = await http.post(`/api/v1/nodes/${U}/power`, { token: TOKENS.operator, body: { action: 'on', bootdev: 'pxe' } });
  expect(on.status).toBe(200);
  expect(on.json).toMatchObject({ action: 'on', bootdev: 'pxe', power: 'on' });
  expect(await sim.power()).toBe(1);
  expect(await sim.boot()).toBe('pxe');
  // already on + a new boot device: cycled so the device takes effect
  const again = await http.post(`/api/v1/nodes/${U}/power`, { token: TOKENS.operator, body: { action: 'on', bootdev: 'pxe' } });
  expect(again.json.action).toBe('cycle');
  const ev = await http.get(`/api/v1/nodes/${U}/events`, { token: TOKENS.viewer });
  const bmcEvents = ev.json.events.filter((e: any) => e.kind === 'bmc').map((e: any) => e.reason);
  expect(bmcEvents.some((r: string) => /^power on \(next boot pxe\) via 127\.0\.0\.1:\d+$/.test(r))).toBe(true);
  expect(JSON.stringify(ev.json)).not.toContain(sim.password);
  // the server started a boot: the node's next /ipxe opens a server-started attempt (docs/security-model.md)
  expect((await nodes.get(U))!.bootExpectedReason).toBe('power cycle by api:operator');
});

it('expects no boot after a power off', async () => {
  const W = '0a0a0a0a-0000-4000-8000-000000000003';
  await http.put(`/api/v1/nodes/${W}/bmc`, { token: TOKENS.admin, body: { driver: 'ipmi', address: '127.0.0.1', port: sim.port, username: sim.username, password: sim.password } });
  expect((await http.post(`/api/v1/nodes/${W}/power`, { token: TOKENS.operator, body: { action: 'off' } })).status).toBe(200);
  expect((await nodes.get(W))!.bootExpectedAt).toBeNull();
});

it('says clearly when the BMC rejects the password or there is none', async () => {
  const V = '0a0a0a0a-0000-4000-8000-000000000002';
  await http.put(`/api/v1/nodes/${V}/bmc`, { token: TOKENS.admin, body: { driver: 'ipmi', address: '127.0.0.1', port: sim.port, username: sim.username, password: 'wrong-password-1' } });
  const r = await http.post(`/api/v1/nodes/${V}/power`, { token: TOKENS.operator, body: { action: 'on' } });
  expect(r.status).toBe(502);
  expect(r.json.error.code).toBe('bmc_auth');
  expect(r.text).not.toContain('wrong-password-1');
  const none = await http.post(`/api/v1/nodes/${U.replace('01', '09')}/power`, { token: TOKENS.operator, body: { action: 'on' } });
  expect(none.status).toBe(404);
  expect((await http.post(`/api/v1/nodes/${U}/power`, { token: TOKENS.viewer, body: { action: 'off' } })).status).toBe(403);
  expect((await http.post(`/api/v1/nodes/${U}/power`, { token: TOKENS.operator, body: { action: 'explode' } })).status).toBe(400);
});
