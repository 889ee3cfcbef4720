// The audit log: every mutating admin/operator route writes exactly one row (who, role, action, target, before,
// after, request id, source) on success and none on a refused request; the row commits in the change's own
// transaction (a failing audit insert rolls the change back); GET /api/v1/audit filters and pages newest first.
// The whole app as main.ts composes it (test/security/full-app.ts) on PGlite, the fleet routes with the real
// fleet controller, power through a real BMC simulator (ipmi_sim + ipmitool).
import { createHash } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBmcFactory } from '../bmc/index.ts';
import { createFleet, type Fleet } from '../fleet/controller.ts';
import { silentLogger } from '../log.ts';
import type { DbHandle } from '../db/index.ts';
import { fleetMount } from './fleet.ts';
import { client, fromAddress, sampleFacts, TEST_KEY, TOKENS } from '../../test/fakes/app.ts';
import { FakeClock } from '../clock.ts';
import { createSecrets } from '../secrets.ts';
import { createBmcStore } from '../store/bmcs.ts';
import { createNodeStore } from '../store/nodes.ts';
import { createTestDb } from '../../test/fakes/db.ts';
import { tinyBzImage, tinyInitrd } from '../../test/fakes/boot-files.ts';
import { startIpmiSim, type IpmiSim } from '../../test/harness/ipmisim.ts';
import { createFullApp } from '../../test/security/full-app.ts';

const U = 'a0d17000-0000-4000-8000-000000000001';
const V = 'a0d17000-0000-4000-8000-000000000002';
const rowsOf = <T>(r: unknown): T[] => (Array.isArray(r) ? r : ((r as { rows?: T[] }).rows ?? []));

let db: DbHandle;
let sim: IpmiSim;
let fleet: Fleet;
let full: Awaited<ReturnType<typeof createFullApp>>;
let http: ReturnType<typeof client>;

async function auditRows(): Promise<any[]> {
  return rowsOf<any>(await db.db.execute(sql`select * from audit_log order by id`));
}

/** Runs one request and returns the audit rows it added. */
async function added(call: () => Promise<{ status: number; text?: unknown }> | Response, status: number): Promise<any[]> {
  const before = (await auditRows()).length;
  const res = await call();
  expect(res.status, typeof res.text === 'string' ? res.text : undefined).toBe(status);
  return (await auditRows()).slice(before);
}

async function upload(bytes: Buffer): Promise<string> {
  const digest = createHash('sha256').update(bytes).digest('hex');
  const res = await full.app.request(`/api/v1/images/blobs/${digest}/upload`, { method: 'PATCH', headers: { authorization: `Bearer ${TOKENS.operator}`, 'upload-offset': '0', 'upload-length': String(bytes.length), 'content-type': 'application/offset+octet-stream' }, body: bytes }, fromAddress('192.0.2.7') as never);
  expect(res.status).toBe(201);
  return digest;
}

beforeAll(async () => {
  [db, sim] = await Promise.all([createTestDb(), startIpmiSim({ power: 0 })]);
  const clock = new FakeClock();
  const nodes = createNodeStore(db.db, { clock });
  fleet = createFleet({ db, store: nodes, bmcStore: createBmcStore(db.db, createSecrets(TEST_KEY), { clock }), clock, logger: silentLogger() });
  full = await createFullApp(db, { clock, createBmc: createBmcFactory(), extra: [fleetMount({ fleet, nodes })] });
  http = client(full.app, { from: '192.0.2.7' });
}, 120_000);
afterAll(async () => {
  await fleet?.stop();
  await sim?.stop();
  await full?.close();
  await db?.close();
});

describe('every mutating admin route writes one audit row with before and after', () => {
  it('nodes: BMC, labels, actions, conflicts, power, in-band BMC setup', async () => {
    const [bmc] = await added(() => http.put(`/api/v1/nodes/${U}/bmc`, { token: TOKENS.admin, body: { driver: 'ipmi', address: '127.0.0.1', port: sim.port, username: sim.username, password: sim.password } }), 200).then((r) => (expect(r).toHaveLength(1), r));
    expect(bmc).toMatchObject({ actor: 'api:admin', role: 'admin', action: 'node.bmc.set', target: `node:${U}`, before: null, source: '192.0.2.7' });
    expect(bmc.after).toMatchObject({ address: '127.0.0.1', username: sim.username, password: 'set' });
    expect(bmc.request_id).toMatch(/.{8,}/);
    expect(JSON.stringify(bmc)).not.toContain(sim.password);

    const labels = await added(() => http.patch(`/api/v1/nodes/${U}`, { token: TOKENS.operator, body: { labels: { rack: 'r1' } } }), 200);
    expect(labels).toHaveLength(1);
    expect(labels[0]).toMatchObject({ actor: 'api:operator', role: 'operator', action: 'node.labels', before: { labels: {} }, after: { labels: { rack: 'r1' } } });

    const maint = await added(() => http.post(`/api/v1/nodes/${U}/actions`, { token: TOKENS.operator, body: { action: 'maintenance-on', reason: 'disk swap' } }), 200);
    expect(maint).toHaveLength(1);
    expect(maint[0]).toMatchObject({ action: 'node.maintenance-on', before: { state: 'discovered' }, after: { state: 'maintenance', heldFrom: 'discovered' } });
    // a refused request (the lifecycle says no) writes nothing
    expect(await added(() => http.post(`/api/v1/nodes/${U}/actions`, { token: TOKENS.operator, body: { action: 'maintenance-on' } }), 409)).toHaveLength(0);
    expect(await added(() => http.post(`/api/v1/nodes/${U}/actions`, { token: TOKENS.operator, body: { action: 'maintenance-off' } }), 200)).toHaveLength(1);

    // two nodes claiming one serial: a conflict on each
    await full.nodes.register({ facts: sampleFacts(U, { serial: 'SER-1', macs: ['52:54:00:aa:00:01'] }) as never, failures: [] }, 'test');
    await full.nodes.register({ facts: sampleFacts(V, { serial: 'SER-1', macs: ['52:54:00:aa:00:02'] }) as never, failures: [] }, 'test');
    const resolved = await added(() => http.post(`/api/v1/nodes/${U}/conflicts/resolve`, { token: TOKENS.admin, body: { kind: 'serial' } }), 200);
    expect(resolved).toHaveLength(1);
    expect(resolved[0]).toMatchObject({ action: 'node.conflicts.resolve', before: { open: [{ kind: 'serial', value: 'SER-1', otherUuid: V }] }, after: { resolved: 1 } });

    const power = await added(() => http.post(`/api/v1/nodes/${U}/power`, { token: TOKENS.operator, body: { action: 'on', bootdev: 'pxe' } }), 200);
    expect(power).toHaveLength(1);
    expect(power[0]).toMatchObject({ action: 'node.power.on', before: { power: 'off' }, after: { action: 'on', bootdev: 'pxe' } });
    expect(await sim.power()).toBe(1);

    const setup = await added(() => http.post(`/api/v1/nodes/${U}/bmc/setup`, { token: TOKENS.admin, body: { address: '10.9.0.5', netmask: '255.255.255.0', gateway: '10.9.0.1', username: 'bootfarm' } }), 202);
    expect(setup).toHaveLength(1);
    expect(setup[0]).toMatchObject({ action: 'node.bmc.setup', before: null, after: { address: '10.9.0.5', username: 'bootfarm' } });
  }, 120_000);

  it('firmware baselines: apply (created, updated, unchanged) and delete', async () => {
    const doc = (min: string) => `name: r750\nselector: {manufacturer: Dell Inc., product: PowerEdge R750}\ncomponents:\n  - {type: bmc, minimum: "${min}"}\n`;
    const apply = (text: string) => full.app.request('/api/v1/firmware/baselines', { method: 'POST', headers: { authorization: `Bearer ${TOKENS.admin}`, 'content-type': 'application/yaml' }, body: text }, fromAddress('192.0.2.7') as never);
    const created = await added(() => apply(doc('7.10')), 201);
    expect(created).toHaveLength(1);
    expect(created[0]).toMatchObject({ action: 'firmware.baseline.apply', target: 'baseline:r750', before: null, after: { version: 1 } });
    const updated = await added(() => apply(doc('7.20')), 200);
    expect(updated[0]).toMatchObject({ before: { version: 1, spec: { components: [{ minimum: '7.10' }] } }, after: { version: 2, spec: { components: [{ minimum: '7.20' }] } } });
    expect(await added(() => apply(doc('7.20')), 200)).toMatchObject([{ action: 'firmware.baseline.unchanged' }]);
    const del = await added(() => full.app.request('/api/v1/firmware/baselines/r750', { method: 'DELETE', headers: { authorization: `Bearer ${TOKENS.admin}` } }, fromAddress('192.0.2.7') as never), 204);
    expect(del).toMatchObject([{ action: 'firmware.baseline.delete', before: { version: 2 }, after: null }]);
    expect(await added(() => full.app.request('/api/v1/firmware/baselines/r750', { method: 'DELETE', headers: { authorization: `Bearer ${TOKENS.admin}` } }), 404)).toHaveLength(0);
  });

  it('cabling plan: load (replace), none written for a refused document', async () => {
    const put = (body: string, type = 'application/yaml') => full.app.request('/api/v1/cabling', { method: 'PUT', headers: { authorization: `Bearer ${TOKENS.operator}`, 'content-type': type }, body }, fromAddress('192.0.2.7') as never);
    const [row] = await added(() => put('plans:\n  - rack: r1\n    policy: block\n    links: [{ nic: eno1, switch: leaf-1, port: "7" }]\n'), 200);
    expect(row).toMatchObject({ actor: 'api:operator', role: 'operator', action: 'cabling.load', target: 'cabling:plan', before: {}, after: { node: 0, rack: 1, links: 1, source: 'yaml' }, source: '192.0.2.7' });
    expect(await added(() => put('node,nic,switch,port\nSN-1,eno1,,7\n', 'text/csv'), 422)).toHaveLength(0);
    // an empty plan is a valid load: it clears what was there
    expect((await added(() => put('plans: []\n'), 200))[0]).toMatchObject({ before: { rack: 1 }, after: { node: 0, rack: 0, links: 0 } });
  });

  it('IPAM: network put and delete, reservation, release; none written for a refused request', async () => {
    const [net] = await added(() => http.put('/api/v1/networks/prov', { token: TOKENS.admin, body: { cidr: '10.20.0.0/24', gateway: '10.20.0.1' } }), 201);
    expect(net).toMatchObject({ actor: 'api:admin', role: 'admin', action: 'network.put', target: 'network:prov', before: null, after: { name: 'prov', cidr: '10.20.0.0/24', gateway: '10.20.0.1' } });
    expect(await added(() => http.put('/api/v1/networks/prov', { token: TOKENS.admin, body: { cidr: '10.20.0.5/24' } }), 400)).toHaveLength(0);
    const [res] = await added(() => http.post('/api/v1/ipam/reservations', { token: TOKENS.operator, body: { network: 'prov', address: '10.20.0.40', node: U } }), 200);
    expect(res).toMatchObject({ actor: 'api:operator', action: 'ipam.reserve', target: 'network:prov', before: null, after: { address: '10.20.0.40', node: U, interface: 'bond0', reserved: true } });
    expect(await added(() => http.post('/api/v1/ipam/reservations', { token: TOKENS.operator, body: { network: 'prov', address: '10.20.0.40', node: V } }), 409)).toHaveLength(0);
    expect(await added(() => http.delete('/api/v1/networks/prov', { token: TOKENS.admin }), 409)).toHaveLength(0);
    const [rel] = await added(() => http.post('/api/v1/ipam/release', { token: TOKENS.operator, body: { network: 'prov', address: '10.20.0.40' } }), 200);
    expect(rel).toMatchObject({ action: 'ipam.release', before: { address: '10.20.0.40', node: U }, after: null });
    const [del] = await added(() => http.delete('/api/v1/networks/prov', { token: TOKENS.admin }), 200);
    expect(del).toMatchObject({ action: 'network.delete', target: 'network:prov', before: { name: 'prov', allocations: 0 }, after: null });
  });

  it('images: blob upload, push, promote (forced), rollback', async () => {
    let before = (await auditRows()).length;
    const kernel = await upload(tinyBzImage(8192));
    const initrd = await upload(tinyInitrd(8192));
    const blobs = (await auditRows()).slice(before);
    expect(blobs).toMatchObject([{ action: 'image.blob.upload', target: `blob:${kernel}`, after: { size: 8192 } }, { action: 'image.blob.upload', target: `blob:${initrd}` }]);
    const push = (version: string) => http.post('/api/v1/images', { token: TOKENS.operator, body: { name: 'compute', version, kernel: { digest: kernel }, initrd: { digest: initrd } } });
    const p1 = await added(() => push('1.0'), 201);
    expect(p1).toMatchObject([{ action: 'image.push', target: 'image:compute:1.0', before: { version: null }, after: { channel: 'dev', version: '1.0' } }]);
    expect(await added(() => push('1.0'), 200)).toMatchObject([{ action: 'image.push.unchanged' }]);
    await added(() => http.post('/api/v1/images', { token: TOKENS.operator, body: { name: 'compute', version: '1.1', kernel: { digest: kernel }, initrd: { digest: initrd }, notes: 'second' } }), 201);
    const promote = await added(() => http.post('/api/v1/images/compute/promote', { token: TOKENS.admin, body: { from: 'dev', to: 'canary', force: true } }), 200);
    expect(promote).toMatchObject([{ action: 'image.promote', target: 'image:compute', before: { channel: 'canary', version: null }, after: { channel: 'canary', version: '1.1' } }]);
    const rollback = await added(() => http.post('/api/v1/images/compute/rollback', { token: TOKENS.operator, body: { channel: 'dev' } }), 200);
    expect(rollback).toMatchObject([{ action: 'image.rollback', before: { channel: 'dev', version: '1.1' }, after: { channel: 'dev', version: '1.0' } }]);
    before = (await auditRows()).length;
    expect((await http.post('/api/v1/images/compute/rollback', { token: TOKENS.operator, body: { channel: 'prod' } })).status).toBe(409);
    expect(await auditRows()).toHaveLength(before);
  });

  it('fleet: resume an open breaker', async () => {
    expect(await added(() => http.post('/api/v1/fleet/resume', { token: TOKENS.operator, body: {} }), 409)).toHaveLength(0);
    await fleet.store.openBreaker({ at: full.clock.now(), reason: 'too many failures', data: { scope: 'fleet' }, actor: 'fleet' });
    const resume = await added(() => http.post('/api/v1/fleet/resume', { token: TOKENS.operator, body: { reason: 'switch fixed' } }), 200);
    expect(resume).toMatchObject([{ action: 'fleet.resume', target: 'fleet:breaker', before: { open: true }, after: { open: false, reason: 'switch fixed' } }]);
  });
});

describe('inventory, tokens and the keyring: one complete row each, the request context on it, no secret', () => {
  /** a complete row: who (actor, role), from where (request id, source), what (action, target), before and after */
  const complete = (row: any, { actor, role }: { actor: string; role: string }) => {
    expect(row).toMatchObject({ actor, role, source: '192.0.2.7' });
    expect(row.request_id).toMatch(/.{8,}/);
    expect(row.action).toMatch(/^[a-z-]+(\.[a-z-]+)+$/);
    expect(row.target).toMatch(/^[a-z-]+:\S+$/);
    expect('before' in row && 'after' in row).toBe(true);
  };
  const W1 = 'a0d17000-0000-4000-8000-000000000011';
  const W2 = 'a0d17000-0000-4000-8000-000000000012';

  it('bulk enroll (a dry run writes nothing), node delete and forced delete', async () => {
    const inventory = ['uuid,macs,bmc_driver,bmc_address,bmc_username,bmc_password', `${W1},52:54:00:cc:00:01,ipmi,10.9.7.1,admin,enroll-secret-1`, `${W2},52:54:00:cc:00:02,,,,`].join('\n');
    expect(await added(() => http.post('/api/v1/nodes/enroll', { token: TOKENS.admin, body: { format: 'csv', inventory, dryRun: true } }), 200)).toHaveLength(0);
    const enroll = await added(() => http.post('/api/v1/nodes/enroll', { token: TOKENS.admin, body: { format: 'csv', inventory } }), 201);
    expect(enroll).toHaveLength(1);
    complete(enroll[0], { actor: 'api:admin', role: 'admin' });
    expect(enroll[0]).toMatchObject({ action: 'nodes.enroll', target: 'nodes:2', before: null, after: { uuids: [W1, W2], bmcs: ['10.9.7.1'] } });
    expect(JSON.stringify(enroll)).not.toContain('enroll-secret-1');
    // a refused enrollment (the nodes exist now) writes nothing
    expect(await added(() => http.post('/api/v1/nodes/enroll', { token: TOKENS.admin, body: { format: 'csv', inventory } }), 422)).toHaveLength(0);

    const del = await added(() => full.app.request(`/api/v1/nodes/${W1}`, { method: 'DELETE', headers: { authorization: `Bearer ${TOKENS.admin}` } }, fromAddress('192.0.2.7') as never), 200);
    expect(del).toHaveLength(1);
    complete(del[0], { actor: 'api:admin', role: 'admin' });
    expect(del[0]).toMatchObject({ action: 'node.delete', target: `node:${W1}`, before: { node: { uuid: W1, hadCredential: false }, macs: ['52:54:00:cc:00:01'], bmc: { address: '10.9.7.1' } }, after: { removed: { interfaces: 1, bmc: true } } });
    expect(JSON.stringify(del)).not.toMatch(/enroll-secret-1|password|credential_?hash/i);
    expect(await added(() => full.app.request(`/api/v1/nodes/${W1}`, { method: 'DELETE', headers: { authorization: `Bearer ${TOKENS.admin}` } }), 404)).toHaveLength(0);
    // a node in maintenance is in use: refused without force, one node.delete.forced row with it
    await full.nodes.transition(W2, { type: 'maintenance-on', reason: 'test' }, 'test');
    expect(await added(() => full.app.request(`/api/v1/nodes/${W2}`, { method: 'DELETE', headers: { authorization: `Bearer ${TOKENS.admin}` } }), 409)).toHaveLength(0);
    const forced = await added(() => full.app.request(`/api/v1/nodes/${W2}?force=true`, { method: 'DELETE', headers: { authorization: `Bearer ${TOKENS.admin}` } }, fromAddress('192.0.2.7') as never), 200);
    expect(forced).toMatchObject([{ action: 'node.delete.forced', target: `node:${W2}`, before: { node: { state: 'maintenance' } } }]);
    complete(forced[0], { actor: 'api:admin', role: 'admin' });
  });

  it('token create and revoke: the new id as target, never the token or its hash', async () => {
    let created: any;
    const create = await added(async () => {
      const r = await http.post('/api/v1/tokens', { token: TOKENS.admin, body: { name: 'grafana', role: 'viewer' } });
      created = r.json;
      return r;
    }, 201);
    expect(create).toHaveLength(1);
    complete(create[0], { actor: 'api:admin', role: 'admin' });
    expect(create[0]).toMatchObject({ action: 'token.create', target: `token:${created.id}`, before: null, after: { id: created.id, name: 'grafana', role: 'viewer', revokedAt: null } });
    const hash = createHash('sha256').update(created.token).digest('hex');
    expect(JSON.stringify(create)).not.toContain(created.token);
    expect(JSON.stringify(create)).not.toContain(hash);
    const revoke = await added(() => full.app.request(`/api/v1/tokens/${created.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${TOKENS.admin}` } }, fromAddress('192.0.2.7') as never), 200);
    expect(revoke).toHaveLength(1);
    complete(revoke[0], { actor: 'api:admin', role: 'admin' });
    expect(revoke[0]).toMatchObject({ action: 'token.revoke', target: `token:${created.id}`, before: { revokedAt: null }, after: { revokedBy: 'api:admin' } });
    expect(revoke[0].after.revokedAt).toEqual(expect.any(String));
    expect(JSON.stringify(revoke)).not.toContain(hash);
    // revoking twice is refused (409): no row
    expect(await added(() => full.app.request(`/api/v1/tokens/${created.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${TOKENS.admin}` } }), 409)).toHaveLength(0);
  });

  it('secrets rotate: the new data key as target, no key material', async () => {
    const before = await full.keyring.status();
    const rotate = await added(() => http.post('/api/v1/secrets/rotate', { token: TOKENS.admin, body: {} }), 200);
    expect(rotate).toHaveLength(1);
    complete(rotate[0], { actor: 'api:admin', role: 'admin' });
    const active = (await full.keyring.status()).keys.find((k: any) => k.active)!;
    expect(rotate[0]).toMatchObject({ action: 'secrets.rotate', target: `data-key:${active.id}`, before: { activeKey: before.keys.find((k: any) => k.active)!.id }, after: { keyId: active.id } });
    expect(JSON.stringify(rotate)).not.toMatch(/wrappedKey|wrapped_key|"v[12]\.\d+\./);
    expect(JSON.stringify(rotate)).not.toContain(sim.password);
  });
});

describe('the row commits with the change', () => {
  it('a failing audit insert rolls the change back', async () => {
    await db.db.execute(sql.raw(`create function audit_refuse() returns trigger language plpgsql as $$ begin raise exception 'audit refused'; end $$`));
    await db.db.execute(sql.raw(`create trigger audit_refuse before insert on audit_log for each row execute function audit_refuse()`));
    try {
      const labelsBefore = (await full.nodes.get(U))!.labels;
      expect((await http.patch(`/api/v1/nodes/${U}`, { token: TOKENS.operator, body: { labels: { rack: 'r9' } } })).status).toBe(500);
      expect((await full.nodes.get(U))!.labels).toEqual(labelsBefore);
    } finally {
      await db.db.execute(sql.raw(`drop trigger audit_refuse on audit_log`));
      await db.db.execute(sql.raw(`drop function audit_refuse()`));
    }
  });
});

describe('GET /api/v1/audit', () => {
  it('is admin only, filters, and pages newest first with a cursor', async () => {
    expect((await http.get('/api/v1/audit', { token: TOKENS.operator })).status).toBe(403);
    const all = await auditRows();
    const first = await http.get('/api/v1/audit?limit=3', { token: TOKENS.admin });
    expect(first.status).toBe(200);
    expect(first.json.entries.map((e: any) => e.id)).toEqual(all.slice(-3).reverse().map((r) => Number(r.id)));
    const seen: number[] = [];
    let cursor: string | null = null;
    do {
      const page: any = await http.get(`/api/v1/audit?limit=4${cursor ? `&before=${cursor}` : ''}`, { token: TOKENS.admin });
      seen.push(...page.json.entries.map((e: any) => e.id));
      cursor = page.json.nextCursor;
    } while (cursor);
    expect(seen).toEqual(all.map((r) => Number(r.id)).reverse());

    const nodeRows = (await http.get(`/api/v1/audit?target=node:${U}&action=node.*`, { token: TOKENS.admin })).json.entries;
    expect(nodeRows.length).toBe(all.filter((r) => r.target === `node:${U}` && r.action.startsWith('node.')).length);
    expect(nodeRows.every((e: any) => e.target === `node:${U}`)).toBe(true);
    expect((await http.get('/api/v1/audit?actor=operator&action=node.labels', { token: TOKENS.admin })).json.entries.map((e: any) => e.after)).toEqual([{ labels: { rack: 'r1' } }]);
    const bad = await http.get('/api/v1/audit?before=nonsense', { token: TOKENS.admin });
    expect(bad.status).toBe(400);
    expect(bad.json.error.message).toMatch(/before: must be a nextCursor/);
  });
});

describe('bootfarm audit', () => {
  it('prints the newest entries, filters, follows the cursor with --all, and --json', async () => {
    const { runAudit } = await import('../cli/audit.ts');
    const { apiClient } = await import('../cli.ts');
    const fetchVia = (async (url: string | URL | Request, init?: RequestInit) => full.app.request(String(url).replace('http://bootfarm', ''), init)) as typeof fetch;
    const api = apiClient('http://bootfarm', TOKENS.admin, fetchVia);
    const lines: string[] = [];
    await runAudit({ api, out: (l) => lines.push(l), action: 'node.labels' });
    expect(lines[0]).toMatch(/^AT\s+ACTOR\s+ACTION\s+TARGET\s+CHANGE$/);
    expect(lines.slice(1)).toEqual([expect.stringMatching(new RegExp(`api:operator \\(operator\\)\\s+node\\.labels\\s+node:${U}\\s+\\{"labels":\\{\\}\\} → \\{"labels":\\{"rack":"r1"\\}\\}$`))]);
    const all: string[] = [];
    await runAudit({ api, out: (l) => all.push(l), json: true, limit: 2, all: true });
    expect(JSON.parse(all[0]!).map((e: any) => e.id)).toEqual((await auditRows()).map((r) => Number(r.id)).reverse());
    await expect(runAudit({ api: apiClient('http://bootfarm', TOKENS.viewer, fetchVia), out: () => undefined })).rejects.toThrow(/403/);
  });
});

describe('coverage', () => {
  /** every mutating operator/admin route this file drives, and what its row is named */
  const COVERED: Record<string, string> = {
    'put /api/v1/nodes/{uuid}/bmc': 'node.bmc.set',
    'patch /api/v1/nodes/{uuid}': 'node.labels',
    'post /api/v1/nodes/{uuid}/actions': 'node.maintenance-on',
    'post /api/v1/nodes/{uuid}/conflicts/resolve': 'node.conflicts.resolve',
    'post /api/v1/nodes/{uuid}/power': 'node.power.on',
    'post /api/v1/nodes/{uuid}/bmc/setup': 'node.bmc.setup',
    'post /api/v1/nodes/enroll': 'nodes.enroll',
    'delete /api/v1/nodes/{uuid}': 'node.delete',
    'post /api/v1/firmware/baselines': 'firmware.baseline.apply',
    'put /api/v1/cabling': 'cabling.load',
    'put /api/v1/networks/{name}': 'network.put',
    'delete /api/v1/networks/{name}': 'network.delete',
    'post /api/v1/ipam/reservations': 'ipam.reserve',
    'post /api/v1/ipam/release': 'ipam.release',
    'delete /api/v1/firmware/baselines/{name}': 'firmware.baseline.delete',
    'patch /api/v1/images/blobs/{digest}/upload': 'image.blob.upload',
    'post /api/v1/images': 'image.push',
    'post /api/v1/images/{name}/promote': 'image.promote',
    'post /api/v1/images/{name}/rollback': 'image.rollback',
    'post /api/v1/fleet/resume': 'fleet.resume',
    'post /api/v1/tokens': 'token.create',
    'delete /api/v1/tokens/{id}': 'token.revoke',
    'post /api/v1/secrets/rotate': 'secrets.rotate',
  };

  it('every mutating operator/admin route in the OpenAPI document is driven above and left its row', async () => {
    const doc = (await http.get('/api/v1/openapi.json')).json;
    const mutating = Object.entries(doc.paths as Record<string, Record<string, any>>).flatMap(([path, ops]) =>
      Object.entries(ops)
        .filter(([method, op]) => method !== 'get' && ['operator', 'admin'].includes(op['x-role']))
        .map(([method]) => `${method} ${path}`),
    );
    // a new mutating route fails here until it is audited and driven in this file
    expect(mutating.sort()).toEqual(Object.keys(COVERED).sort());
    const actions = new Set((await auditRows()).map((r) => r.action));
    for (const [route, action] of Object.entries(COVERED)) expect(actions.has(action), `${route}: no ${action} row`).toBe(true);
  });

  it('every row a request wrote carries its role, request id and source', async () => {
    const rows = (await auditRows()).filter((r) => /^(api|ui):/.test(r.actor));
    expect(rows.length).toBeGreaterThan(20);
    for (const r of rows) expect([r.action, r.role, r.request_id, r.source].every((v) => typeof v === 'string' && v.length > 0), `${r.action}: ${JSON.stringify(r)}`).toBe(true);
  });
});
