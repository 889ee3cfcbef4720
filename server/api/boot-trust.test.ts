// The boot credential model (docs/security-model.md) through the real app over a migrated PGlite, with an injected
// clock: who gets a stage-1 token from /ipxe, what each credential may call, how long a token lives, and the
// bounds on unauthenticated work (discovered-per-minute cap, coalesced boot events).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootToken, client, createTestApp, sampleFacts, testConfig, TOKENS } from '../../test/fakes/app.ts';
import { createTestDb } from '../../test/fakes/db.ts';
import { FakeClock } from '../clock.ts';
import { createFleet } from '../fleet/controller.ts';
import { silentLogger } from '../log.ts';
import { createApp } from './app.ts';
import type { DbHandle } from '../db/index.ts';

const NODE_IP = '10.0.0.21';
const ELSEWHERE = '10.0.0.66';
const credentialOf = (cmdline: string) => /bootfarm\.token=(\S+)/.exec(cmdline)![1]!;

let db: DbHandle;
let t: ReturnType<typeof createTestApp>;
const clock = new FakeClock('2026-01-01T00:00:00Z');
let api: ReturnType<typeof client>;
let n = 0;
/** a fresh node UUID per test, so each starts from nothing */
const nextUuid = () => `7e57c0de-0000-4000-8000-${String(++n).padStart(12, '0')}`;

beforeAll(async () => {
  db = await createTestDb();
  t = createTestApp(db, { clock });
  api = client(t.app);
});
afterAll(async () => db?.close());

/** Walks a node through stage-1 into an active compute OS, all from the node's own address. */
async function activeNode(uuid: string, app = t.app) {
  const node = client(app, { from: NODE_IP });
  const stage1 = await bootToken(app, uuid, { from: NODE_IP });
  const reg = await node.post('/api/v1/agent/register', { token: stage1, body: { facts: sampleFacts(uuid, { macs: [`52:54:00:7e:00:${(n % 256).toString(16).padStart(2, '0')}`] }) } });
  expect(reg.json.state).toBe('ready');
  const profile = await node.get(`/api/v1/agent/${uuid}/profile`, { token: stage1 });
  const credential = credentialOf(profile.json.cmdline);
  expect((await node.post(`/api/v1/agent/${uuid}/installed`, { token: credential, body: {} })).json).toEqual({ state: 'active' });
  return { node, stage1, credential };
}

const phaseEvents = async (uuid: string, phase: string) =>
  ((await api.get(`/api/v1/nodes/${uuid}/events`, { token: TOKENS.viewer })).json.events.slice().reverse() as { reason: string; count: number; lastAt: string | null; data: Record<string, unknown> }[]).filter((e) => e.reason === phase);

describe('a running node keeps its credential whatever /ipxe is asked', () => {
  it('stays active with zero 403s while /ipxe/<uuid> is fetched 100 times from elsewhere', async () => {
    const U = nextUuid();
    const { node, credential } = await activeNode(U);
    const elsewhere = client(t.app, { from: ELSEWHERE });
    const statuses: number[] = [];
    const scripts: string[] = [];
    // ten rounds: ten concurrent fetches from another address next to one heartbeat, 10 s apart (interval 30 s)
    for (let round = 0; round < 10; round++) {
      const [beat, ...fetched] = await Promise.all([node.post(`/api/v1/agent/${U}/heartbeat`, { token: credential, body: { uptimeSeconds: round * 10 } }), ...Array.from({ length: 10 }, () => elsewhere.get(`/ipxe/${U}`))]);
      statuses.push(beat.status);
      expect(beat.json).toEqual({ state: 'active', next: 'continue' });
      scripts.push(...fetched.map((f) => f.text));
      clock.advance(10_000);
    }
    const after = await node.post(`/api/v1/agent/${U}/heartbeat`, { token: credential, body: {} });
    statuses.push(after.status);
    console.log(`100 /ipxe fetches from ${ELSEWHERE}, ${statuses.length} heartbeats: ${statuses.filter((s) => s === 403).length} × 403, statuses ${[...new Set(statuses)].join(',')}`);
    expect(statuses.filter((s) => s === 403)).toHaveLength(0);
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(scripts).toHaveLength(100);
    for (const s of scripts) {
      expect(s).not.toContain('bootfarm.token=');
      expect(s).toMatch(/node is active and heartbeating[\s\S]*\nsleep \d+\nchain --autofree http:\/\/10\.0\.0\.1:8080\/ipxe\//);
    }
    expect((await t.nodes.get(U))!.state).toBe('active');
    // no boot attempt was opened by the fetches: only the node's own one, closed when its compute OS came up
    expect((await t.nodes.attempts(U)).map((a) => [a.address, a.closeReason])).toEqual([[NODE_IP, 'the compute OS is up']]);
    // and they are one event row with a count, not 100
    const refused = await phaseEvents(U, 'ipxe-refused');
    expect(refused.map((e) => e.count)).toEqual([100]);
    expect(refused[0]!.lastAt).not.toBeNull();
  });

  it('lets a node that rebooted by itself boot once it has missed two heartbeat intervals', async () => {
    const U = nextUuid();
    const { node } = await activeNode(U);
    // the node rebooted right after installed: no more heartbeats; its iPXE asks at once and is told to wait
    const early = await node.get(`/ipxe/${U}`);
    expect(early.text).not.toContain('bootfarm.token=');
    expect(early.text).toMatch(/\nsleep 30\n/);
    clock.advance(45_000);
    // 15 s before it counts as gone: the retry is no longer than that (+1 s)
    expect((await node.get(`/ipxe/${U}`)).text).toMatch(/\nsleep 16\n/);
    clock.advance(16_000);
    const script = await node.get(`/ipxe/${U}`);
    const token = credentialOf(script.text);
    expect((await t.nodes.attempts(U)).at(-1)).toMatchObject({ reason: 'gone', serverStarted: false, address: NODE_IP, closedAt: null });
    // its stage-1 registers: active → inspecting, a fresh boot
    expect((await node.post('/api/v1/agent/register', { token, body: { facts: sampleFacts(U, { macs: ['52:54:00:7e:01:01'] }) } })).json.state).toBe('ready');
  });

  it('opens an attempt at once for a boot the server started, and a last heartbeat of the old boot does not close it', async () => {
    const U = nextUuid();
    const { node, credential } = await activeNode(U);
    expect((await api.post(`/api/v1/nodes/${U}/actions`, { token: TOKENS.operator, body: { action: 'rebuild', reason: 'new image' } })).json.node.state).toBe('rebuilding');
    // the old OS's heartbeat in flight: it is told to reboot
    expect((await node.post(`/api/v1/agent/${U}/heartbeat`, { token: credential, body: {} })).json).toEqual({ state: 'rebuilding', next: 'reboot' });
    const token = credentialOf((await node.get(`/ipxe/${U}`)).text);
    expect((await t.nodes.attempts(U)).at(-1)).toMatchObject({ reason: 'expected', serverStarted: true });
    expect((await node.post(`/api/v1/agent/${U}/heartbeat`, { token: credential, body: {} })).status).toBe(200);
    expect((await node.post('/api/v1/agent/register', { token, body: { facts: sampleFacts(U, { macs: ['52:54:00:7e:02:01'] }) } })).status).toBe(200);
    // the profile ends the wait: the node gets a new credential and the old boot's stops working
    const fresh = credentialOf((await node.get(`/api/v1/agent/${U}/profile`, { token })).json.cmdline);
    expect((await t.nodes.get(U))!.bootExpectedAt).toBeNull();
    expect((await node.post(`/api/v1/agent/${U}/heartbeat`, { token: credential, body: {} })).status).toBe(403);
    expect((await node.post(`/api/v1/agent/${U}/installed`, { token: fresh, body: {} })).json).toEqual({ state: 'active' });
  });

  it('closes an attempt opened on the guess that the node was gone when its running boot heartbeats again', async () => {
    const U = nextUuid();
    const { node, credential } = await activeNode(U);
    clock.advance(61_000); // a network blip: two beats lost
    const intruder = client(t.app, { from: ELSEWHERE });
    const stolen = credentialOf((await intruder.get(`/ipxe/${U}`)).text);
    expect((await node.post(`/api/v1/agent/${U}/heartbeat`, { token: credential, body: {} })).status).toBe(200);
    const r = await intruder.post('/api/v1/agent/register', { token: stolen, body: { facts: sampleFacts(U) } });
    expect(r.status).toBe(403);
    expect(r.json.error.message).toMatch(/attempt ended .*the running boot called in with its node credential/);
    expect((await t.nodes.get(U))!.state).toBe('active');
  });
});

describe('a control-plane outage does not make running nodes "gone"', () => {
  it('after 10 minutes without controller ticks, /ipxe from elsewhere opens no attempt; a node silent for 61 s of watched time gets one', async () => {
    // the real fleet controller on the same database and clock: its ticks write the observation window
    // (fleet_control) that /ipxe reads through deps.fleetWatchedSince
    const fleet = createFleet({ db, store: t.nodes, bmcStore: t.bmcs, clock, config: { tickSeconds: 15, heartbeat: { intervalSeconds: 30, missed: 3 }, bmc: { poll: false } }, logger: silentLogger(), sleep: async () => {} });
    const app = createApp({ ...t.deps, fleetWatchedSince: fleet.watchedSince });
    const U = nextUuid();
    const { node, credential } = await activeNode(U, app);
    await fleet.tick();
    expect((await node.post(`/api/v1/agent/${U}/heartbeat`, { token: credential, body: {} })).json).toEqual({ state: 'active', next: 'continue' });

    // the control plane is away for 10 minutes: no ticks, no heartbeats recorded. It comes back; before its
    // first tick, and right after it, the node's old heartbeat does not count against it
    clock.advance(10 * 60_000);
    const elsewhere = client(app, { from: ELSEWHERE });
    const before = await elsewhere.get(`/ipxe/${U}`);
    expect(before.text).not.toContain('bootfarm.token=');
    expect(before.text).toMatch(/node is active and heartbeating/);
    await fleet.tick();
    clock.advance(3_000);
    expect((await elsewhere.get(`/ipxe/${U}`)).text).not.toContain('bootfarm.token=');
    expect((await t.nodes.get(U))!.state).toBe('active');
    expect((await node.post(`/api/v1/agent/${U}/heartbeat`, { token: credential, body: {} })).status).toBe(200);

    // the node really went away after the outage: ticks run every 15 s, and 61 s of watched silence later its
    // own boot gets an attempt (the usual "gone" rule)
    for (let i = 0; i < 4; i++) {
      clock.advance(15_000);
      await fleet.tick();
    }
    clock.advance(2_000);
    const script = await node.get(`/ipxe/${U}`);
    expect(script.text).toContain('bootfarm.token=');
    expect((await t.nodes.attempts(U)).at(-1)).toMatchObject({ reason: 'gone', address: NODE_IP });
    await fleet.stop();
  });
});

describe('two copies of one profile request (issue 14, found by the HA rack)', () => {
  it('hand out the same node credential, so the agent holding either one is the running boot', async () => {
    const U = nextUuid();
    const node = client(t.app, { from: NODE_IP });
    const stage1 = await bootToken(t.app, U, { from: NODE_IP });
    expect((await node.post('/api/v1/agent/register', { token: stage1, body: { facts: sampleFacts(U, { macs: ['52:54:00:7e:0c:01'] }) } })).json.state).toBe('ready');
    // the agent's retry races the first copy (that one sat on a paused replica): both get a profile
    const [a, b] = await Promise.all([node.get(`/api/v1/agent/${U}/profile`, { token: stage1 }), node.get(`/api/v1/agent/${U}/profile`, { token: stage1 })]);
    expect([a.status, b.status]).toEqual([200, 200]);
    const ca = credentialOf(a.json.cmdline);
    expect(credentialOf(b.json.cmdline)).toBe(ca);
    // and a third, late copy after the node is provisioning: still the same
    expect(credentialOf((await node.get(`/api/v1/agent/${U}/profile`, { token: stage1 })).json.cmdline)).toBe(ca);
    expect((await node.post(`/api/v1/agent/${U}/installed`, { token: ca, body: {} })).json).toEqual({ state: 'active' });
    // a new boot (a new attempt, a new stage-1 token) gets a different credential
    clock.advance(3600_000);
    const next = await bootToken(t.app, U, { from: NODE_IP });
    expect((await node.post('/api/v1/agent/register', { token: next, body: { facts: sampleFacts(U, { macs: ['52:54:00:7e:0c:01'] }) } })).status).toBe(200);
    expect(credentialOf((await node.get(`/api/v1/agent/${U}/profile`, { token: next })).json.cmdline)).not.toBe(ca);
  });
});

describe('each credential only where it belongs', () => {
  it('refuses the stage-1 token for installed and heartbeats, and the node credential for every stage-1 endpoint', async () => {
    const U = nextUuid();
    const node = client(t.app, { from: NODE_IP });
    const stage1 = await bootToken(t.app, U, { from: NODE_IP });
    await node.post('/api/v1/agent/register', { token: stage1, body: { facts: sampleFacts(U, { macs: ['52:54:00:7e:03:01'] }) } });
    for (const call of [() => node.post(`/api/v1/agent/${U}/heartbeat`, { token: stage1, body: {} }), () => node.post(`/api/v1/agent/${U}/installed`, { token: stage1, body: {} })]) {
      const r = await call();
      expect(r.status).toBe(403);
      expect(r.json.error.message).toBe("installed and heartbeats take the compute OS's node credential (issued with the profile), not a stage-1 boot token");
    }
    const credential = credentialOf((await node.get(`/api/v1/agent/${U}/profile`, { token: stage1 })).json.cmdline);
    const stage1Calls: [string, () => Promise<{ status: number; json: any }>][] = [
      ['register', () => node.post('/api/v1/agent/register', { token: credential, body: { facts: sampleFacts(U, { macs: ['52:54:00:7e:03:01'] }) } })],
      ['profile', () => node.get(`/api/v1/agent/${U}/profile`, { token: credential })],
    ];
    for (const [name, call] of stage1Calls) {
      const r = await call();
      expect([name, r.status, r.json.error.message]).toEqual([name, 403, "the stage-1 endpoints take the boot attempt's stage-1 token, not the compute OS's node credential"]);
    }
    // events take either: stage-1 reports its steps, the compute OS its errors
    expect((await node.post(`/api/v1/agent/${U}/events`, { token: stage1, body: { phase: 'kexec-started' } })).status).toBe(202);
    expect((await node.post(`/api/v1/agent/${U}/events`, { token: credential, body: { phase: 'compute-started' } })).status).toBe(202);
    // detail takes either: the compute OS applies its network from it (issue 16 item 1)
    expect((await node.get(`/api/v1/agent/${U}/detail`, { token: credential })).json).toMatchObject({ uuid: U, addresses: [] });
    expect((await node.post(`/api/v1/agent/${U}/installed`, { token: credential, body: {} })).json).toEqual({ state: 'active' });
    // the compute OS is up: the stage-1 token is over
    expect((await node.post(`/api/v1/agent/${U}/events`, { token: stage1, body: { phase: 'late' } })).status).toBe(403);
  });

  it('refuses an expired stage-1 token; use keeps it alive for another ttl', async () => {
    const U = nextUuid();
    const node = client(t.app, { from: NODE_IP });
    const idle = await bootToken(t.app, U, { from: NODE_IP });
    clock.advance(1801_000);
    const r = await node.post(`/api/v1/agent/${U}/events`, { token: idle, body: { phase: 'stage1-started' } });
    expect(r.status).toBe(403);
    expect(r.json.error.message).toMatch(/the stage-1 boot token expired at /);

    const busy = await bootToken(t.app, U, { from: NODE_IP });
    for (let i = 0; i < 3; i++) {
      clock.advance(1000_000); // 1000 s between calls: 3000 s in all, beyond 30 min from the opening
      expect((await node.post(`/api/v1/agent/${U}/events`, { token: busy, body: { phase: 'firmware-updating' } })).status).toBe(202);
    }
    clock.advance(1801_000);
    expect((await node.post(`/api/v1/agent/${U}/events`, { token: busy, body: { phase: 'firmware-updating' } })).status).toBe(403);
  });

  it("lets the same address's retries replace its attempt, and other addresses delay a boot but never strand one", async () => {
    const U = nextUuid();
    const node = client(t.app, { from: NODE_IP });
    const first = await bootToken(t.app, U, { from: NODE_IP });
    const retried = await bootToken(t.app, U, { from: NODE_IP }); // iPXE asked again (kernel download failed)
    expect((await node.post(`/api/v1/agent/${U}/events`, { token: first, body: { phase: 'x-old' } })).json.error.message).toMatch(/superseded by a newer attempt from the same address/);
    // three other addresses open attempts (boot.attempts.maxOpen 4 in all); the fourth is told to retry
    for (const ip of ['10.0.0.61', '10.0.0.62', '10.0.0.63']) await bootToken(t.app, U, { from: ip });
    const refused = await client(t.app, { from: '10.0.0.64' }).get(`/ipxe/${U}`);
    expect(refused.text).not.toContain('bootfarm.token=');
    expect(refused.text).toContain('boot attempts from other addresses are open');
    // the real node's stage-1 is untouched
    expect((await node.post('/api/v1/agent/register', { token: retried, body: { facts: sampleFacts(U, { macs: ['52:54:00:7e:04:01'] }) } })).status).toBe(200);
  });
});

describe('detail with the node credential', () => {
  it('has the network but not the iSCSI block: the CHAP password stays with stage-1 (the compute OS has it on its command line)', async () => {
    const db2 = await createTestDb();
    try {
      const iscsi = { portal: '10.0.0.5:3260', lun: 1, chapUser: 'node', chapPassword: 'chap-secret-123' };
      const t2 = createTestApp(db2, { clock: new FakeClock('2026-01-01T00:00:00Z'), config: testConfig({ profiles: { default: { iscsi } } }) });
      const U = nextUuid();
      const node = client(t2.app, { from: NODE_IP });
      const stage1 = await bootToken(t2.app, U, { from: NODE_IP });
      await node.post('/api/v1/agent/register', { token: stage1, body: { facts: sampleFacts(U, { macs: ['52:54:00:7e:04:01'] }) } });
      expect((await node.get(`/api/v1/agent/${U}/detail`, { token: stage1 })).json.iscsi).toMatchObject({ chapPassword: 'chap-secret-123' });
      const credential = credentialOf((await node.get(`/api/v1/agent/${U}/profile`, { token: stage1 })).json.cmdline);
      const r = await node.get(`/api/v1/agent/${U}/detail`, { token: credential });
      expect(r.status).toBe(200);
      expect(r.json.hostname).toEqual(expect.any(String));
      expect(r.json).not.toHaveProperty('iscsi');
      expect(r.text).not.toContain('chap-secret-123');
    } finally {
      await db2.close();
    }
  });
});

describe('bounded unauthenticated work', () => {
  it(`enrols at most boot.discoveredPerMinute new nodes a minute; known nodes boot as usual`, async () => {
    const db2 = await createTestDb();
    try {
      const clock2 = new FakeClock();
      const t2 = createTestApp(db2, { clock: clock2, config: testConfig({ boot: { discoveredPerMinute: 3 } }) });
      const http = client(t2.app);
      const uuids = Array.from({ length: 5 }, () => nextUuid());
      for (const u of uuids.slice(0, 3)) expect((await http.get(`/ipxe/${u}`)).text).toContain('bootfarm.token=');
      const capped = await http.get(`/ipxe/${uuids[3]}`);
      expect(capped.status).toBe(200);
      expect(capped.text).toContain('too many new machines at once');
      expect(capped.text).not.toContain('bootfarm.token=');
      expect(await t2.nodes.get(uuids[3]!)).toBeNull();
      // a known node is not a new one
      expect((await http.get(`/ipxe/${uuids[0]}`)).text).toContain('bootfarm.token=');
      clock2.advance(61_000);
      expect((await http.get(`/ipxe/${uuids[3]}`)).text).toContain('bootfarm.token=');
      expect((await t2.nodes.list()).length).toBe(4);
    } finally {
      await db2.close();
    }
  });

  it('coalesces identical consecutive boot events into one row with a count', async () => {
    const U = nextUuid();
    await api.get(`/ipxe/${U}`);
    await api.post(`/api/v1/nodes/${U}/actions`, { token: TOKENS.operator, body: { action: 'maintenance-on', reason: 'PSU' } });
    for (let i = 0; i < 5; i++) {
      await api.get(`/ipxe/${U}`);
      clock.advance(1000);
    }
    let held = await phaseEvents(U, 'ipxe-held');
    expect(held.map((e) => e.count)).toEqual([5]);
    expect(new Date(held[0]!.lastAt!).getTime() - new Date((held[0] as unknown as { at: string }).at).getTime()).toBe(4000);
    // something else happened in between: the next one is a new row
    await api.patch(`/api/v1/nodes/${U}`, { token: TOKENS.operator, body: { labels: { rack: 'r1' } } });
    await api.get(`/ipxe/${U}`);
    held = await phaseEvents(U, 'ipxe-held');
    expect(held.map((e) => e.count)).toEqual([5, 1]);
  });
});
