// Safe self-repair (issue 12): the fleet controller never turns an outage into a rebuild storm. PGlite (in memory),
// the injected clock (minutes of outage run in milliseconds of clock time), the real node store, lifecycle,
// heartbeat path (server/fleet/heartbeat.ts, what the agent route calls) and image pipeline with its automatic
// rollback as a leader task. BMCs: a counting stand-in (test/fakes/fleet.ts createCountingBmcs) — 200 ipmi_sim processes
// do not fit this machine; fleet.test.ts and the QEMU rack drive real ipmi_sim BMCs.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { createFleet, type Fleet } from './controller.ts';
import { createHeartbeats } from './heartbeat.ts';
import { createFleetTestDb, bootToActive, uuidOf, startWebhookReceiver, createCountingBmcs, type FleetTestDb, type WebhookReceiver, type CountingBmcs } from '../../test/fakes/fleet.ts';
import { createImagePipeline, type ImagePipeline } from '../images/pipeline.ts';
import { createLocalStore } from '../images/local.ts';
import { initrdFile, kernelFile } from '../../test/fakes/boot-files.ts';
import { silentLogger } from '../log.ts';
import type { FleetConfigInput } from './config.ts';
import type { NodeStore } from '../store/nodes.ts';
import { nodes } from '../db/schema/index.ts';
import { createFleetStore } from '../store/fleet.ts';
import { createReplicaStore } from '../store/replicas.ts';

const SECRET = 'webhook-secret-0123456789';
const TICK = 15_000;
const INTERVAL = 30_000;
let t: FleetTestDb;
let hook: WebhookReceiver;
let pipeline: ImagePipeline;
let tmp: string;
let image: { kernel: string; initrd: string };

beforeAll(async () => {
  [t, hook] = await Promise.all([createFleetTestDb(), startWebhookReceiver(SECRET)]);
  // a prod channel with a previous version to roll back to: an outage must not roll prod back
  tmp = mkdtempSync(join(tmpdir(), 'bf-outage-'));
  pipeline = createImagePipeline({ db: t.handle.db, store: createLocalStore({ dir: join(tmp, 'store') }), clock: t.clock, rollback: { maxFailureRatio: 0.1, minSamples: 3, windowMs: 3600_000 } });
  for (const v of ['1.0', '2.0']) {
    const k = kernelFile(tmp, `k${v}`, 4096 + Number(v[0]));
    const i = initrdFile(tmp, `i${v}`, 8192 + Number(v[0]));
    await pipeline.push({ name: 'hypervisor', version: v, kernelPath: k.path, initrdPath: i.path, cmdline: 'console=ttyS0', actor: 'test' });
    await pipeline.promote({ name: 'hypervisor', from: 'dev', to: 'prod', actor: 'test', force: true });
    image = { kernel: k.digest, initrd: i.digest };
  }
}, 120_000);
// every test starts from a quiet fleet: what the previous one left is retired, its failures leave the breaker's
// window (no tick runs in between) and an open breaker is resumed
afterEach(async () => {
  for (const n of await t.store.list({ limit: 10_000 })) if (n.state !== 'retired') await t.store.transition(n.uuid, { type: 'retire', reason: 'test done' }, 'test');
  t.clock.advance(16 * 60_000);
  await createFleetStore(t.handle.db).resumeBreaker({ at: t.clock.now(), actor: 'test', reason: 'next test' });
});
afterAll(async () => {
  await hook?.close();
  await t?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const config = (over: FleetConfigInput = {}): FleetConfigInput => ({
  tickSeconds: TICK / 1000,
  heartbeat: { intervalSeconds: INTERVAL / 1000, missed: 3 },
  bmc: { poll: false },
  rebuild: { maxConcurrent: 5, maxConcurrentPerRack: 2, maxAttempts: 3, backoffBaseSeconds: 60 },
  webhooks: { urls: [hook.url], secret: SECRET, backoffBaseSeconds: 5 },
  ...over,
});

interface Rig {
  fleet: Fleet;
  bmcs: CountingBmcs;
  registry: Registry;
  heartbeat: ReturnType<typeof createHeartbeats>;
}

function rig(over: FleetConfigInput = {}, { instanceId, bmcs = createCountingBmcs(), store = t.store }: { instanceId?: string; bmcs?: CountingBmcs; store?: NodeStore } = {}): Rig {
  const registry = new Registry();
  const fleet = createFleet({
    db: t.handle,
    store,
    bmcStore: t.bmcStore,
    clock: t.clock,
    config: config(over),
    logger: silentLogger(),
    metrics: registry,
    bmc: bmcs.factory,
    instanceId,
    sleep: async () => {},
    leaderTasks: [{ name: 'image-rollback', run: () => pipeline.evaluateAllRollbacks() }],
  });
  return { fleet, bmcs, registry, heartbeat: createHeartbeats({ nodes: t.store, db: t.handle.db, clock: t.clock }) };
}

/**
 * n active nodes running prod's image, each with a BMC, labelled into racks of 20. One node walks the real
 * lifecycle; the rest are written as the lifecycle leaves an active node (one insert: this machine is shared).
 */
async function activeNodes(n: number, prefix: string): Promise<string[]> {
  const uuids = Array.from({ length: n }, (_, i) => uuidOf(i, prefix));
  const now = t.clock.now();
  const image2 = { kernelDigest: image.kernel, initrdDigest: image.initrd, imageName: 'hypervisor', imageVersion: '2.0' };
  await bootToActive(t.store, uuids[0]!);
  await t.store.setLabels(uuids[0]!, { rack: 'r0' }, 'test');
  await t.store.touch(uuids[0]!, { lastHeartbeat: now, ...image2 });
  if (n > 1) await t.handle.db.insert(nodes).values(uuids.slice(1).map((uuid, j) => ({ uuid, state: 'active', stateSince: now, stateReason: 'compute OS reported in', labels: { rack: `r${Math.floor((j + 1) / 20)}` }, lastHeartbeat: now, lastSeen: now, ...image2, createdAt: now, updatedAt: now })));
  for (const u of uuids) await t.bmcStore.set(u, { driver: 'ipmi', address: `bmc-${u}`, username: 'admin', password: 'pw-0123' }, 'test');
  return uuids;
}

const beat = (r: Rig, uuid: string) => t.store.require(uuid).then((n) => r.heartbeat(n, {}));

/** Runs the fleet for `ms`: a tick every TICK, and each node in `beating` heartbeats every INTERVAL at its own offset. */
async function run(r: Rig, ms: number, beating: readonly string[], { tick = true } = {}): Promise<void> {
  const STEP = 5_000;
  const start = t.clock.now().getTime();
  for (let el = 0; el < ms; el += STEP) {
    t.clock.advance(STEP);
    const now = t.clock.now().getTime();
    // node i beats when (now / STEP + i) hits its slot: spread over the interval, as real agents drift apart
    for (const [i, u] of beating.entries()) if ((now / STEP + i) % (INTERVAL / STEP) === 0) await beat(r, u);
    if (tick && (now - start) % TICK === 0) await r.fleet.tick();
  }
}

const failEvents = async (uuids: readonly string[]) => (await Promise.all(uuids.map((u) => t.store.events(u)))).flat().filter((e) => e.toState === 'failed');
const metric = async (r: Registry, name: string) => ((await r.getSingleMetric(name)?.get())?.values ?? []).reduce((a, v) => a + v.value, 0);
const autoRollbacks = async () => (await pipeline.history('hypervisor', 'prod', 100)).filter((h) => h.action === 'auto-rollback');

describe('outage awareness: the control plane judges only time in which it could hear heartbeats', () => {
  it('200 active nodes, 10 minutes without ticks or heartbeats: it comes back and fails none, calls no BMC, rolls nothing back', async () => {
    const uuids = await activeNodes(200, 'a0000000');
    const r = rig();
    await run(r, 3 * 60_000, uuids); // steady state
    expect(await failEvents(uuids)).toEqual([]);

    // the server (or its database) is away for 10 minutes: no ticks, no heartbeats recorded
    t.clock.advance(10 * 60_000);
    const back = t.clock.now();
    // it comes back: ticks resume at once, agents heartbeat again at their next interval, for 5 minutes
    await run(r, 5 * 60_000, uuids);

    expect(await failEvents(uuids)).toEqual([]);
    expect(r.bmcs.calls).toEqual([]);
    expect(await autoRollbacks()).toEqual([]);
    expect((await t.store.countByState()).active).toBe(200);
    // the controller said why it held back: a fleet event names the gap
    const gap = (await r.fleet.store.fleetEvents()).find((e) => e.kind === 'gap' && e.at.getTime() >= back.getTime());
    expect(gap?.reason).toMatch(/^no controller tick for 615 s \(bound 45 s\)/);
    expect((await r.fleet.store.liveness()).observedSince!.getTime()).toBeGreaterThan(back.getTime());
  }, 900_000);

  it('a leader change restarts the window: the new leader waits out interval × missed before failing anyone', async () => {
    const uuids = await activeNodes(20, 'a1000000');
    // a gap bound so large that only the change of leader can restart the window
    const a = rig({ outage: { maxTickGapSeconds: 3600 } }, { instanceId: 'replica-a' });
    await run(a, 2 * 60_000, uuids);
    // replica A dies with the replicas that served the agents; B takes over 40 s later; agents reach it 60 s after
    t.clock.advance(40_000);
    const b = rig({ outage: { maxTickGapSeconds: 3600 } }, { instanceId: 'replica-b', bmcs: a.bmcs });
    await run(b, 60_000, []);
    const silent = uuids[0]!;
    await run(b, 3 * 60_000, uuids.slice(1));
    const fails = await failEvents(uuids);
    // only the node that never came back is failed, and only after B watched it for 3 intervals
    expect(fails.map((e) => e.nodeUuid)).toEqual([silent]);
    expect(fails[0]!.reason).toMatch(/^no heartbeat for (9\d|1[01]\d) s/);
    expect(fails[0]!.data).toMatchObject({ cause: 'heartbeat', causeClass: 'node', breakerOpen: false });
    const leader = (await b.fleet.store.fleetEvents()).find((e) => e.kind === 'leader');
    expect(leader?.reason).toMatch(/^leader changed \(replica-a → replica-b; last tick 55 s ago\)/);
    // the BMCs of the nodes that came back were never touched
    expect(a.bmcs.calls.filter((c) => c.target !== `bmc-${silent}`)).toEqual([]);
  }, 120_000);
});

describe('a silent peer replica holds heartbeat verdicts (issue 14: the HA rack failed two healthy nodes)', () => {
  // a peer that stops reporting (paused, cut off from PostgreSQL) may have acknowledged heartbeats it never wrote,
  // and the load balancer keeps queueing requests on it until its health check gives up: those nodes are silent
  // in the database through no fault of theirs
  const peer = { id: 'replica-b', hostname: 'b', url: null, version: 'test', schemaVersion: 'test', startedAt: new Date(0) };
  const present = () => createReplicaStore(t.handle.db).upsert(peer, { now: t.clock.now(), leader: false });
  /** runs `ms` in steps of one tick; the peer reports at each step while `peerUp` */
  async function runWithPeer(r: Rig, ms: number, beating: readonly string[], peerUp: boolean) {
    for (let el = 0; el < ms; el += TICK) {
      if (peerUp) await present();
      await run(r, TICK, beating);
    }
  }

  it('nodes whose heartbeats went to a paused peer for 2 minutes are not failed; one node that really died is, after the hold', async () => {
    const uuids = await activeNodes(20, 'a2000000');
    const r = rig({}, { instanceId: 'replica-a' });
    await runWithPeer(r, 2 * 60_000, uuids, true);
    // the peer pauses for 2 minutes; the half of the fleet whose requests it held is silent in the database
    const viaPeer = uuids.slice(0, 10);
    const direct = uuids.slice(10);
    const paused = t.clock.now();
    await runWithPeer(r, 2 * 60_000, direct, false);
    expect(await metric(r.registry, 'bootfarm_fleet_peer_hold_replicas')).toBe(1);
    // it resumes; every node beats again
    await runWithPeer(r, 3 * 60_000, uuids, true);
    expect(await failEvents(uuids)).toEqual([]);
    expect(await metric(r.registry, 'bootfarm_fleet_peer_hold_replicas')).toBe(0);
    const held = (await r.fleet.store.fleetEvents()).filter((e) => e.kind === 'gap' && e.at.getTime() > paused.getTime());
    // one event when the hold began, not one per tick
    expect(held).toHaveLength(1);
    expect(held[0]!.reason).toMatch(/^replica replica-b \(silent \d+ s\) stopped reporting: heartbeats it took may not be written/);
    expect(held[0]!.data).toMatchObject({ silentReplicas: ['replica-b'] });

    // the peer crashes for good and one node dies with it: the hold ends after 120 s, then a full grace period
    const dead = viaPeer[0]!;
    const crashed = t.clock.now();
    await runWithPeer(r, 5 * 60_000, uuids.filter((u) => u !== dead), false);
    const fails = await failEvents(uuids);
    expect(fails.map((e) => e.nodeUuid)).toEqual([dead]);
    // not before the peer was gone (45 s) + the hold (120 s) + interval × missed (90 s)
    expect(fails[0]!.at.getTime() - crashed.getTime()).toBeGreaterThanOrEqual(45_000 + 120_000 + 90_000);
    expect(await metric(r.registry, 'bootfarm_fleet_peer_hold_replicas')).toBe(0);
    await createReplicaStore(t.handle.db).remove(peer.id);
  }, 300_000);
});

describe('fleet-wide circuit breaker', () => {
  it('30 % of 200 nodes stop heartbeating at once: the breaker opens before any rebuild, with an event, a webhook and a metric; an operator resumes', async () => {
    const uuids = await activeNodes(200, 'b0000000');
    const r = rig();
    await run(r, 2 * 60_000, uuids);
    const dead = uuids.filter((_, i) => i % 10 < 3); // 60 nodes across every rack: a shared cause
    const alive = uuids.filter((u) => !dead.includes(u));
    await run(r, 10 * 60_000, alive);

    expect(new Set((await failEvents(dead)).map((e) => e.nodeUuid)).size).toBe(60);
    const breaker = await r.fleet.breaker();
    // agents beat at their own offsets, so the 60 fail over two or three ticks: the breaker opens at the first
    // tick whose failures pass the threshold, fleet-wide or in one rack of 20 (3 of 20 = 15 % > 10 %)
    expect(breaker.open).toBe(true);
    expect(breaker.reason).toMatch(/^\d+ of \d+ active nodes (of the fleet|in rack=r\d+) failed within 15 min \(\d+ % > 10 %\): automatic repair stopped$/);
    expect(breaker.data).toMatchObject({ failures: expect.any(Number), windowSeconds: 900, threshold: 0.1 });
    expect(breaker.data!.failures as number).toBeGreaterThanOrEqual(3);
    // no more than the concurrency limit was rebuilt before it opened — here none: it opened in the tick that failed them
    expect(await metric(r.registry, 'bootfarm_rebuilds_started_total')).toBeLessThanOrEqual(5);
    expect(r.bmcs.commands()).toEqual([]);
    expect(await metric(r.registry, 'bootfarm_fleet_breaker_open')).toBe(1);
    expect(await metric(r.registry, 'bootfarm_fleet_breaker_trips_total')).toBe(1);
    expect((await r.fleet.store.fleetEvents()).filter((e) => e.kind === 'breaker-open')).toHaveLength(1);
    const alert = hook.received.filter((h) => h.event === 'breaker-open');
    expect(alert).toHaveLength(1);
    expect(alert[0]!.signed).toBe(true);
    expect(JSON.parse(alert[0]!.body)).toMatchObject({ event: 'breaker-open', reason: breaker.reason, data: { scope: breaker.data!.scope } });
    // every held node says why, once
    const held = (await t.store.events(dead[0]!)).filter((e) => /circuit breaker open/.test(e.reason ?? ''));
    expect(held).toHaveLength(1);
    // failures made while the breaker was open are marked so (the image rollback gate ignores them)
    expect(await autoRollbacks()).toEqual([]);

    // an operator looks, fixes the switch, resumes: repair starts with its first, gentlest step (confirm)
    const resumed = await r.fleet.resume('api:alice', 'switch r3 replaced');
    expect(resumed).toMatchObject({ open: false, resumedBy: 'api:alice' });
    expect((await r.fleet.store.fleetEvents()).find((e) => e.kind === 'breaker-resume')).toMatchObject({ actor: 'api:alice', reason: 'switch r3 replaced' });
    await run(r, 60_000, alive);
    expect((await r.fleet.breaker()).open).toBe(false);
    expect(r.bmcs.calls.filter((c) => c.op === 'power status').length).toBeGreaterThan(0);
    expect(await r.fleet.resume('api:alice', 'again')).toBeNull();
  }, 900_000);

  it('one rack of 20 failing together opens it (per rack); 2 failures in a rack of 3 do not (minimum count)', async () => {
    const uuids = await activeNodes(60, 'b1000000');
    const r = rig({ breaker: { minFailures: 3 } });
    await run(r, 60_000, uuids);
    const r0 = uuids.slice(0, 20);
    await run(r, 5 * 60_000, uuids.slice(20));
    const b = await r.fleet.breaker();
    expect(b.open).toBe(true);
    expect(b.data?.scope === 'fleet' || b.data?.scope === 'rack=r0').toBe(true);
    expect(new Set((await failEvents(r0)).map((e) => e.nodeUuid)).size).toBe(20);
    await r.fleet.resume('api:alice', 'PDU of r0 back');
  }, 900_000);
});

describe('recovery and check before act', () => {
  it('a failed node that heartbeats is active again; a rebuilding node heartbeating from its old boot is noted once and not failed', async () => {
    const [u, v, w] = await activeNodes(3, 'c0000000');
    const r = rig();
    await run(r, 60_000, [u!, v!, w!]);
    // u and v fall silent until u is failed (before the ladder reaches a reboot: it waits one more interval)
    for (let i = 0; i < 20 && (await t.store.require(u!)).state !== 'failed'; i++) await run(r, TICK, [w!]);
    expect((await t.store.require(u!)).state).toBe('failed');
    const res = await beat(r, u!);
    expect(res).toMatchObject({ next: 'continue', node: { state: 'active', rebuildAttempts: 0 } });
    const ev = (await t.store.events(u!)).at(-1)!;
    expect(ev).toMatchObject({ fromState: 'failed', toState: 'active', actor: 'agent', data: { event: 'recover', cause: 'heartbeat' } });
    expect(ev.reason).toMatch(/^heartbeat from the running node: it is alive \(was failed: no heartbeat for/);

    // v is being rebuilt (an operator asked) and its old boot still heartbeats, three times
    await r.fleet.rebuild(v!, 'operator', 'api:bob');
    for (let i = 0; i < 3; i++) expect((await beat(r, v!)).next).toBe('reboot');
    expect((await t.store.require(v!)).state).toBe('rebuilding');
    expect((await t.store.events(v!)).filter((e) => e.data?.note === 'old-boot-heartbeat')).toHaveLength(1);

    // a node its BMC reported off stays failed: the heartbeat is noted once, it does not flap
    await t.store.transition(w!, { type: 'fail', reason: 'node is active but its BMC reports the power off' }, 'fleet', { cause: 'power-off' });
    for (let i = 0; i < 2; i++) expect((await beat(r, w!)).node.state).toBe('failed');
    expect((await t.store.events(w!)).filter((e) => e.data?.note === 'heartbeat-while-failed')).toHaveLength(1);
  }, 300_000);

  it('a heartbeat that lands between decide and apply wins: no failure, no rebuild, no BMC command', async () => {
    const [u, v] = await activeNodes(2, 'c1000000');
    // the store the controller writes through: the first time it is about to apply `target` to a node, that
    // node's heartbeat arrives first (an agent request served by another replica at that very moment)
    let target: { uuid: string; type: string } | null = null;
    const racing: NodeStore = {
      ...t.store,
      async transition(uuid, event, actor, data, opts) {
        if (target && target.uuid === uuid && target.type === event.type) {
          target = null;
          await beat(r, uuid);
        }
        return t.store.transition(uuid, event, actor, data, opts);
      },
    };
    const r = rig({}, { store: racing });
    await run(r, 60_000, [u!, v!]);

    // u: overdue → the controller decides `fail`; the heartbeat lands first → dropped as stale, u stays active
    target = { uuid: u!, type: 'fail' };
    let report;
    for (let i = 0; i < 12 && target; i++) {
      t.clock.advance(TICK);
      await beat(r, v!);
      report = await r.fleet.tick();
    }
    expect(target).toBeNull();
    expect(report!.stale).toEqual([expect.stringMatching(new RegExp(`^fail ${u}: node ${u} changed since the decision: lastHeartbeat is`))]);
    expect((await t.store.require(u!)).state).toBe('active');

    // v: failed, confirmed, due for its first repair step → `rebuild` decided; v heartbeats first → recovered, no rebuild
    target = { uuid: v!, type: 'rebuild' };
    for (let i = 0; i < 20 && target; i++) {
      t.clock.advance(TICK);
      await beat(r, u!);
      report = await r.fleet.tick();
    }
    expect(target).toBeNull();
    expect(report!.stale).toEqual([expect.stringMatching(new RegExp(`^rebuild ${v}: node ${v} changed since the decision: state is "active", expected "failed"`))]);
    expect((await t.store.require(v!)).state).toBe('active');
    expect(await r.fleet.store.rebuildsOf(v!)).toEqual([expect.objectContaining({ step: 'confirm', attempt: 0 })]);
    expect(r.bmcs.commands()).toEqual([]);
  }, 120_000);
});

describe('escalation ladder', () => {
  it('confirm → soft reset → re-provision → BMC cold reset + re-provision → quarantine, each step an event with its reason', async () => {
    const [u] = await activeNodes(1, 'd0000000');
    const r = rig({ bmc: { poll: false }, rebuild: { maxConcurrent: 5, maxAttempts: 3, backoffBaseSeconds: 60, backoffMaxSeconds: 600 }, timeouts: { rebuildingSeconds: 600 } });
    await run(r, 60_000, [u!]);
    // the node never heartbeats again and never comes back from any reboot; a day at most
    for (let i = 0; i < 24 * 60 * 4 && (await t.store.require(u!)).state !== 'quarantined'; i++) {
      t.clock.advance(TICK);
      await r.fleet.tick();
    }
    const target = `bmc-${u}`;
    expect(r.bmcs.calls.filter((c) => c.target === target).map((c) => c.op)).toEqual([
      'power status', // confirm
      'power status', 'power reset', // soft reset
      'bootdev pxe', 'power status', 'power cycle', // re-provision
      'mc reset cold', 'power status', 'bootdev pxe', 'power status', 'power cycle', // BMC cold reset, then re-provision
    ]);
    const node = await t.store.require(u!);
    expect(node.state).toBe('quarantined');
    const ev = (await t.store.events(u!)).filter((e) => e.actor === 'fleet').map((e) => e.reason);
    const steps = ev.filter((x) => /^(confirm:|soft reset:|next boot from PXE|BMC cold reset|rebuild attempt \d)/.test(x ?? ''));
    expect(steps).toEqual([
      expect.stringMatching(/^confirm: BMC bmc-\S+ reports the power on; waiting one more heartbeat interval \(30 s\)/),
      expect.stringMatching(/^rebuild attempt 1\/3 \(soft-reset\) after: no heartbeat/),
      expect.stringMatching(/^soft reset: power reset \(ipmi bmc-/),
      expect.stringMatching(/^rebuild attempt 2\/3 \(reprovision\) after: stuck in rebuilding/),
      expect.stringMatching(/^next boot from PXE, power cycle/),
      expect.stringMatching(/^rebuild attempt 3\/3 \(bmc-reset\) after: stuck in rebuilding/),
      expect.stringMatching(/^BMC cold reset \(mc reset cold\) of ipmi bmc-\S+: the power cycles before did not bring the node back/),
      expect.stringMatching(/^next boot from PXE, power cycle/),
    ]);
    expect(node.stateReason).toMatch(/^3 rebuild attempt\(s\) did not bring the node back/);
    expect((await r.fleet.store.rebuildsOf(u!)).map((x) => [x.attempt, x.step, x.outcome])).toEqual([
      [0, 'confirm', 'confirmed'],
      [1, 'soft-reset', 'failed'],
      [2, 'reprovision', 'failed'],
      [3, 'bmc-reset', 'failed'],
    ]);
    expect(await metric(r.registry, 'bootfarm_repair_steps_total')).toBe(4);
  }, 120_000);

  it('a profile can have its own ladder; the BMC saying "off" at confirm skips the wait', async () => {
    const [u] = await activeNodes(1, 'd1000000');
    await t.store.touch(u!, { profile: 'gpu' });
    const bmcs = createCountingBmcs();
    bmcs.power.set(`bmc-${u}`, 'off');
    const r = rig({ rebuild: { profileLadders: { gpu: ['confirm', 'reprovision'] } } }, { bmcs });
    await run(r, 60_000, [u!]);
    for (let i = 0; i < 20 && (await t.store.require(u!)).state !== 'rebuilding'; i++) {
      t.clock.advance(TICK);
      await r.fleet.tick();
    }
    const confirmRec = (await r.fleet.store.rebuildsOf(u!))[0]!;
    const rebuildRec = (await r.fleet.store.rebuildsOf(u!))[1]!;
    expect(confirmRec).toMatchObject({ step: 'confirm', outcome: 'confirmed-off' });
    expect(rebuildRec).toMatchObject({ step: 'reprovision', attempt: 1 });
    // the first step followed on the next tick, not one heartbeat interval later
    expect(rebuildRec.startedAt.getTime() - confirmRec.startedAt.getTime()).toBe(TICK);
    expect(bmcs.calls.map((c) => c.op)).toEqual(['power status', 'bootdev pxe', 'power status', 'power on']);
  }, 120_000);
});
