// The fleet controller end to end on one node store: PGlite (in memory), a fake clock (a day of failures runs in
// milliseconds of clock time), and REAL BMCs — one OpenIPMI ipmi_sim per node, driven by the real ipmitool —
// for every power cycle. Only the node's own boot is played by the test (the QEMU rack does it for real in e2e).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { createFleet, type Fleet } from './controller.ts';
import { metricsResponse } from './metrics.ts';
import { createFleetTestDb, bootToActive, uuidOf, startWebhookReceiver, type FleetTestDb, type WebhookReceiver } from '../../test/fakes/fleet.ts';
import { startIpmiSim, startIpmiSims, freeUdpPort, type IpmiSim } from '../../test/harness/ipmisim.ts';
import { silentLogger } from '../log.ts';
import { until } from '../../test/harness/wait.ts';
import type { FleetConfigInput } from './config.ts';

const SECRET = 'webhook-secret-0123456789';
let t: FleetTestDb;
let hook: WebhookReceiver;
const sims: IpmiSim[] = [];

beforeAll(async () => {
  [t, hook] = await Promise.all([createFleetTestDb(), startWebhookReceiver(SECRET)]);
});
// every test starts from a fleet with nothing to do: retire what the previous one left (retired is hands-off)
afterEach(async () => {
  for (const n of await t.store.list({ limit: 10_000 })) if (n.state !== 'retired') await t.store.transition(n.uuid, { type: 'retire', reason: 'test done' }, 'test');
});
afterAll(async () => {
  await Promise.all(sims.map((s) => s.stop()));
  await hook?.close();
  await t?.close();
});

const TICK = 15_000;
const baseConfig = (over: FleetConfigInput = {}): FleetConfigInput => ({
  tickSeconds: TICK / 1000,
  heartbeat: { intervalSeconds: 30, missed: 3 },
  // these suites test the rebuild mechanics on real BMCs with one rung; the ladder has its own (outage.test.ts)
  rebuild: { maxConcurrent: 3, maxConcurrentPerRack: 2, maxAttempts: 3, backoffBaseSeconds: 60, backoffMaxSeconds: 600, ladder: ['reprovision'] },
  timeouts: { rebuildingSeconds: 600 },
  bmc: { pollSeconds: 60 },
  webhooks: { urls: [hook.url], secret: SECRET, backoffBaseSeconds: 5 },
  ...over,
});

function fleetFor(config: FleetConfigInput, registry = new Registry()): Fleet {
  return createFleet({ db: t.handle, store: t.store, bmcStore: t.bmcStore, clock: t.clock, config: { ...config, rebuild: { ...baseConfig().rebuild, ...config.rebuild } }, logger: silentLogger(), metrics: registry });
}

async function enrollBmc(uuid: string, sim: Pick<IpmiSim, 'host' | 'port' | 'username' | 'password'>) {
  // one retry of a 1 s wait: an unreachable BMC costs 2 s of real time per call instead of 3
  await t.bmcStore.set(uuid, { driver: 'ipmi', address: sim.host, port: sim.port, username: sim.username, password: sim.password, options: { retries: 1 } }, 'test');
}

/** ipmi_sim turns the power back on about a second (real time) after a cycle; a node cannot boot before. */
async function waitPower(sim: IpmiSim, want: 0 | 1) {
  await until(`ipmi_sim power ${want}`, async () => (await sim.power()) === want, { pollMs: 100 });
}

/** The boot a rebuilt node goes through: PXE → stage-1 registers → profile → compute OS reports installed. */
async function bootBack(uuid: string) {
  await bootToActive(t.store, uuid);
}

const counterValue = async (r: Registry, name: string) => ((await r.getSingleMetric(name)?.get())?.values ?? []).reduce((a, v) => a + v.value, 0);

describe('fleet controller with real ipmi_sim BMCs', () => {
  it('a node whose heartbeats stop is failed and rebuilt (bootdev pxe + power cycle) within the configured bound', async () => {
    const sim = await startIpmiSim({ power: 1 });
    sims.push(sim);
    const uuid = uuidOf(1, 'aaaaaaaa');
    await bootToActive(t.store, uuid);
    await enrollBmc(uuid, sim);
    const registry = new Registry();
    const fleet = fleetFor(baseConfig(), registry);

    // healthy for five minutes: heartbeats every 30 s, a tick every 15 s
    for (let i = 0; i < 20; i++) {
      if (i % 2 === 0) await t.store.touch(uuid, { lastHeartbeat: t.clock.now() });
      await fleet.tick();
      t.clock.advance(TICK);
    }
    expect((await t.store.require(uuid)).state).toBe('active');
    const lastBeat = (await t.store.require(uuid)).lastHeartbeat!;

    // heartbeats stop
    let rebuiltAt: Date | undefined;
    for (let i = 0; i < 40 && !rebuiltAt; i++) {
      t.clock.advance(TICK);
      await fleet.tick();
      if ((await t.store.require(uuid)).state === 'rebuilding') rebuiltAt = t.clock.now();
    }
    // bound: 3 missed intervals, plus one tick to notice and one to start the rebuild
    const boundMs = 3 * 30_000 + 2 * TICK;
    expect(rebuiltAt).toBeDefined();
    expect(rebuiltAt!.getTime() - lastBeat.getTime()).toBeLessThanOrEqual(boundMs);
    // the real BMC was told to boot from PXE and cycled the power
    const calls = await sim.calls();
    expect(calls).toContain('0x20 set boot pxe');
    expect(calls.indexOf('0x20 set power 0')).toBeGreaterThan(calls.indexOf('0x20 set boot pxe'));

    const events = await t.store.events(uuid);
    const failEv = events.find((e) => e.toState === 'failed');
    expect(failEv?.reason).toMatch(/^no heartbeat for \d+ s \(interval 30 s, 3 missed\)$/);
    expect(events.find((e) => e.toState === 'rebuilding')?.reason).toMatch(/rebuild attempt 1\/3 \(reprovision\) after: no heartbeat/);
    expect(events.some((e) => e.kind === 'bmc' && /next boot from PXE, power cycle/.test(e.reason ?? ''))).toBe(true);

    // the node PXE boots and comes back; the next tick closes the rebuild as a success
    t.clock.advance(60_000);
    await waitPower(sim, 1);
    await bootBack(uuid);
    t.clock.advance(TICK);
    await fleet.tick();
    expect((await t.store.require(uuid)).rebuildAttempts).toBe(0);
    const [rec] = await fleet.store.rebuildsOf(uuid);
    expect(rec).toMatchObject({ outcome: 'succeeded', attempt: 1 });
    expect(await counterValue(registry, 'bootfarm_rebuilds_started_total')).toBe(1);
    expect(await counterValue(registry, 'bootfarm_rebuilds_succeeded_total')).toBe(1);

    // webhooks: failed, then rebuilt, each signed
    const mine = hook.received.filter((h) => JSON.parse(h.body).node.uuid === uuid);
    expect(mine.map((h) => h.event)).toEqual(['failed', 'rebuilt']);
    expect(mine.every((h) => h.signed)).toBe(true);

    const text = await (await metricsResponse(registry)).text();
    expect(text).toMatch(/bootfarm_time_to_recover_seconds_count 1/);
    expect(text).toMatch(/bootfarm_nodes\{state="active"\} \d/);
    expect(text).toMatch(/bootfarm_bmc_call_duration_seconds_count\{driver="ipmi",operation="bootdev pxe"\} 1/);
  });

  it('ten nodes failing at once are rebuilt no more than the concurrency limits at a time, and all come back', async () => {
    const ten = await startIpmiSims(10, { power: 1 });
    sims.push(...ten);
    const uuids = ten.map((_, i) => uuidOf(i, 'bbbbbbbb'));
    for (const [i, uuid] of uuids.entries()) {
      await bootToActive(t.store, uuid);
      await t.store.setLabels(uuid, { rack: i < 5 ? 'r1' : 'r2' }, 'test');
      await enrollBmc(uuid, ten[i]!);
      await t.store.touch(uuid, { lastHeartbeat: t.clock.now() });
    }
    const STEP = 60_000;
    // ten of ten failing together would open the fleet-wide breaker: this test is about the concurrency limits
    const fleet = fleetFor(baseConfig({ tickSeconds: 60, bmc: { poll: false }, breaker: { enabled: false }, rebuild: { maxConcurrent: 3, maxConcurrentPerRack: 2, maxAttempts: 3 } }));
    const BOOT_MS = 4 * 60_000; // a rebuilt node is active again 4 min after its power cycle
    const rebuildingSince = new Map<string, number>();
    let maxGlobal = 0;
    let maxPerRack = 0;
    for (let i = 0; i < 100; i++) {
      t.clock.advance(STEP);
      await fleet.tick();
      const now = t.clock.now().getTime();
      const rows = await t.store.list({ labels: {} });
      const mine = rows.filter((r) => uuids.includes(r.uuid));
      // the node side: a rebuilt node boots back after BOOT_MS, then heartbeats
      for (const r of mine) {
        if (r.state === 'rebuilding' && !rebuildingSince.has(r.uuid)) rebuildingSince.set(r.uuid, now);
        if (r.state === 'rebuilding' && now - rebuildingSince.get(r.uuid)! >= BOOT_MS) {
          await bootBack(r.uuid);
          rebuildingSince.delete(r.uuid);
        }
        if (r.state === 'active' && r.rebuildAttempts === 0 && (await fleet.store.rebuildsOf(r.uuid)).length) await t.store.touch(r.uuid, { lastHeartbeat: t.clock.now() });
      }
      const running = (await fleet.store.rebuildRecords()).filter((r) => r.outcome === 'running' && uuids.includes(r.nodeUuid));
      maxGlobal = Math.max(maxGlobal, running.length);
      for (const rack of ['r1', 'r2']) maxPerRack = Math.max(maxPerRack, running.filter((r) => r.rack === rack).length);
      const done = await Promise.all(uuids.map(async (u) => (await fleet.store.rebuildsOf(u)).some((r) => r.outcome === 'succeeded')));
      if (done.every(Boolean)) break;
    }
    expect(maxGlobal).toBe(3);
    expect(maxPerRack).toBe(2);
    for (const [i, u] of uuids.entries()) {
      expect((await t.store.require(u)).state).toBe('active');
      expect(await ten[i]!.calls()).toContain('0x20 set boot pxe');
    }
    // the controller said why the others waited
    const waits = (await Promise.all(uuids.map((u) => t.store.events(u)))).flat().filter((e) => /^rebuild deferred: \d+ rebuilds in flight/.test(e.reason ?? ''));
    expect(waits.length).toBeGreaterThan(0);
  });

  it('a node that keeps failing is quarantined after N attempts, with backoff between them', async () => {
    const sim = await startIpmiSim({ power: 1 });
    sims.push(sim);
    const uuid = uuidOf(1, 'cccccccc');
    await bootToActive(t.store, uuid);
    await enrollBmc(uuid, sim);
    const fleet = fleetFor(baseConfig({ tickSeconds: 60, bmc: { poll: false } }));
    // the node never heartbeats and never comes back after a power cycle; run up to a day, a tick a minute
    for (let i = 0; i < 24 * 60 && (await t.store.require(uuid)).state !== 'quarantined'; i++) {
      t.clock.advance(60_000);
      await fleet.tick();
    }
    const node = await t.store.require(uuid);
    expect(node.state).toBe('quarantined');
    expect(node.stateReason).toMatch(/^3 rebuild attempt\(s\) did not bring the node back \(last failure: stuck in rebuilding for \d+ min \(limit 10 min\)\)$/);
    const recs = await fleet.store.rebuildsOf(uuid);
    expect(recs.map((r) => [r.attempt, r.outcome])).toEqual([[1, 'failed'], [2, 'failed'], [3, 'failed']]);
    // backoff: attempt 2 waits ≥ 60 s after the failure, attempt 3 ≥ 120 s (rebuilding lasts 10 min before failing)
    const gap = (a: number, b: number) => recs[b]!.startedAt.getTime() - recs[a]!.startedAt.getTime();
    expect(gap(0, 1)).toBeGreaterThanOrEqual(600_000 + 60_000);
    expect(gap(1, 2)).toBeGreaterThanOrEqual(600_000 + 120_000);
    expect(gap(1, 2)).toBeGreaterThan(gap(0, 1));
    expect((await sim.calls()).filter((c) => c === '0x20 set boot pxe')).toHaveLength(3);
    await fleet.tick();
    const deliveries = hook.received.filter((h) => JSON.parse(h.body).node.uuid === uuid).map((h) => h.event);
    expect(deliveries.at(-1)).toBe('quarantined');
  });

  it('an unreachable BMC and a rejected password are clear events, never a crash, and never show the password', async () => {
    const sim = await startIpmiSim({ power: 1, password: 'right-pw-77' });
    sims.push(sim);
    const wrongPw = 'WRONG-pw-secret-99';
    const unreachable = uuidOf(1, 'dddddddd');
    const rejected = uuidOf(2, 'dddddddd');
    for (const u of [unreachable, rejected]) await bootToActive(t.store, u);
    await enrollBmc(unreachable, { host: '127.0.0.1', port: await freeUdpPort(), username: 'admin', password: 'unused-pw-55' });
    await enrollBmc(rejected, { ...sim, password: wrongPw });
    const fleet = fleetFor(baseConfig({ rebuild: { maxAttempts: 1 } }));
    for (const u of [unreachable, rejected]) await t.store.transition(u, { type: 'fail', reason: 'operator says so' }, 'test');
    const report = await fleet.tick();
    expect(report.errors).toEqual([]);
    const evU = await t.store.events(unreachable);
    const evR = await t.store.events(rejected);
    expect(evU.find((e) => e.kind === 'bmc' && e.reason?.includes('no answer from the BMC'))).toBeDefined();
    expect(evR.find((e) => e.kind === 'bmc' && e.reason?.includes('authentication rejected'))).toBeDefined();
    expect((await t.store.require(rejected)).stateReason).toMatch(/^rebuild attempt 1 failed: BMC 127\.0\.0\.1:\d+: bootdev pxe: authentication rejected/);
    await fleet.tick();
    expect((await t.store.require(unreachable)).state).toBe('quarantined');
    expect(JSON.stringify([...evU, ...evR, ...(await t.store.events(rejected))])).not.toMatch(/WRONG-pw-secret-99|unused-pw-55/);
    expect(JSON.stringify(hook.received.map((h) => h.body))).not.toMatch(/WRONG-pw-secret-99|unused-pw-55/);
  });

  it('an active node its BMC reports powered off has failed; maintenance nodes are never touched', async () => {
    const sim = await startIpmiSim({ power: 0 });
    sims.push(sim);
    const off = uuidOf(1, 'eeeeeeee');
    const held = uuidOf(2, 'eeeeeeee');
    for (const u of [off, held]) await bootToActive(t.store, u);
    await enrollBmc(off, sim);
    await enrollBmc(held, sim);
    await t.store.transition(held, { type: 'maintenance-on', reason: 'disk swap' }, 'test');
    const fleet = fleetFor(baseConfig({ rebuild: { enabled: false } }));
    for (const u of [off, held]) await t.store.touch(u, { lastHeartbeat: t.clock.now() });
    t.clock.advance(1000);
    await fleet.tick();
    const n = await t.store.require(off);
    expect(n.state).toBe('failed');
    expect(n.stateReason).toBe('node is active but its BMC reports the power off');
    // a day later, the maintenance node is still exactly as the operator left it
    for (let i = 0; i < 24; i++) {
      t.clock.advance(3600_000);
      await fleet.tick();
    }
    expect((await t.store.require(held)).state).toBe('maintenance');
    expect((await t.store.events(held)).filter((e) => e.actor === 'fleet')).toEqual([]);
  });

  it('an operator rebuild of a quarantined node starts a fresh repair loop and drives the BMC', async () => {
    const sim = await startIpmiSim({ power: 0 });
    sims.push(sim);
    const uuid = uuidOf(1, 'abababab');
    await bootToActive(t.store, uuid);
    await enrollBmc(uuid, sim);
    await t.store.transition(uuid, { type: 'quarantine', reason: 'bad DIMM' }, 'test');
    const fleet = fleetFor(baseConfig());
    const row = await fleet.rebuild(uuid, 'DIMM replaced', 'alice');
    expect(row).toMatchObject({ state: 'rebuilding', rebuildAttempts: 1 });
    // it was off: the controller powers it on (a cycle of an off chassis is refused by some BMCs)
    expect((await sim.calls()).slice(-3)).toEqual(['0x20 set boot pxe', '0x20 get power', '0x20 set power 1']);
    const ev = (await t.store.events(uuid)).filter((e) => e.actor === 'alice').map((e) => e.reason);
    expect(ev).toEqual(['DIMM replaced', 'next boot from PXE, power on (ipmi 127.0.0.1:' + sim.port + ')']);
  });

  it('webhooks are retried with backoff until the receiver accepts, with the same delivery id', async () => {
    const uuid = uuidOf(1, 'ffffffff');
    await bootToActive(t.store, uuid);
    const fleet = fleetFor(baseConfig({ rebuild: { enabled: false }, webhooks: { urls: [hook.url], secret: SECRET, backoffBaseSeconds: 5 } }));
    hook.scriptFor.set(uuid, [500, 503]);
    const before = hook.received.length;
    // no heartbeat, a tick every 15 s (a clock jump without ticks would be a control-plane outage, judged by no one)
    for (let i = 0; i < 40 && (await t.store.require(uuid)).state !== 'failed'; i++) {
      t.clock.advance(TICK);
      await fleet.tick(); // the tick that fails it queues one webhook and makes attempt 1: 500
    }
    t.clock.advance(2_000);
    await fleet.tick(); // not due yet (5 s backoff)
    t.clock.advance(4_000);
    await fleet.tick(); // attempt 2: 503
    t.clock.advance(10_000);
    await fleet.tick(); // attempt 3: 200
    const got = hook.received.slice(before).filter((h) => JSON.parse(h.body).node.uuid === uuid);
    expect(got.map((h) => h.event)).toEqual(['failed', 'failed', 'failed']);
    expect(new Set(got.map((h) => h.delivery)).size).toBe(1);
    expect(got.every((h) => h.signed)).toBe(true);
    const [row] = (await fleet.store.webhooks()).filter((w) => w.nodeUuid === uuid);
    expect(row).toMatchObject({ attempts: 3, lastError: null });
    expect(row!.deliveredAt).not.toBeNull();
  });
});
