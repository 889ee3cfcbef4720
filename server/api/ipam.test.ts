// IPAM through the API (issue 16 item 1): networks and reservations as an operator sets them up, then what a node's
// stage-1 gets from GET /api/v1/agent/:uuid/detail (addresses per profile network, bond from LLDP, VLAN, routes,
// DNS), the same again on a rebuild, a conflict the node reports, and a clear 4xx for every bad request.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DbHandle } from '../db/index.ts';
import { createTestDb } from '../../test/fakes/db.ts';
import { bootToken, client, createTestApp, sampleFacts, testConfig, TOKENS } from '../../test/fakes/app.ts';
import { Detail } from '../contract/agent.ts';

const U1 = '1ba41000-0000-4000-8000-000000000001';
const U2 = '1ba41000-0000-4000-8000-000000000002';
const U3 = '1ba41000-0000-4000-8000-000000000003';
const U4 = '1ba41000-0000-4000-8000-000000000004';
const U5 = '1ba41000-0000-4000-8000-000000000005';
const U6 = '1ba41000-0000-4000-8000-000000000006';

/** two NICs on two switches, one unplugged NIC (captured shape: lldpcli -f json0, parsed as the agent does) */
const facts = (uuid: string, macs: string[]) => ({
  ...sampleFacts(uuid, { macs }),
  lldp: [
    { interface: 'eth0', chassisId: '02:00:00:00:00:01', systemName: 'tor-a', portId: 'swp7' },
    { interface: 'eth2', chassisId: '02:00:00:00:00:02', systemName: 'tor-b', portId: 'swp7' },
  ],
});

const config = testConfig({
  profiles: {
    default: { networks: [{ name: 'prov' }, { name: 'storage' }], bond: { mode: 'active-backup' } },
    tiny: { match: { pool: 'tiny' }, networks: [{ name: 'tiny' }] },
    broken: { match: { pool: 'broken' }, networks: [{ name: 'nowhere' }] },
  },
});

let db: DbHandle;
let t: ReturnType<typeof createTestApp>;
let http: ReturnType<typeof client>;
beforeAll(async () => {
  db = await createTestDb();
  t = createTestApp(db, { config });
  http = client(t.app);
});
afterAll(async () => db?.close());

async function registered(uuid: string, macs: string[]) {
  const token = await bootToken(t.app, uuid);
  const r = await http.post('/api/v1/agent/register', { token, body: { facts: facts(uuid, macs) } });
  expect(r.status, r.text).toBeLessThan(300);
  return token;
}

describe('networks and reservations (admin API)', () => {
  it('creates an IPv4 and an IPv6 network and shows their pools and usage', async () => {
    const v4 = await http.put('/api/v1/networks/prov', { token: TOKENS.admin, body: { cidr: '10.20.0.0/24', gateway: '10.20.0.1', dns: ['10.20.0.53'], pool: { start: '10.20.0.10', end: '10.20.0.99' } } });
    expect(v4.status, v4.text).toBe(201);
    expect(v4.json).toMatchObject({ name: 'prov', family: 4, pool: { start: '10.20.0.10', end: '10.20.0.99' }, usage: { size: '90', used: '0', free: '90' } });
    const v6 = await http.put('/api/v1/networks/storage', { token: TOKENS.admin, body: { cidr: 'FD00:30:0::/64', gateway: 'fd00:30::1', dns: ['fd00:30::53'], vlan: 30 } });
    expect(v6.status, v6.text).toBe(201);
    // stored canonical; the default pool of a /64 is 2^64 - 1 addresses less the gateway
    expect(v6.json).toMatchObject({ cidr: 'fd00:30::/64', vlan: 30, usage: { size: String(2n ** 64n - 2n) } });
    expect((await http.put('/api/v1/networks/tiny', { token: TOKENS.admin, body: { cidr: '10.99.0.0/30' } })).status).toBe(201);
    const list = await http.get('/api/v1/networks', { token: TOKENS.viewer });
    expect(list.json.networks.map((n: { name: string }) => n.name)).toEqual(['prov', 'storage', 'tiny']);
    // replacing it is a 200
    expect((await http.put('/api/v1/networks/tiny', { token: TOKENS.admin, body: { cidr: '10.99.0.0/30' } })).status).toBe(200);
  });

  const bad: [string, () => Promise<{ status: number; json: any }>, number, RegExp][] = [
    ['a network with host bits set', () => http.put('/api/v1/networks/x', { token: TOKENS.admin, body: { cidr: '10.20.0.5/24' } }), 400, /"10\.20\.0\.5\/24" has host bits set; the network is 10\.20\.0\.0\/24/],
    ['a gateway outside the network', () => http.put('/api/v1/networks/x', { token: TOKENS.admin, body: { cidr: '10.20.0.0/24', gateway: '10.21.0.1' } }), 400, /gateway: 10\.21\.0\.1 is outside 10\.20\.0\.0\/24/],
    ['a pool of the other family', () => http.put('/api/v1/networks/x', { token: TOKENS.admin, body: { cidr: '10.20.0.0/24', pool: { start: 'fd00::1', end: 'fd00::9' } } }), 400, /poolStart: fd00::1 is IPv6 but the network 10\.20\.0\.0\/24 is IPv4/],
    ['a network name with capitals', () => http.put('/api/v1/networks/Prov', { token: TOKENS.admin, body: { cidr: '10.20.0.0/24' } }), 400, /a network name is 1-63 lower-case letters/],
    ['an unknown field', () => http.put('/api/v1/networks/x', { token: TOKENS.admin, body: { cidr: '10.20.0.0/24', mtu: 9000 } }), 400, /mtu/],
    ['a VLAN id out of range', () => http.put('/api/v1/networks/x', { token: TOKENS.admin, body: { cidr: '10.20.0.0/24', vlan: 4095 } }), 400, /vlan/],
    ['an operator creating a network', () => http.put('/api/v1/networks/x', { token: TOKENS.operator, body: { cidr: '10.20.0.0/24' } }), 403, /admin/],
    ['a reservation naming both node and MAC', () => http.post('/api/v1/ipam/reservations', { token: TOKENS.operator, body: { network: 'prov', address: '10.20.0.5', node: U1, mac: '52:54:00:00:00:01' } }), 400, /either a node .* or a MAC/],
    ['a reservation of no address', () => http.post('/api/v1/ipam/reservations', { token: TOKENS.operator, body: { network: 'prov', address: '10.20.0.500', mac: '52:54:00:00:00:01' } }), 400, /address: "10\.20\.0\.500" is not an IP address/],
    ['a reservation outside the network', () => http.post('/api/v1/ipam/reservations', { token: TOKENS.operator, body: { network: 'prov', address: '10.21.0.5', mac: '52:54:00:00:00:01' } }), 400, /10\.21\.0\.5 is not inside network prov \(10\.20\.0\.0\/24\)/],
    ['a reservation on a network that does not exist', () => http.post('/api/v1/ipam/reservations', { token: TOKENS.operator, body: { network: 'nope', address: '10.21.0.5', mac: '52:54:00:00:00:01' } }), 404, /network nope not found/],
    ['a release of an address nobody holds', () => http.post('/api/v1/ipam/release', { token: TOKENS.operator, body: { network: 'prov', address: '10.20.0.77' } }), 404, /address 10\.20\.0\.77 on network prov not found/],
    ['an allocations filter on an unknown state', () => http.get('/api/v1/ipam/allocations?state=free', { token: TOKENS.viewer }), 400, /state/],
  ];
  it.each(bad)('refuses %s, naming the problem', async (_, call, status, message) => {
    const r = await call();
    expect(r.status).toBe(status);
    expect(r.json.error.message).toMatch(message);
  });

  it('reserves an address for a MAC before its node is known', async () => {
    const r = await http.post('/api/v1/ipam/reservations', { token: TOKENS.operator, body: { network: 'prov', address: '10.20.0.50', mac: '52-54-00-1B-00-31' } });
    expect(r.status, r.text).toBe(200);
    expect(r.json).toMatchObject({ network: 'prov', address: '10.20.0.50', node: null, mac: '52:54:00:1b:00:31', reserved: true });
  });
});

describe('GET /api/v1/agent/:uuid/detail', () => {
  let first: Detail;
  it('hands out one address per profile network, the bond from LLDP (two switches), the VLAN, routes and DNS', async () => {
    const token = await registered(U1, ['52:54:00:1b:00:11', '52:54:00:1b:00:12', '52:54:00:1b:00:13']);
    const r = await http.get(`/api/v1/agent/${U1}/detail`, { token });
    expect(r.status, r.text).toBe(200);
    first = Detail.parse(r.json);
    expect(first.bond).toEqual({ name: 'bond0', mode: 'active-backup', members: ['eth0', 'eth2'], spread: 'two-switches' });
    expect(first.vlans).toEqual([{ device: 'bond0.30', link: 'bond0', id: 30 }]);
    expect(first.addresses).toEqual([
      { network: 'prov', interface: 'bond0', device: 'bond0', address: '10.20.0.10/24', family: 4, gateway: '10.20.0.1' },
      { network: 'storage', interface: 'bond0', device: 'bond0.30', address: 'fd00:30::2/64', family: 6, gateway: 'fd00:30::1', vlan: 30 },
    ]);
    expect(first.routes).toEqual([
      { to: 'default', via: '10.20.0.1', device: 'bond0' },
      { to: 'default', via: 'fd00:30::1', device: 'bond0.30' },
    ]);
    expect(first.dns).toEqual(['10.20.0.53', 'fd00:30::53']);
    const events = (await http.get(`/api/v1/nodes/${U1}/events`, { token: TOKENS.viewer })).json;
    expect(JSON.stringify(events)).toContain('address-allocated');
  });

  it('gives the same addresses on a rebuild (a new boot, a new registration)', async () => {
    await registered(U2, ['52:54:00:1b:00:21', '52:54:00:1b:00:22']);
    const token = await registered(U1, ['52:54:00:1b:00:11', '52:54:00:1b:00:12', '52:54:00:1b:00:13']);
    const again = Detail.parse((await http.get(`/api/v1/agent/${U1}/detail`, { token })).json);
    expect(again.addresses).toEqual(first.addresses);
    expect(again.bond).toEqual(first.bond);
  });

  it('gives a node the address reserved for one of its MACs', async () => {
    const token = await registered(U3, ['52:54:00:1b:00:31', '52:54:00:1b:00:32']);
    const d = Detail.parse((await http.get(`/api/v1/agent/${U3}/detail`, { token })).json);
    expect(d.addresses[0]).toMatchObject({ network: 'prov', address: '10.20.0.50/24' });
    const rows = (await http.get(`/api/v1/ipam/allocations?node=${U3}`, { token: TOKENS.viewer })).json.allocations;
    expect(rows).toEqual([expect.objectContaining({ network: 'prov', address: '10.20.0.50', node: U3, interface: 'bond0', reserved: true }), expect.objectContaining({ network: 'storage', node: U3 })]);
  });

  it('answers a conflict the node reports with the next free address, and keeps the declined one out of the pool', async () => {
    const token = await registered(U2, ['52:54:00:1b:00:21', '52:54:00:1b:00:22']);
    const d = Detail.parse((await http.get(`/api/v1/agent/${U2}/detail`, { token })).json);
    expect(d.addresses[0]!.address).toBe('10.20.0.11/24');
    const r = await http.post(`/api/v1/agent/${U2}/addresses/conflict`, { token, body: { address: '10.20.0.11', how: 'arp-probe', detail: 'answered by 52:54:00:ff:00:01' } });
    expect(r.status, r.text).toBe(200);
    expect(r.json).toEqual({ declined: '10.20.0.11', network: 'prov', replacement: { network: 'prov', interface: 'bond0', device: 'bond0', address: '10.20.0.12/24', family: 4, gateway: '10.20.0.1' } });
    const conflicts = (await http.get('/api/v1/ipam/allocations?state=conflict', { token: TOKENS.viewer })).json.allocations;
    expect(conflicts).toEqual([expect.objectContaining({ address: '10.20.0.11', node: null, state: 'conflict', note: expect.stringContaining('arp-probe: answered by 52:54:00:ff:00:01') })]);
    expect(Detail.parse((await http.get(`/api/v1/agent/${U2}/detail`, { token })).json).addresses[0]!.address).toBe('10.20.0.12/24');
    // an address it does not hold
    const wrong = await http.post(`/api/v1/agent/${U2}/addresses/conflict`, { token, body: { address: '10.20.0.10' } });
    expect(wrong.status).toBe(404);
    expect(wrong.json.error.message).toBe(`address 10.20.0.10 of node ${U2} not found`);
    // the operator clears it once the other device is gone
    expect((await http.post('/api/v1/ipam/release', { token: TOKENS.operator, body: { network: 'prov', address: '10.20.0.11' } })).status).toBe(200);
  });

  it('409 naming the network when its pool is full, and when the profile names a network IPAM does not have', async () => {
    // 10.99.0.0/30 without network and broadcast: two addresses
    for (const uuid of [U1, U2, U3]) expect((await http.patch(`/api/v1/nodes/${uuid}`, { token: TOKENS.operator, body: { labels: { pool: 'tiny' } } })).status).toBe(200);
    expect((await http.get(`/api/v1/agent/${U1}/detail`, { token: await registered(U1, ['52:54:00:1b:00:11']) })).status).toBe(200);
    expect((await http.get(`/api/v1/agent/${U2}/detail`, { token: await registered(U2, ['52:54:00:1b:00:21']) })).status).toBe(200);
    const full = await http.get(`/api/v1/agent/${U3}/detail`, { token: await registered(U3, ['52:54:00:1b:00:31']) });
    expect(full.status).toBe(409);
    expect(full.json.error).toMatchObject({ code: 'pool_exhausted', message: 'network tiny has no free address: all 2 addresses of its pool 10.99.0.1-10.99.0.2 are allocated, reserved or in conflict', details: { network: 'tiny' } });

    const tok4 = await registered(U4, ['52:54:00:1b:00:41']);
    expect((await http.patch(`/api/v1/nodes/${U4}`, { token: TOKENS.operator, body: { labels: { pool: 'broken' } } })).status).toBe(200);
    const missing = await http.get(`/api/v1/agent/${U4}/detail`, { token: tok4 });
    expect(missing.status).toBe(409);
    expect(missing.json.error.message).toBe('profile broken names network(s) nowhere that IPAM does not have; create them (PUT /api/v1/networks/{name}) or fix the profile');
  });

  it('compares what the heartbeat says the compute OS configured with what it was handed: a difference is one event', async () => {
    const token = await registered(U5, ['52:54:00:1b:00:51', '52:54:00:1b:00:52', '52:54:00:1b:00:53']);
    const handed = Detail.parse((await http.get(`/api/v1/agent/${U5}/detail`, { token })).json);
    const prof = await http.get(`/api/v1/agent/${U5}/profile`, { token });
    expect(prof.status, prof.text).toBe(200);
    const cred = /bootfarm\.token=(\S+)/.exec(prof.json.cmdline)![1]!;
    const mismatches = async () => ((await http.get(`/api/v1/nodes/${U5}/events`, { token: TOKENS.viewer })).json.events as { reason: string; count: number; data: any }[]).filter((e) => e.reason === 'network-mismatch');
    const right = { addresses: handed.addresses.map((a) => ({ device: a.device, address: a.address })), bond: { name: 'bond0', mode: 'active-backup', members: ['eth2', 'eth0'] } };
    expect((await http.post(`/api/v1/agent/${U5}/heartbeat`, { token: cred, body: { uptimeSeconds: 5, network: right } })).status).toBe(200);
    expect(await mismatches()).toEqual([]);
    const wrong = { addresses: [{ device: 'bond0', address: '10.20.0.10/24' }], bond: { name: 'bond0', mode: '802.3ad', members: ['eth0', 'eth1'] } };
    for (let i = 0; i < 2; i++) expect((await http.post(`/api/v1/agent/${U5}/heartbeat`, { token: cred, body: { uptimeSeconds: 35 + i, network: wrong } })).status).toBe(200);
    const [event, ...more] = await mismatches();
    expect(more).toEqual([]);
    expect(event!.count).toBe(2);
    expect(event!.data.message).toBe('the compute OS configured its network differently: 2 address(es) not configured (10.20.0.11/24 on bond0, fd00:30::5/64 on bond0.30); 1 not handed out (10.20.0.10/24 on bond0); bond 802.3ad [eth0, eth1], expected active-backup [eth0, eth2]');
    // a body that is no network report is refused, naming the field
    const bad = await http.post(`/api/v1/agent/${U5}/heartbeat`, { token: cred, body: { network: { addresses: [{ device: 'bond0' }] } } });
    expect(bad.status).toBe(400);
    expect(bad.json.error.message).toMatch(/network\.addresses\.0\.address/);
  });

  it('a node that booted from eth0 with eth1 and eth2 on two switches: the bond is eth1 + eth2, the compute OS is told its boot NIC (BOOTIF), and that bond read back is no mismatch', async () => {
    const macs = ['52:54:00:1b:00:61', '52:54:00:1b:00:62', '52:54:00:1b:00:63'];
    const token = await bootToken(t.app, U6);
    const f = sampleFacts(U6, { macs });
    const booted = {
      ...f,
      nics: f.nics.map((n, i) => ({ ...n, boot: i === 0 })),
      lldp: [
        { interface: 'eth0', chassisId: '02:00:00:00:00:09', systemName: 'tor-boot', portId: 'swp1' },
        { interface: 'eth1', chassisId: '02:00:00:00:00:01', systemName: 'tor-a', portId: 'swp8' },
        { interface: 'eth2', chassisId: '02:00:00:00:00:02', systemName: 'tor-b', portId: 'swp8' },
      ],
    };
    expect((await http.post('/api/v1/agent/register', { token, body: { facts: booted } })).status).toBe(200);
    const d = Detail.parse((await http.get(`/api/v1/agent/${U6}/detail`, { token })).json);
    // eth0 would be the first by name; the compute OS would refuse to enslave it (agent/network keeps the boot path)
    expect(d.bond).toEqual({ name: 'bond0', mode: 'active-backup', members: ['eth1', 'eth2'], spread: 'two-switches' });
    const prof = await http.get(`/api/v1/agent/${U6}/profile`, { token });
    expect(prof.status, prof.text).toBe(200);
    expect(prof.json.cmdline.split(' ')).toContain('BOOTIF=01-52-54-00-1b-00-61');
    const cred = /bootfarm\.token=(\S+)/.exec(prof.json.cmdline)![1]!;
    const network = { addresses: d.addresses.map((a) => ({ device: a.device, address: a.address })), bond: { name: 'bond0', mode: 'active-backup', members: ['eth2', 'eth1'] } };
    expect((await http.post(`/api/v1/agent/${U6}/heartbeat`, { token: cred, body: { uptimeSeconds: 5, network } })).status).toBe(200);
    const events = (await http.get(`/api/v1/nodes/${U6}/events`, { token: TOKENS.viewer })).json.events as { reason: string }[];
    expect(events.map((e) => e.reason)).not.toContain('network-mismatch');
    // a node whose facts name no boot NIC gets no BOOTIF
    const other = await http.get(`/api/v1/agent/${U1}/profile`, { token: await registered(U1, ['52:54:00:1b:00:11']) });
    expect(other.status, other.text).toBe(200);
    expect(other.json.cmdline).toMatch(/bootfarm\.mode=compute/);
    expect(other.json.cmdline).not.toMatch(/BOOTIF=/);
  });

  it('/ui/networks shows the networks and every address held, each node linked; a stranger is sent to the login', async () => {
    const page = await http.get('/ui/networks', { token: TOKENS.viewer });
    expect(page.status).toBe(200);
    expect(page.text).toMatch(/<tr data-network="prov"><td>prov<\/td><td class="mono">10\.20\.0\.0\/24<\/td><td class="mono">10\.20\.0\.1<\/td>/);
    expect(page.text).toContain(`<a href="/ui/nodes/${U1}">${U1}</a>`);
    expect(page.text).toContain('href="/ui/networks"');
    expect((await t.app.request('/ui/networks')).status).toBe(302);
  });

  it('refuses to delete a network in use unless forced', async () => {
    const r = await http.delete('/api/v1/networks/tiny', { token: TOKENS.admin });
    expect(r.status).toBe(409);
    expect(r.json.error).toMatchObject({ code: 'network_in_use', message: 'network tiny holds 2 address(es) (allocated, reserved or in conflict); release them or delete with force' });
    expect((await http.delete('/api/v1/networks/tiny?force=true', { token: TOKENS.admin })).json).toEqual({ deleted: 'tiny', allocations: 2 });
  });
});
