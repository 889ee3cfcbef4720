// Operator power control through a real BMC simulator (ipmi_sim from openipmi, driven by real ipmitool).
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createApp } from './app.ts';
import { powerMount } from './power.ts';
import { createBmcFactory, execRunner, type IpmiExec } from '../bmc/index.ts';
import { createTestDb } from '../../test/fakes/db.ts';
import { client, createTestApp, TOKENS } from '../../test/fakes/app.ts';
import { startIpmiSim, type IpmiSim } from '../../test/harness/ipmisim.ts';
import type { DbHandle } from '../db/index.ts';

const U = '0a0a0a0a-0000-4000-8000-000000000001';
let db: DbHandle;
let sim: IpmiSim;
let http: ReturnType<typeof client>;
let nodes: ReturnType<typeof createTestApp>['nodes'];
// the real ipmitool against ipmi_sim, with each call's arguments recorded
const ipmiCalls: string[][] = [];
const exec: IpmiExec = (file, args, opts) => {
  ipmiCalls.push(args.slice(args.indexOf('chassis') >= 0 ? args.indexOf('chassis') : args.indexOf('mc')));
  return execRunner(file, args, opts);
};

beforeAll(async () => {
  [db, sim] = await Promise.all([createTestDb(), startIpmiSim({ power: 0 })]);
  const t = createTestApp(db);
  nodes = t.nodes;
  const app = createApp({ ...t.deps }, { extra: [powerMount({ nodes: t.nodes, bmcs: t.bmcs, createBmc: createBmcFactory({ exec }) })] });
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

it('identify, NMI and a BMC cold reset: each through the BMC, each an event naming the operator; bad combinations are 400s', async () => {
  const N = '0a0a0a0a-0000-4000-8000-000000000004';
  await http.put(`/api/v1/nodes/${N}/bmc`, { token: TOKENS.admin, body: { driver: 'ipmi', address: '127.0.0.1', port: sim.port, username: sim.username, password: sim.password } });
  const post = (body: unknown) => http.post(`/api/v1/nodes/${N}/power`, { token: TOKENS.operator, body });
  ipmiCalls.length = 0;
  expect((await post({ action: 'identify', seconds: 30 })).json).toMatchObject({ action: 'identify' });
  expect((await post({ action: 'identify', seconds: 0 })).status).toBe(200);
  expect(ipmiCalls.map((a) => a.join(' '))).toEqual(['chassis identify 30', 'chassis power status', 'chassis identify 0', 'chassis power status']);
  // ipmi_sim has no diagnostic interrupt: a clear 422 that says so, and an event
  const nmi = await post({ action: 'nmi' });
  expect(nmi.status).toBe(422);
  expect(nmi.json.error.code).toBe('bmc_unsupported');
  const reset = await post({ action: 'bmc-reset' });
  expect(reset.status).toBe(200);
  expect(reset.json).toEqual({ action: 'bmc-reset', bootdev: null });
  const events = ((await http.get(`/api/v1/nodes/${N}/events`, { token: TOKENS.viewer })).json.events as { kind: string; reason: string; actor: string }[]).filter((e) => e.kind === 'bmc').slice(0, 4).reverse();
  expect(events.map((e) => e.actor)).toEqual(['api:operator', 'api:operator', 'api:operator', 'api:operator']);
  expect(events.map((e) => e.reason)).toEqual([
    expect.stringMatching(/^identify LED on for 30 s via /),
    expect.stringMatching(/^identify LED off via /),
    expect.stringMatching(/nmi: not supported by this BMC/),
    expect.stringMatching(/^BMC cold reset of /),
  ]);
  for (const bad of [{ action: 'identify', bootdev: 'pxe' }, { action: 'on', seconds: 5 }, { action: 'identify', seconds: 999 }]) {
    const r = await post(bad);
    expect(r.status).toBe(400);
    expect(r.json.error.message).toMatch(/bootdev|seconds/);
  }
  // a BMC cold reset leaves the host running and does not expect a boot
  expect((await nodes.get(N))!.bootExpectedAt).toBeNull();
}, 120_000);

it('a node whose iPXE booted under EFI gets the UEFI flag on its PXE override; a BMC record can pin the mode', async () => {
  const E = '0a0a0a0a-0000-4000-8000-000000000005';
  await http.put(`/api/v1/nodes/${E}/bmc`, { token: TOKENS.admin, body: { driver: 'ipmi', address: '127.0.0.1', port: sim.port, username: sim.username, password: sim.password } });
  // its iPXE asks for its script from UEFI firmware: the platform is recorded with the boot attempt
  expect((await http.get(`/ipxe/${E}?platform=efi`)).text).toContain('bootfarm.token=');
  expect((await nodes.get(E))!.bootPlatform).toBe('efi');
  ipmiCalls.length = 0;
  await http.post(`/api/v1/nodes/${E}/power`, { token: TOKENS.operator, body: { action: 'on', bootdev: 'pxe' } });
  expect(ipmiCalls.map((a) => a.join(' '))).toContain('chassis bootdev pxe options=efiboot');
  const ev = (await http.get(`/api/v1/nodes/${E}/events`, { token: TOKENS.viewer })).json.events.filter((e: any) => e.kind === 'bmc')[0];
  expect(ev.data).toMatchObject({ bootdev: 'pxe', uefi: true });
  // the operator pins legacy on the BMC record: no EFI flag whatever iPXE reported
  await http.put(`/api/v1/nodes/${E}/bmc`, { token: TOKENS.admin, body: { driver: 'ipmi', address: '127.0.0.1', port: sim.port, username: sim.username, password: sim.password, options: { bootMode: 'legacy' } } });
  ipmiCalls.length = 0;
  await http.post(`/api/v1/nodes/${E}/power`, { token: TOKENS.operator, body: { action: 'cycle', bootdev: 'pxe' } });
  expect(ipmiCalls.map((a) => a.join(' '))).toContain('chassis bootdev pxe');
  expect(ipmiCalls.flat()).not.toContain('options=efiboot');
  // BMC options are checked: an unknown key or a non-PEM CA bundle is a 400 naming it
  const bad = await http.put(`/api/v1/nodes/${E}/bmc`, { token: TOKENS.admin, body: { driver: 'redfish', address: '127.0.0.1', username: 'u', password: 'p', options: { caBundle: 'not a certificate' } } });
  expect(bad.status).toBe(400);
  expect(bad.json.error.message).toMatch(/caBundle must be PEM/);
  expect((await http.put(`/api/v1/nodes/${E}/bmc`, { token: TOKENS.admin, body: { driver: 'redfish', address: '127.0.0.1', username: 'u', password: 'p', options: { verifyy: true } } })).status).toBe(400);
}, 120_000);
