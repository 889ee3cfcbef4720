// The cabling plan (issue 16 item 5) through the real app on PGlite: loading it (YAML and CSV, roles, every bad
// line named, nothing written on a refusal), and the check at registration: policy block keeps the node ready with
// the reason and no profile until its cables (or the plan) are right; policy warn lets it go with an event; a
// swapped pair (the LLDP facts of real lldpd peers, test/fixtures/agent) and a missing link are named as such;
// inventory-only nodes are checked too.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../cli.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseLldpcliJson0 } from '../../agent/facts/lldp.ts';
import { createTestDb } from '../../test/fakes/db.ts';
import { bootToken, client, createTestApp, sampleFacts, testConfig, TOKENS } from '../../test/fakes/app.ts';
import type { DbHandle } from '../db/index.ts';
import { createApp } from './app.ts';
import { firmwareMount } from './firmware.ts';
import { createFirmwareStore } from '../store/firmware.ts';
import { createCablingStore } from '../store/cabling.ts';
import { TEST_PLAN_SIGNER } from '../../test/fakes/app.ts';

const BLOCKED = 'cab1e000-0000-4000-8000-000000000001';
const WARNED = 'cab1e000-0000-4000-8000-000000000002';
const SWAPPED = 'cab1e000-0000-4000-8000-000000000003';
const UNPLUGGED = 'cab1e000-0000-4000-8000-000000000004';
const RACKING = 'cab1e000-0000-4000-8000-000000000005';
const FREE = 'cab1e000-0000-4000-8000-000000000006';

// what the agent reported from real lldpd peers in network namespaces: leaf-sw01 port bfag-a0 ("Ethernet1/7 to
// node R740-Test") on bfag-b0, leaf-sw02 port Eth1/8 on bfag-b1
const realLldp = parseLldpcliJson0(readFileSync(new URL('../../test/fixtures/agent/lldpcli-json0-two-neighbors.json', import.meta.url), 'utf8'));

let db: DbHandle;
let app: ReturnType<typeof createTestApp>['app'];
let http: ReturnType<typeof client>;
/** the same database with the firmware report mounted as server/main.ts does, the cabling columns beside it */
let reports: ReturnType<typeof client>;

const load = async (body: string, type: string, token = TOKENS.operator) => {
  const res = await app.request('/api/v1/cabling?source=plan-file', { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': type }, body });
  const text = await res.text();
  return { status: res.status, json: JSON.parse(text), text };
};
const register = async (uuid: string, facts: unknown) => http.post('/api/v1/agent/register', { token: await bootToken(app, uuid), body: { facts, agentVersion: 't' } });
const nodeOf = async (uuid: string) => (await http.get(`/api/v1/nodes/${uuid}`, { token: TOKENS.viewer })).json.node;
const cablingEvents = async (uuid: string) => (await http.get(`/api/v1/nodes/${uuid}/events`, { token: TOKENS.viewer })).json.events.filter((e: { kind: string }) => e.kind === 'cabling');
const factsWith = (uuid: string, mac: string, port: string) => ({ ...sampleFacts(uuid, { serial: `SN-${uuid.slice(-4)}`, macs: [mac] }), lldp: [{ interface: 'eth0', chassisId: '02:00:00:00:00:01', systemName: 'tor-1', portId: port, portDescription: `rack1 port ${port}` }] });

const PLAN = `plans:
  - node: SN-0001            # BLOCKED by serial
    policy: block
    links: [{ nic: eth0, switch: tor-1, port: swp9 }]
  - rack: r7                 # WARNED by its rack label
    policy: warn
    links: [{ nic: eth0, switch: tor-1, port: swp3 }]
  - node: "52:54:00:ca:00:03" # SWAPPED by a NIC's MAC
    policy: block
    links:
      - { nic: bfag-b0, switch: leaf-sw02.rack12.example, port: Eth1/8 }
      - { nic: bfag-b1, switch: leaf-sw01.rack12.example, port: bfag-a0 }
  - node: ${UNPLUGGED}
    policy: warn
    links: [{ nic: eth0, switch: tor-1, port: swp7 }, { nic: eth1, switch: tor-2, port: swp7 }]
  - node: SN-0005
    policy: block
    links: [{ nic: eth0, switch: tor-1, port: swp1 }]
`;

beforeAll(async () => {
  db = await createTestDb();
  const t = createTestApp(db, { config: testConfig({ profiles: { default: {}, racking: { inventoryOnly: true, match: { stage: 'racking' } } } }) });
  app = t.app;
  http = client(app);
  const cabling = createCablingStore(db.db, { clock: t.clock });
  reports = client(createApp({ ...t.deps, cabling }, { extra: [firmwareMount({ nodes: t.nodes, firmware: createFirmwareStore(db.db, { clock: t.clock }), cabling, clock: t.clock, planSigner: TEST_PLAN_SIGNER })] }));
}, 120_000);
afterAll(async () => db?.close());

describe('PUT /api/v1/cabling', () => {
  it('refuses bad input with a 4xx naming the line or field, and writes nothing', async () => {
    const yaml = await load('plans:\n  - node: SN-1\n    links:\n      - nic: eth0\n        switch: ""\n        port: swp1\n  - rack: r1\n    policy: sometimes\n    links: [{ nic: a, switch: b, port: c }]\n', 'application/yaml');
    expect(yaml.status).toBe(422);
    expect(yaml.json.error.message).toBe('cabling plan (yaml): line 5: plans[0].links.0.switch: is empty; line 8: plans[1].policy: must be warn or block');
    expect(yaml.json.error.details.issues).toHaveLength(2);
    const csv = await load('node,rack,nic,switch,port,policy\nSN-1,,eth0,tor-1,swp1,block\n,,eth0,tor-1,swp1,\nSN-2,,eth0,tor-1\n', 'text/csv');
    expect(csv.status).toBe(422);
    expect(csv.json.error.message).toBe('cabling plan (csv): row 3: give exactly one of node or rack; row 4: has 4 fields, the header 6');
    expect((await load('node,nic\nSN-1,eth0\n', 'text/csv')).json.error.message).toMatch(/row 1: header must name .*missing switch, port/);
    expect((await load('plans: [', 'application/yaml')).json.error.message).toMatch(/not YAML/);
    expect((await load(PLAN, 'application/xml')).status).toBe(415);
    expect((await load('  \n', 'application/yaml')).status).toBe(400);
    expect((await load(PLAN, 'application/yaml', TOKENS.viewer)).status).toBe(403);
    expect((await http.get('/api/v1/cabling', { token: TOKENS.viewer })).json).toEqual({ loadedAt: null, loadedBy: null, source: null, plans: [] });
  });

  it('loads YAML (operator), replaces it with CSV, and says who loaded it', async () => {
    const csv = await load('node,rack,nic,switch,port,policy\nSN-X,,eth0,tor-9,swp1,block\n', 'text/csv; charset=utf-8', TOKENS.admin);
    expect(csv.status, csv.text).toBe(200);
    expect(csv.json).toMatchObject({ plans: 1, links: 1, replaced: 0 });
    const res = await load(PLAN, 'application/yaml');
    expect(res.status, res.text).toBe(200);
    expect(res.json).toMatchObject({ plans: 5, links: 7, replaced: 1 });
    const got = (await http.get('/api/v1/cabling', { token: TOKENS.viewer })).json;
    expect(got).toMatchObject({ loadedBy: 'api:operator', source: 'yaml plan-file' });
    expect(got.plans.map((p: { scope: string; key: string }) => `${p.scope}:${p.key}`).sort()).toEqual([`node:${UNPLUGGED}`, 'node:52:54:00:ca:00:03', 'node:SN-0001', 'node:SN-0005', 'rack:r7'].sort());
    const audit = (await http.get('/api/v1/audit?action=cabling.load', { token: TOKENS.admin })).json.entries;
    expect(audit).toHaveLength(2);
    expect(audit[0]).toMatchObject({ actor: 'api:operator', role: 'operator', target: 'cabling:plan', before: { node: 1 }, after: { node: 4, rack: 1, links: 7 } });
  });
});

describe('the check at registration', () => {
  it('policy block: ready with the reason, told to hold, no profile; fixed cables let it go', async () => {
    const reg = await register(BLOCKED, factsWith(BLOCKED, '52:54:00:ca:00:01', 'swp7'));
    expect(reg.status).toBe(200);
    expect(reg.json).toMatchObject({ state: 'ready', next: 'hold', reason: 'cabling: eth0 expected on tor-1 swp9, seen on tor-1 swp7' });
    expect(await nodeOf(BLOCKED)).toMatchObject({ state: 'ready', stateReason: 'inspection passed; cabling: eth0 expected on tor-1 swp9, seen on tor-1 swp7 (policy block)' });
    const [event] = await cablingEvents(BLOCKED);
    expect(event).toMatchObject({ reason: 'cabling: eth0 expected on tor-1 swp9, seen on tor-1 swp7', data: { policy: 'block', action: 'block', plan: { scope: 'node', key: 'SN-0001' } } });
    expect(event.data.problems).toEqual([{ kind: 'wrong-port', nic: 'eth0', expected: { switch: 'tor-1', port: 'swp9' }, seen: [{ switch: 'tor-1', port: 'swp7' }], message: 'eth0 expected on tor-1 swp9, seen on tor-1 swp7' }]);
    const token = await bootToken(app, BLOCKED);
    const prof = await http.get(`/api/v1/agent/${BLOCKED}/profile`, { token });
    expect(prof.status).toBe(409);
    expect(prof.json.error).toMatchObject({ code: 'cabling_blocked', message: expect.stringContaining('eth0 expected on tor-1 swp9, seen on tor-1 swp7') });
    expect((await nodeOf(BLOCKED)).state).toBe('ready');
    // held, the agent registers again a minute later: a new check, a new event naming the same port
    await register(BLOCKED, factsWith(BLOCKED, '52:54:00:ca:00:01', 'swp7'));
    expect((await cablingEvents(BLOCKED)).map((e: { reason: string }) => e.reason)).toEqual([event.reason, event.reason]);
    const result = (await http.get(`/api/v1/cabling/nodes/${BLOCKED}`, { token: TOKENS.viewer })).json;
    expect(result).toMatchObject({ uuid: BLOCKED, status: 'failed', action: 'block', plan: { scope: 'node', key: 'SN-0001' } });
    // the cable moved to swp9: the next registration (new facts) passes and the node is provisioned
    const fixed = await register(BLOCKED, factsWith(BLOCKED, '52:54:00:ca:00:01', 'swp9'));
    expect(fixed.json).toMatchObject({ state: 'ready', next: 'provision' });
    expect((await http.get(`/api/v1/agent/${BLOCKED}/profile`, { token: await bootToken(app, BLOCKED) })).status).toBe(200);
    expect((await http.get(`/api/v1/cabling/nodes/${BLOCKED}`, { token: TOKENS.viewer })).json).toMatchObject({ status: 'compliant', action: 'pass', problems: [] });
  });

  it('policy warn (a rack plan): provisioned, with the reason and an event', async () => {
    expect((await http.patch(`/api/v1/nodes/${WARNED}`, { token: TOKENS.operator, body: { labels: { rack: 'R7' } } })).status).toBe(404);
    await bootToken(app, WARNED);
    expect((await http.patch(`/api/v1/nodes/${WARNED}`, { token: TOKENS.operator, body: { labels: { rack: 'R7' } } })).status).toBe(200);
    const reg = await register(WARNED, factsWith(WARNED, '52:54:00:ca:00:02', 'swp4'));
    expect(reg.json).toMatchObject({ state: 'ready', next: 'provision' });
    expect(reg.json.reason).toBeUndefined();
    expect((await nodeOf(WARNED)).stateReason).toBe('inspection passed; cabling: eth0 expected on tor-1 swp3, seen on tor-1 swp4 (policy warn)');
    expect((await cablingEvents(WARNED))[0]).toMatchObject({ data: { policy: 'warn', action: 'warn', plan: { scope: 'rack', key: 'r7' } } });
    expect((await http.get(`/api/v1/agent/${WARNED}/profile`, { token: await bootToken(app, WARNED) })).status).toBe(200);
  });

  it('swapped cables (real lldpd facts) are reported as swapped', async () => {
    const facts = { ...sampleFacts(SWAPPED, { serial: 'SN-0003' }), nics: [{ name: 'bfag-b0', mac: '52:54:00:ca:00:03', driver: 'veth' }, { name: 'bfag-b1', mac: '52:54:00:ca:00:13', driver: 'veth' }], lldp: realLldp };
    const reg = await register(SWAPPED, facts);
    expect(reg.json).toMatchObject({ state: 'ready', next: 'hold' });
    expect(reg.json.reason).toMatch(/^cabling: bfag-b0 and bfag-b1 are swapped: bfag-b0 expected on leaf-sw02.rack12.example Eth1\/8, seen on leaf-sw01.rack12.example bfag-a0; bfag-b1 and bfag-b0 are swapped/);
    const r = (await http.get(`/api/v1/cabling/nodes/${SWAPPED}`, { token: TOKENS.viewer })).json;
    expect(r.problems.map((p: { kind: string; with: string }) => `${p.kind} ${p.with}`)).toEqual(['swapped bfag-b1', 'swapped bfag-b0']);
  });

  it('a missing link (no LLDP neighbour on a planned NIC)', async () => {
    const reg = await register(UNPLUGGED, factsWith(UNPLUGGED, '52:54:00:ca:00:04', 'swp7'));
    expect(reg.json).toMatchObject({ next: 'provision' });
    const r = (await http.get(`/api/v1/cabling/nodes/${UNPLUGGED}`, { token: TOKENS.viewer })).json;
    expect(r).toMatchObject({ status: 'failed', action: 'warn', problems: [{ kind: 'missing-link', nic: 'eth1' }] });
    expect(r.reason).toBe('cabling: eth1 expected on tor-2 swp7, no LLDP neighbour seen (unplugged, or the switch sends no LLDP)');
  });

  it('inventory-only nodes are checked too (and still powered off)', async () => {
    await bootToken(app, RACKING);
    await http.patch(`/api/v1/nodes/${RACKING}`, { token: TOKENS.admin, body: { labels: { stage: 'racking' } } });
    const reg = await register(RACKING, factsWith(RACKING, '52:54:00:ca:00:05', 'swp2'));
    expect(reg.json).toMatchObject({ state: 'ready', next: 'poweroff', reason: 'inventory only; cabling: eth0 expected on tor-1 swp1, seen on tor-1 swp2 (policy block)' });
    expect(await cablingEvents(RACKING)).toHaveLength(1);
  });

  it('a node no plan covers is unplanned and goes as before', async () => {
    const reg = await register(FREE, factsWith(FREE, '52:54:00:ca:00:06', 'swp7'));
    expect(reg.json).toMatchObject({ next: 'provision' });
    expect(reg.json.reason).toBeUndefined();
    expect(await cablingEvents(FREE)).toHaveLength(0);
    const all = (await http.get('/api/v1/cabling/nodes?status=failed', { token: TOKENS.viewer })).json.nodes.map((n: { uuid: string }) => n.uuid).sort();
    expect(all).toEqual([RACKING, SWAPPED, UNPLUGGED, WARNED].sort());
    expect((await http.get('/api/v1/cabling/nodes?status=broken', { token: TOKENS.viewer })).status).toBe(400);
    expect((await http.get('/api/v1/cabling/nodes/cab1e000-0000-4000-8000-0000000000ff', { token: TOKENS.viewer })).status).toBe(404);
  });

  it('a plan corrected after the check lets a blocked node have its profile without re-registering', async () => {
    const token = await bootToken(app, SWAPPED);
    expect((await http.get(`/api/v1/agent/${SWAPPED}/profile`, { token })).status).toBe(409);
    const fixedPlan = PLAN.replace('{ nic: bfag-b0, switch: leaf-sw02.rack12.example, port: Eth1/8 }', '{ nic: bfag-b0, switch: leaf-sw01.rack12.example, port: Ethernet1/7 to node R740-Test }').replace('{ nic: bfag-b1, switch: leaf-sw01.rack12.example, port: bfag-a0 }', '{ nic: bfag-b1, switch: "52:54:00:cc:00:01", port: Eth1/8 }');
    expect((await load(fixedPlan, 'application/yaml')).status).toBe(200);
    expect((await http.get(`/api/v1/agent/${SWAPPED}/profile`, { token })).status).toBe(200);
  });
});

describe('the compliance report: cabling beside firmware', () => {
  it('JSON rows carry the cabling result', async () => {
    const report = (await reports.get('/api/v1/reports/firmware', { token: TOKENS.viewer })).json;
    const by = Object.fromEntries(report.nodes.map((n: { uuid: string; cabling: unknown }) => [n.uuid, n.cabling]));
    expect(by[WARNED]).toMatchObject({ status: 'failed', policy: 'warn', action: 'warn', plan: { scope: 'rack', key: 'r7' }, problems: [{ kind: 'wrong-port' }] });
    expect(by[UNPLUGGED]).toMatchObject({ status: 'failed', problems: [{ kind: 'missing-link', nic: 'eth1' }] });
    expect(by[BLOCKED]).toMatchObject({ status: 'compliant' });
    expect(by[FREE]).toMatchObject({ status: 'unplanned', plan: null });
    expect((await reports.get(`/api/v1/firmware/nodes/${WARNED}`, { token: TOKENS.viewer })).json.cabling).toMatchObject({ status: 'failed' });
  });

  it('CSV has cabling_state, cabling_policy and cabling_detail columns', async () => {
    const res = await reports.get('/api/v1/reports/firmware?format=csv', { token: TOKENS.viewer });
    const [header, ...rows] = res.text.trim().split('\r\n');
    const cols = header!.split(',');
    expect(cols.slice(-3)).toEqual(['cabling_state', 'cabling_policy', 'cabling_detail']);
    const warned = rows.find((r) => r.startsWith(WARNED))!;
    expect(warned.endsWith(',failed,warn,eth0 expected on tor-1 swp3, seen on tor-1 swp4')).toBe(false); // the detail has a comma: quoted
    expect(warned.endsWith(',failed,warn,"eth0 expected on tor-1 swp3, seen on tor-1 swp4"')).toBe(true);
    expect(rows.find((r) => r.startsWith(FREE))!.endsWith(',unplanned,,')).toBe(true);
  });

  it('/ui/firmware shows a Cabling column and the failed nodes port by port', async () => {
    const page = await reports.get('/ui/firmware', { token: TOKENS.viewer });
    expect(page.status).toBe(200);
    expect(page.text).toContain('<th>Cabling</th>');
    expect(page.text).toContain('<table id="cabling">');
    expect(page.text).toMatch(new RegExp(`<tr data-uuid="${WARNED}" data-cabling="warn">`));
    expect(page.text).toContain('eth0 expected on tor-1 swp3, seen on tor-1 swp4');
    expect(page.text).toContain('rack r7');
    expect(page.text).not.toMatch(new RegExp(`data-uuid="${BLOCKED}" data-cabling`));
  });
});

describe('bootfarm cabling load | show', () => {
  const run = async (args: string[], token = TOKENS.operator) => {
    const lines: string[] = [];
    const fetchImpl = (async (url: string | URL | Request, init?: RequestInit) => app.request(String(url).replace('http://bootfarm', ''), init)) as typeof fetch;
    try {
      const code = await main(args, { out: (l) => lines.push(l), err: () => {}, fetchImpl, env: { BOOTFARM_URL: 'http://bootfarm', BOOTFARM_TOKEN: token } });
      return { code, lines, error: null as Error | null };
    } catch (e) {
      return { code: 2, lines, error: e as Error };
    }
  };

  it('loads a CSV file, refuses a bad one naming file and row before sending, and shows plan and failures', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bf-cabling-'));
    try {
      const bad = join(dir, 'bad.csv');
      writeFileSync(bad, 'node,rack,nic,switch,port,policy\nSN-0001,,eth0,,swp9,block\n');
      const refused = await run(['cabling', 'load', bad]);
      expect(refused.error?.message).toBe(`${bad}: row 2.switch: is empty`);
      const good = join(dir, 'rack12.csv');
      writeFileSync(good, `node,rack,nic,switch,port,policy\nSN-0001,,eth0,tor-1,swp9,block\n,r7,eth0,tor-1,swp3,warn\n${UNPLUGGED},,eth0,tor-1,swp7,warn\n${UNPLUGGED},,eth1,tor-2,swp7,warn\n`);
      const loaded = await run(['cabling', 'load', good]);
      expect(loaded.error).toBeNull();
      expect(loaded.lines).toEqual(['loaded 3 plans (4 links) from rack12.csv, replacing 5']);
      expect((await run(['cabling', 'load', good], TOKENS.viewer)).error?.message).toMatch(/^403/);
      const shown = await run(['cabling', 'show'], TOKENS.viewer);
      expect(shown.lines[0]).toMatch(/^3 plans loaded \S+ by api:operator \(csv rack12.csv\)$/);
      expect(shown.lines).toContainEqual(expect.stringMatching(/^rack\s+r7\s+warn\s+eth0\s+tor-1 swp3$/));
      expect(shown.lines).toContainEqual(expect.stringMatching(new RegExp(`^\\s+${WARNED}\\s+warn\\s+eth0 expected on tor-1 swp3, seen on tor-1 swp4$`)));
      const json = JSON.parse((await run(['cabling', 'show', '--json'], TOKENS.viewer)).lines.join('\n'));
      expect(json.plans).toHaveLength(3);
      expect(json.nodes.find((n: { uuid: string }) => n.uuid === UNPLUGGED)).toMatchObject({ status: 'failed', problems: [{ kind: 'missing-link', nic: 'eth1' }] });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
