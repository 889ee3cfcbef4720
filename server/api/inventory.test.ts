// Bulk enrollment and node delete (issue 17 item 6) through the real app on PGlite, driven by the CLI
// (`bootfarm nodes enroll FILE [--dry-run]`, `bootfarm nodes delete UUID [--force]`) over an in-process fetch.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eq } from 'drizzle-orm';
import type { DbHandle } from '../db/index.ts';
import { dhcpLeases, auditLog, conflicts, interfaces, events, nodes as nodesTable } from '../db/schema/index.ts';
import { createTestDb } from '../../test/fakes/db.ts';
import { client, createTestApp, testConfig, TOKENS } from '../../test/fakes/app.ts';
import { runNodes } from '../cli/nodes.ts';
import { ProfileConfig } from '../config.ts';

const U = (n: number) => `1e7e0000-0000-4000-8000-${String(n).padStart(12, '0')}`;

let db: DbHandle;
let t: ReturnType<typeof createTestApp>;
let tmp: string;
let out: string[];
const cli = (args: string[], token = TOKENS.admin) => {
  out = [];
  const fetchImpl = (async (input: string | URL | Request, init?: RequestInit) => t.app.request(String(input).replace('http://bootfarm.test', ''), init)) as typeof fetch;
  return runNodes(args, { out: (l) => out.push(l), fetchImpl, globals: { url: 'http://bootfarm.test', token } });
};
const fails = async (args: string[], token?: string) => {
  try {
    await cli(args, token);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected the command to fail');
};
const file = (name: string, text: string) => {
  const p = join(tmp, name);
  writeFileSync(p, text);
  return p;
};
const nodeCount = async () => (await db.db.select().from(nodesTable)).length;

beforeAll(async () => {
  db = await createTestDb();
  t = createTestApp(db, { config: testConfig({ profiles: { default: ProfileConfig.parse({}), hypervisor: ProfileConfig.parse({}) } }) });
  tmp = mkdtempSync(join(tmpdir(), 'bf-inv-'));
});
afterAll(async () => {
  await db?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('bulk enrollment', () => {
  const csv = [
    'uuid,serial,macs,bmc_driver,bmc_address,bmc_username,bmc_password,labels,label.site,profile',
    `${U(1)},SN001,52:54:00:aa:00:01;52:54:00:aa:00:02,ipmi,10.9.0.1,admin,"pa,ss""1",rack=r1;role=hv,fra,hypervisor`,
    `${U(2).toUpperCase()},SN002,52-54-00-AA-00-03,,,,,rack=r1,fra,`,
    `${U(3)},SN003,52:54:00:aa:00:04,redfish,10.9.0.3,root,secret,rack=r2,,hypervisor`,
  ].join('\r\n');

  it('--dry-run checks every row and writes nothing; then the same file enrolls all nodes in one go', async () => {
    const path = file('rack.csv', csv);
    const before = await nodeCount();
    await cli(['enroll', path, '--dry-run']);
    expect(out.at(-1)).toBe('dry run: 3 node(s) would be enrolled; nothing was written');
    expect(out[0]).toMatch(new RegExp(`^2 +${U(1)} +52:54:00:aa:00:01,52:54:00:aa:00:02 +ipmi 10\\.9\\.0\\.1 +hypervisor$`));
    expect(await nodeCount()).toBe(before);

    await cli(['enroll', path]);
    expect(out.at(-1)).toBe('3 node(s) enrolled');
    const one = await t.nodes.require(U(1));
    expect(one).toMatchObject({ state: 'discovered', serial: 'SN001', labels: { rack: 'r1', role: 'hv', site: 'fra' }, profile: 'hypervisor', stateReason: 'enrolled from an inventory' });
    expect((await t.nodes.require(U(2))).labels).toEqual({ rack: 'r1', site: 'fra' });
    expect((await t.nodes.interfaces(U(1))).map((i) => i.mac).sort()).toEqual(['52:54:00:aa:00:01', '52:54:00:aa:00:02']);
    expect((await t.nodes.interfaces(U(2))).map((i) => i.mac)).toEqual(['52:54:00:aa:00:03']);
    // the password is sealed at rest and opens to what the file said (quotes and comma included)
    expect(await t.bmcs.getCredentials(U(1))).toMatchObject({ driver: 'ipmi', address: '10.9.0.1', username: 'admin', password: 'pa,ss"1' });
    expect(await t.bmcs.get(U(2))).toBeNull();
    const audit = await db.db.select().from(auditLog).where(eq(auditLog.action, 'nodes.enroll'));
    expect(audit.map((a) => [a.actor, a.target, a.after])).toEqual([['api:admin', 'nodes:3', { uuids: [U(1), U(2), U(3)], macs: ['52:54:00:aa:00:01', '52:54:00:aa:00:02', '52:54:00:aa:00:03', '52:54:00:aa:00:04'], bmcs: ['10.9.0.1', '10.9.0.3'] }]]);
    expect(JSON.stringify(audit)).not.toContain('pa,ss');
  });

  it('refuses the whole file with every problem and its row, and writes nothing', async () => {
    const before = await nodeCount();
    const bad = [
      'uuid,macs,bmc_address,bmc_username,bmc_password,profile',
      'not-a-uuid,52:54:00:bb:00:01,,,,', // line 2
      `${U(11)},52:54:00:bb:00:02,10.9.1.1,admin,,`, // line 3: BMC without password
      `${U(12)},52:54:00:bb:00:03,,,,nosuch`, // line 4: unknown profile
      `${U(13)},52:54:00:bb:00:03,,,,`, // line 5: MAC twice in the file
      `${U(1)},52:54:00:bb:00:05,,,,`, // line 6: already enrolled
      `${U(14)},52:54:00:aa:00:04,,,,`, // line 7: MAC of node 3
      `${U(15)},52:54:00:bb:00:07,,,,`, // fine, but the file is refused as a whole
    ].join('\n');
    const path = file('bad.csv', bad);
    expect(await fails(['enroll', path])).toBe(`6 problem(s) in ${path}; nothing was enrolled`);
    expect(out).toEqual([
      `${path}:2: uuid: must be an SMBIOS UUID like 4c4c4544-0042-3510-8052-b4c04f4e4d32`,
      `${path}:3: bmc.password: Invalid input: expected string, received undefined`,
      `${path}:4: profile: no profile "nosuch" is configured (known: default, hypervisor)`,
      `${path}:5: macs: MAC 52:54:00:bb:00:03 is also on row 4`,
      `${path}:6: uuid: node ${U(1)} is already enrolled; leave it out, or delete it first`,
      `${path}:7: macs: MAC 52:54:00:aa:00:04 belongs to node ${U(3)}`,
    ]);
    expect(await nodeCount()).toBe(before);
    expect(await t.nodes.get(U(15))).toBeFalsy();
  });

  it('takes YAML (a list, or a map with nodes:), and names a file it cannot read at all', async () => {
    const yaml = `nodes:\n  - uuid: ${U(21)}\n    serial: Y1\n    macs: ["52:54:00:cc:00:01"]\n    bmc: { address: 10.9.2.1, username: admin, password: pw }\n    labels: { rack: r9 }\n  - uuid: ${U(22)}\n`;
    await cli(['enroll', file('more.yaml', yaml)]);
    expect(out.at(-1)).toBe('2 node(s) enrolled');
    expect(await t.bmcs.get(U(21))).toMatchObject({ driver: 'ipmi', address: '10.9.2.1' });
    expect(await fails(['enroll', file('x.yml', 'uuid: [')])).toMatch(/^422 invalid_inventory: not valid YAML: .*; nothing was enrolled$/);
    expect(await fails(['enroll', file('x.csv', 'serial,colour\n1,red\n')])).toBe('422 invalid_inventory: line 1: unknown column "colour"; known: uuid, serial, hostname, mac, macs, labels, profile, bmc_driver, bmc_address, bmc_port, bmc_username, bmc_password, label.KEY; nothing was enrolled');
    expect(await fails(['enroll', file('x.txt', '')])).toMatch(/^cannot tell the format of .*x\.txt: name it \.csv, \.yaml or \.yml, or pass --format csv\|yaml$/);
  });

  it('needs the admin role', async () => {
    expect(await fails(['enroll', file('op.csv', `uuid\n${U(31)}\n`)], TOKENS.operator)).toMatch(/^403 forbidden/);
  });
});

describe('node delete', () => {
  const activate = async (uuid: string) => {
    await t.nodes.enroll(uuid, {}, 'test');
    await t.nodes.transition(uuid, { type: 'inspect' }, 'test');
    await t.nodes.transition(uuid, { type: 'inspected' }, 'test');
    await t.nodes.transition(uuid, { type: 'provision' }, 'test', { kernel: 'a'.repeat(64), initrd: 'b'.repeat(64) });
    await t.nodes.transition(uuid, { type: 'installed' }, 'test');
  };

  it('refuses an active node without --force, naming the state; with --force it goes, with its leases, BMC and events, and an audit row stays', async () => {
    const uuid = U(41);
    await activate(uuid);
    await t.bmcs.set(uuid, { driver: 'ipmi', address: '10.9.4.1', username: 'admin', password: 'pw' }, 'test');
    await db.db.insert(interfaces).values({ mac: '52:54:00:dd:00:01', nodeUuid: uuid });
    await db.db.insert(dhcpLeases).values({ ip: '10.6.0.41', mac: '52:54:00:dd:00:01', state: 'bound', expiresAt: new Date('2030-01-01T00:00:00Z'), pool: 'p' });
    await db.db.insert(dhcpLeases).values({ ip: '10.6.0.42', mac: '52:54:00:dd:00:99', state: 'bound', expiresAt: new Date('2030-01-01T00:00:00Z'), pool: 'p' });
    // another node's open conflict naming this one is closed with it
    await db.db.insert(conflicts).values({ nodeUuid: U(2), kind: 'serial', value: 'SN-X', otherUuid: uuid });

    expect(await fails(['delete', uuid])).toBe('409 node_in_use: node is active: deleting it would orphan a machine that runs or is booting; retire it first, or delete with force=true');
    expect((await t.nodes.require(uuid)).state).toBe('active');

    await cli(['delete', uuid, '--force']);
    expect(out).toEqual([`${uuid}: deleted (was active); removed 1 interface(s), 1 lease(s), 0 boot attempt(s), 0 facts report(s), 6 event(s), its BMC`]);
    expect(await t.nodes.get(uuid)).toBeFalsy();
    expect(await t.bmcs.get(uuid)).toBeNull();
    expect((await db.db.select().from(dhcpLeases)).map((l) => l.ip)).toEqual(['10.6.0.42']);
    expect(await db.db.select().from(events).where(eq(events.nodeUuid, uuid))).toEqual([]);
    expect((await db.db.select().from(conflicts).where(eq(conflicts.otherUuid, uuid)))[0]?.resolvedAt).toBeInstanceOf(Date);
    const [audit] = await db.db.select().from(auditLog).where(eq(auditLog.target, `node:${uuid}`));
    expect(audit).toMatchObject({ actor: 'api:admin', action: 'node.delete.forced', before: { node: { uuid, state: 'active' }, macs: ['52:54:00:dd:00:01'], leases: ['10.6.0.41'], bmc: { driver: 'ipmi', address: '10.9.4.1' } }, after: { removed: { interfaces: 1, leases: 1, bmc: true } } });
    expect(JSON.stringify(audit)).not.toContain('credentialHash');
  });

  it('deletes a retired node without force; a second delete is 404; only admins delete', async () => {
    const uuid = U(42);
    await t.nodes.enroll(uuid, {}, 'test');
    await t.nodes.transition(uuid, { type: 'retire', reason: 'decommissioned' }, 'test');
    expect(await fails(['delete', uuid], TOKENS.operator)).toMatch(/^403 forbidden/);
    await cli(['delete', uuid, '--json']);
    expect(JSON.parse(out.join('\n'))).toMatchObject({ uuid, state: 'retired', removed: { interfaces: 0, bmc: false } });
    expect(await fails(['delete', uuid])).toBe(`404 not_found: node ${uuid} not found`);
    const api = client(t.app);
    const bad = await api.get(`/api/v1/nodes/${U(3)}`, { token: TOKENS.admin });
    expect(bad.status).toBe(200);
    const res = await t.app.request(`/api/v1/nodes/${U(3)}?force=yes`, { method: 'DELETE', headers: { authorization: `Bearer ${TOKENS.admin}` } });
    expect(res.status).toBe(400);
    expect((await t.nodes.require(U(3))).state).toBe('discovered');
  });
});
