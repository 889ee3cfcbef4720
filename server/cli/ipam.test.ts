// `bootfarm networks …` and `bootfarm ipam …` against the in-process admin API: tables, --json, and the server's
// own error text when it refuses (exit code 2).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DbHandle } from '../db/index.ts';
import { CliError, main } from '../cli.ts';
import { createTestDb } from '../../test/fakes/db.ts';
import { bootToken, client, createTestApp, sampleFacts, testConfig, TOKENS } from '../../test/fakes/app.ts';

const U = '1ba42000-0000-4000-8000-000000000001';

let db: DbHandle;
let t: ReturnType<typeof createTestApp>;
const fetchVia = (app: { request: (u: string, i?: RequestInit) => Response | Promise<Response> }) => (async (url: string | URL | Request, init?: RequestInit) => app.request(String(url).replace('http://bootfarm', ''), init)) as typeof fetch;

beforeAll(async () => {
  db = await createTestDb();
  t = createTestApp(db, { config: testConfig({ profiles: { default: { networks: [{ name: 'prov' }] } } }) });
  const tok = await bootToken(t.app, U);
  await client(t.app).post('/api/v1/agent/register', { token: tok, body: { facts: sampleFacts(U, { macs: ['52:54:00:1b:20:01'] }) } });
});
afterAll(async () => db?.close());

async function run(args: string[], { token = TOKENS.admin, code = 0 } = {}) {
  const lines: string[] = [];
  const errs: string[] = [];
  // a CliError leaves main() and the entry point prints it and exits 2 (server/cli.ts); the same here
  const got = await main(args, { out: (l) => lines.push(l), err: (l) => errs.push(l), fetchImpl: fetchVia(t.app), env: { BOOTFARM_URL: 'http://bootfarm', BOOTFARM_TOKEN: token } }).catch((e: unknown) => {
    if (!(e instanceof CliError)) throw e;
    errs.push(`bootfarm: ${e.message}`);
    return 2;
  });
  expect(got, errs.join('\n')).toBe(code);
  return { lines, errs: errs.join('\n') };
}

describe('bootfarm networks', () => {
  it('adds IPv4 and IPv6 networks and lists them as a table and as JSON', async () => {
    expect((await run(['networks', 'add', 'prov', '--cidr', '10.20.0.0/24', '--gateway', '10.20.0.1', '--dns', '10.20.0.53,10.20.0.54', '--pool', '10.20.0.10-10.20.0.19'])).lines).toEqual(['network prov: 10.20.0.0/24 via 10.20.0.1, pool 10.20.0.10-10.20.0.19 (10 free of 10)']);
    expect((await run(['networks', 'add', 'storage', '--cidr', 'fd00:30::/64', '--pool', 'fd00:30::10-fd00:30::ff', '--vlan', '30'])).lines[0]).toBe('network storage: fd00:30::/64 vlan 30, pool fd00:30::10-fd00:30::ff (240 free of 240)');
    const table = (await run(['networks', 'list'], { token: TOKENS.viewer })).lines;
    expect(table[0]).toMatch(/^NAME\s+CIDR\s+GATEWAY\s+VLAN\s+POOL\s+USED\s+FREE\s+CONFLICTS$/);
    expect(table[1]).toMatch(/^prov\s+10\.20\.0\.0\/24\s+10\.20\.0\.1\s+-\s+10\.20\.0\.10-10\.20\.0\.19\s+0\s+10\s+0$/);
    const json = JSON.parse((await run(['--json', 'networks', 'list'])).lines.join('\n'));
    expect(json.map((n: { name: string }) => n.name)).toEqual(['prov', 'storage']);
    expect(json[0].dns).toEqual(['10.20.0.53', '10.20.0.54']);
  });

  it('prints what the server refused, and checks --pool and --vlan itself', async () => {
    expect((await run(['networks', 'add', 'bad', '--cidr', '10.20.0.5/24'], { code: 2 })).errs).toContain('has host bits set; the network is 10.20.0.0/24');
    expect((await run(['networks', 'add', 'bad', '--cidr', '10.20.0.0/24', '--pool', '10.20.0.10'], { code: 2 })).errs).toContain('--pool 10.20.0.10: give the range as START-END');
    expect((await run(['networks', 'add', 'bad', '--cidr', '10.20.0.0/24', '--vlan', '5000'], { code: 2 })).errs).toContain('--vlan 5000: a VLAN id is a whole number from 1 to 4094');
    expect((await run(['networks', 'add', 'bad', '--cidr', '10.20.0.0/24'], { token: TOKENS.operator, code: 2 })).errs).toMatch(/403|admin/);
  });
});

describe('bootfarm ipam', () => {
  it('reserves, lists and releases', async () => {
    expect((await run(['ipam', 'reserve', 'prov', '10.20.0.15', '--node', U, '--note', 'jump host'], { token: TOKENS.operator })).lines).toEqual([`reserved 10.20.0.15 on prov for node ${U} (bond0)`]);
    expect((await run(['ipam', 'reserve', 'prov', '10.20.0.16', '--mac', '52:54:00:1b:20:99'], { token: TOKENS.operator })).lines).toEqual(['reserved 10.20.0.16 on prov for MAC 52:54:00:1b:20:99']);
    const table = (await run(['ipam', 'allocations', '--network', 'prov'], { token: TOKENS.viewer })).lines;
    expect(table.slice(1)).toEqual([expect.stringMatching(new RegExp(`^prov\\s+10\\.20\\.0\\.15\\s+${U}\\s+bond0\\s+reserved\\s+jump host$`)), expect.stringMatching(/^prov\s+10\.20\.0\.16\s+mac 52:54:00:1b:20:99\s+-\s+reserved\s*$/)]);
    const json = JSON.parse((await run(['--json', 'ipam', 'allocations', '--node', U])).lines.join('\n'));
    expect(json).toEqual([expect.objectContaining({ network: 'prov', address: '10.20.0.15', node: U, reserved: true })]);
    expect((await run(['ipam', 'reserve', 'prov', '10.20.0.16', '--node', U], { token: TOKENS.operator, code: 2 })).errs).toContain('10.20.0.16 on network prov is held by a reservation for 52:54:00:1b:20:99');
    expect((await run(['ipam', 'reserve', 'prov', '10.20.0.17'], { token: TOKENS.operator, code: 2 })).errs).toContain('give --node UUID or --mac MAC');
    expect((await run(['ipam', 'release', 'prov', '10.20.0.16'], { token: TOKENS.operator })).lines).toEqual(['released 10.20.0.16 on prov']);
    expect((await run(['ipam', 'release', 'prov', '10.20.0.16'], { token: TOKENS.operator, code: 2 })).errs).toContain('address 10.20.0.16 on network prov not found');
    expect((await run(['networks', 'rm', 'prov'], { code: 2 })).errs).toContain('network prov holds 1 address(es)');
    expect((await run(['networks', 'rm', 'prov', '--force'])).lines).toEqual(['deleted network prov and its 1 address(es)']);
  });
});
