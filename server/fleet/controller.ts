// The fleet controller: a thin loop around decide() (decide.ts). Each tick, on the leader only:
//   check leadership and take the tick's fence (the leader epoch, leader.ts) → record liveness (fleet_control: was there a gap? a new leader? → a new observation window) → gather nodes,
//   rebuild records and BMC observations → decide() → apply every decision as a lifecycle transition or an event
//   with its reason, each re-checked against the node's current row in its transaction (check before act) →
//   judge the fleet-wide breaker → deliver due webhooks → update metrics.
// Every write runs in a transaction that checks the fence first (store/fence.ts): a replica that lost the lock and
// does not know it yet writes nothing (FencedError), steps down, and ends the tick. Leadership is checked again
// before every batch of actions and before each BMC command, so a lost lock stops the actions within one tick.
// Time comes from the injected clock and tick() can be called directly, so a test runs a day of failures in
// milliseconds; start() only adds real timers around tick().
import { Registry } from 'prom-client';
import type { DbHandle } from '../db/index.ts';
import { createNodeStore, StaleDecisionError, type NodeExpectation, type NodeRow, type NodeStore } from '../store/nodes.ts';
import { createFenceStore, FencedError, type Fence } from '../store/fence.ts';
import type { Db } from '../db/index.ts';
import type { BmcStore } from '../store/bmcs.ts';
import { TransitionError } from '../domain/lifecycle.ts';
import { systemClock, type Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import { createBmcFactory, pxeUefi, type BmcFactory } from '../bmc/index.ts';
import { createPowerPacer } from '../bmc/pacer.ts';
import { BmcError, redact, type Bmc } from '../bmc/types.ts';
import { FleetConfig, type FleetConfigInput } from './config.ts';
import { CAUSE_CLASS, decide, heartbeatAgeMs, heartbeatIntervalMs, type BmcObservation, type Decision, type FleetNode } from './decide.ts';
import { breakerVerdict } from './breaker.ts';
import { watchedSince } from '../domain/boot-trust.ts';
import type { RebootStep } from './ladder.ts';
import { createFleetStore, type FleetStore, type PeerHold } from '../store/fleet.ts';
import type { AuditIntent } from '../store/audit.ts';
import { createWebhooks, type WebhookFetch, type Webhooks } from './webhooks.ts';
import { createFleetMetrics, type FleetMetrics } from './metrics.ts';
import { createPgLeaderElector, localLeader, type LeaderElector } from './leader.ts';
import { createReplicaStore, type ReplicaPresence, type ReplicaStore } from '../store/replicas.ts';
import { newReplicaId } from './replica.ts';
import { createConsoleStore } from '../store/console.ts';

export const ACTOR = 'fleet';

export interface FleetDeps {
  db: DbHandle;
  store: NodeStore;
  bmcStore: BmcStore;
  clock?: Clock;
  config?: FleetConfigInput | FleetConfig;
  logger: Logger;
  /** the registry /metrics serves; a private one when absent */
  metrics?: Registry;
  /** BMC drivers (default: ipmitool + fetch); tests hand in counting runners */
  bmc?: BmcFactory;
  /** webhook transport */
  fetch?: WebhookFetch;
  /** default: pg advisory lock on PostgreSQL, this process on PGlite (both take a leader epoch) */
  leader?: LeaderElector;
  /** other controllers that must run on the leader only (e.g. automatic image rollback), once per tick; `fence` is
   * the tick's leader epoch, for tasks that fence their writes (store/fence.ts run) */
  leaderTasks?: { name: string; run: (now: Date, fence: Fence) => Promise<unknown>; release?: (why: string) => Promise<void> }[];
  /** this controller's identity in fleet_control and the leader epoch (default host:pid:random, new for every process) */
  instanceId?: string;
  /** this replica as the replicas table lists it (upserted every tick, leader or not); its id is the instance id */
  replica?: ReplicaPresence;
  /** real-time waits (the BMC coming back after `mc reset cold`); tests hand in an immediate one */
  sleep?: (ms: number) => Promise<void>;
}

export interface TickReport {
  leader: boolean;
  at: Date;
  decisions: Decision[];
  /** decisions that could not be applied (the node changed under us, a BMC error), one line each */
  errors: string[];
  /** decisions dropped because the node's row changed between decide and apply (check before act) */
  stale: string[];
  /** start of the current observation window: no heartbeat verdict counts time before it */
  observedSince?: Date;
  breakerOpen?: boolean;
  /** the leader epoch this tick acted under */
  epoch?: number;
  /** the tick stopped part-way: leadership was lost (the lock, or a write refused by the fence) */
  lost?: string;
}

/** Leadership went away during a tick: nothing more is done in it. */
class LostLeadership extends Error {}

/** The stores a controller write goes through: on a fenced transaction while leading, the plain ones otherwise. */
interface Writers {
  nodes: NodeStore;
  fleet: FleetStore;
  webhooks: Webhooks;
  replicas: ReplicaStore;
}

const realSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref?.());

export function createFleet({ db, store, bmcStore, clock = systemClock, config: rawConfig = {}, logger, metrics: registry = new Registry(), bmc, fetch, leader, leaderTasks = [], replica, instanceId = replica?.id ?? newReplicaId(), sleep = realSleep }: FleetDeps) {
  const config = FleetConfig.parse(rawConfig);
  const maxTickGapMs = (config.outage.maxTickGapSeconds ?? 3 * config.tickSeconds) * 1000;
  const log = logger.child({ component: 'fleet' });
  const metrics: FleetMetrics = createFleetMetrics(registry);
  const createBmc = bmc ?? createBmcFactory({ observe: metrics.observeBmc });
  // power-ons go out in waves (server/bmc/pacer.ts); the pacer is taken before the fence check, so a replica that
  // lost leadership while waiting for its turn does not switch anything on
  const powerPacer = createPowerPacer({ perSecond: config.bmc.powerOnsPerSecond, burst: config.bmc.powerOnBurst, now: () => clock.now().getTime(), sleep });
  const fleetStore: FleetStore = createFleetStore(db.db);
  const onResult = (ok: boolean) => metrics.webhookDeliveries.inc({ result: ok ? 'delivered' : 'failed' });
  const webhooks = createWebhooks({ store: fleetStore, config: config.webhooks, clock, fetch, onResult });
  const fences = createFenceStore(db.db);
  const consoleStore = createConsoleStore(db.db, { clock, maxBytes: config.console.maxBytesPerNode });
  /**
   * The node's last console lines (fleet/console.ts captured them) for its `failed` event: what the machine said
   * before it stopped answering. Best effort: an unreadable console never keeps a node from being failed.
   */
  async function consoleDetail(uuid: string): Promise<{ console?: string[] }> {
    if (!config.console.failureLines) return {};
    try {
      const lines = await consoleStore.lastLines(uuid, config.console.failureLines);
      return lines.length ? { console: lines } : {};
    } catch (e) {
      log.warn({ node: uuid, err: (e as Error).message }, 'console lines for the failure event not read');
      return {};
    }
  }
  /** a replica that does not lead (any more) lets go of what only the leader holds (console sessions) */
  let releasedLead = true;
  function releaseLeaderTasks(why: string): void {
    if (releasedLead) return;
    releasedLead = true;
    for (const t of leaderTasks) void t.release?.(why).catch((e: Error) => log.warn({ task: t.name, err: e.message }, 'leader task not released'));
  }
  const replicaStore = createReplicaStore(db.db);
  const goneAfterMs = config.replicas.missedTicks * config.tickSeconds * 1000;
  const plain: Writers = { nodes: store, fleet: fleetStore, webhooks, replicas: replicaStore };
  const writersOn = (tx: Db): Writers => {
    const fleetTx = createFleetStore(tx);
    return { nodes: createNodeStore(tx, { clock }), fleet: fleetTx, webhooks: createWebhooks({ store: fleetTx, config: config.webhooks, clock, fetch, onResult }), replicas: createReplicaStore(tx) };
  };

  /** this replica is alive (every tick, leader or not); a database hiccup here must not stop the tick */
  async function presence(leader: boolean): Promise<void> {
    if (!replica) return;
    try {
      await replicaStore.upsert(replica, { now: clock.now(), leader });
    } catch (e) {
      log.warn({ err: (e as Error).message }, 'replica presence not recorded');
    }
  }
  /**
   * Peers silent past missedTicks but within the hold (config.replicas.silenceHoldSeconds): while there are any,
   * no heartbeat is judged (the store restarts the observation window at every such tick). Announced once per
   * newly silent replica. A read error holds too: the leader cannot tell whether its peers are well.
   */
  const holdMs = config.replicas.silenceHoldSeconds * 1000;
  let heldFor = new Set<string>();
  async function peerHold(now: Date): Promise<PeerHold | null> {
    let rows: Awaited<ReturnType<ReplicaStore['list']>>;
    try {
      rows = await replicaStore.list();
    } catch (e) {
      log.warn({ err: (e as Error).message }, 'replica presence unreadable: no heartbeat verdicts this tick');
      return { silent: [{ id: 'unknown', silentMs: 0 }], holdMs, announce: false };
    }
    const silent = rows
      .filter((r) => r.id !== instanceId)
      .map((r) => ({ id: r.id, silentMs: now.getTime() - r.lastSeen.getTime() }))
      .filter((p) => p.silentMs > goneAfterMs && p.silentMs <= goneAfterMs + holdMs);
    const ids = new Set(silent.map((p) => p.id));
    const announce = silent.some((p) => !heldFor.has(p.id));
    heldFor = ids;
    metrics.peerHold.set(silent.length);
    if (!silent.length) return null;
    if (announce) log.warn({ silent }, 'peer replicas stopped reporting: no heartbeat verdicts until they are back or the hold has passed');
    return { silent, holdMs, announce };
  }
  const observations = new Map<string, BmcObservation>();
  /** last BMC error recorded as an event per node, so an unreachable BMC is one event, not one per poll */
  const bmcErrorShown = new Map<string, string>();
  /** last deferral recorded per node (same reason: no new event) */
  const waitShown = new Map<string, string>();

  let elector: LeaderElector | undefined = leader;
  let electing: Promise<LeaderElector> | null = null;
  function getElector(): Promise<LeaderElector> {
    if (elector) return Promise.resolve(elector);
    electing ??= (async () => {
      const onChange = (v: boolean, f: { epoch: number } | null) => metrics.setLeader(v, f?.epoch);
      elector =
        db.kind === 'postgres' && db.url
          ? await createPgLeaderElector({ url: db.url, lockKey: config.leader.lockKey, holder: instanceId, checkSeconds: config.leader.checkSeconds, clock, logger: log, onChange })
          : localLeader({ db: db.db, holder: instanceId, clock });
      return elector;
    })().finally(() => (electing = null));
    return electing;
  }

  /** a write refused by the fence: this replica is not the leader any more */
  function fenced(e: FencedError): never {
    elector?.stepDown(e.message);
    releaseLeaderTasks(`fenced: ${e.message}`);
    metrics.setLeader(false);
    log.warn({ err: e.message }, 'fleet write refused by the leader epoch: stepping down');
    throw e;
  }

  /**
   * Runs fn on writers whose every write commits only while `fence` is the current leader epoch (one transaction,
   * checked first). Without a fence (an operator's request on any replica) the plain stores.
   */
  async function fx<T>(fence: Fence | null, fn: (w: Writers) => Promise<T>, opts: { lock?: 'share' | 'update' } = {}): Promise<T> {
    if (!fence) return fn(plain);
    try {
      return await fences.run(fence, (tx) => fn(writersOn(tx)), opts);
    } catch (e) {
      if (e instanceof FencedError) fenced(e);
      throw e;
    }
  }

  /** a lifecycle transition through the node store (its own transaction, row lock, check before act) under the fence */
  async function transitionAs(fence: Fence | null, ...[uuid, event, actor, data, opts = {}]: Parameters<NodeStore['transition']>): Promise<NodeRow> {
    try {
      return await store.transition(uuid, event, actor, data, fence ? { ...opts, guard: fences.guard(fence) } : opts);
    } catch (e) {
      if (e instanceof FencedError) fenced(e);
      throw e;
    }
  }

  /** before a side effect outside the database (a BMC command): is the fence still current? */
  async function assertFence(fence: Fence | null): Promise<void> {
    if (!fence) return;
    try {
      await fences.assert(fence);
    } catch (e) {
      if (e instanceof FencedError) fenced(e);
      throw e;
    }
  }

  const view = (n: NodeRow, withBmc: Set<string>): FleetNode => ({ uuid: n.uuid, state: n.state, stateSince: n.stateSince, stateReason: n.stateReason, labels: n.labels ?? {}, profile: n.profile, lastHeartbeat: n.lastHeartbeat, rebuildAttempts: n.rebuildAttempts, hasBmc: withBmc.has(n.uuid) });

  async function bmcEvent(fence: Fence | null, uuid: string, err: unknown, password?: string): Promise<string> {
    const msg = redact(err instanceof BmcError ? err.message : `BMC error: ${(err as Error)?.message ?? String(err)}`, [password]);
    if (bmcErrorShown.get(uuid) !== msg) {
      bmcErrorShown.set(uuid, msg);
      await fx(fence, (w) => w.nodes.addEvent(uuid, { kind: 'bmc', reason: msg, actor: ACTOR, data: err instanceof BmcError ? { kind: err.kind, operation: err.operation, target: err.target } : null }));
    }
    log.warn({ node: uuid, err: msg }, 'BMC call failed');
    return msg;
  }

  /** power state (and health) of active nodes, at most every pollSeconds each, `parallel` at a time */
  async function pollBmcs(fence: Fence, nodes: FleetNode[], now: Date): Promise<void> {
    if (!config.bmc.poll) return;
    const due = nodes.filter((n) => n.state === 'active' && n.hasBmc && now.getTime() - (observations.get(n.uuid)?.at.getTime() ?? 0) >= config.bmc.pollSeconds * 1000);
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < due.length; i = next++) {
        const n = due[i]!;
        const creds = await bmcStore.getCredentials(n.uuid).catch(() => null);
        if (!creds) continue;
        try {
          const b = createBmc(creds);
          const power = await b.powerStatus();
          const health = await b.health().catch(() => undefined);
          observations.set(n.uuid, { at: now, power, health });
          if (bmcErrorShown.delete(n.uuid)) await fx(fence, (w) => w.nodes.addEvent(n.uuid, { kind: 'bmc', reason: `BMC ${b.target} answers again`, actor: ACTOR }));
        } catch (e) {
          if (e instanceof FencedError) throw e;
          const msg = await bmcEvent(fence, n.uuid, e, creds.password);
          observations.set(n.uuid, { at: now, error: { kind: e instanceof BmcError ? e.kind : 'failed', message: msg } });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(config.bmc.parallel, due.length) }, worker));
  }

  /**
   * One rebuild attempt, one rung of the ladder (ladder.ts): lifecycle → rebuilding (counts the attempt; with
   * `expect`, only if the node's row is still what the decision saw), a rebuild record, then the BMC:
   *   soft-reset   warm reset, or power on if it is off
   *   reprovision  next boot from PXE, power cycle (power on if it is off)
   *   bmc-reset    mc reset cold, wait for the BMC to answer again, then reprovision
   * A BMC error is an event and fails the attempt (cause 'bmc') — the node goes back to failed and the backoff /
   * quarantine rules take it from there. Never throws for a BMC problem.
   */
  async function runRebuild(fence: Fence | null, uuid: string, d: { attempt?: number; step?: RebootStep; rack: string | null; failedAt: Date; reason: string; expect?: NodeExpectation; audit?: AuditIntent }, actor: string): Promise<NodeRow> {
    const step = d.step ?? 'reprovision';
    const node = await transitionAs(fence, uuid, { type: 'rebuild', reason: d.reason }, actor, { attempt: d.attempt, step }, { expect: d.expect, audit: d.audit });
    const id = await fx(fence, (w) => w.fleet.startRebuild({ nodeUuid: uuid, attempt: node.rebuildAttempts, rack: d.rack, failedAt: d.failedAt, startedAt: node.stateSince, reason: d.reason, step }));
    const now = clock.now();
    const attempt = node.rebuildAttempts;
    metrics.rebuildsStarted.inc();
    metrics.ladderSteps.inc({ step });
    const creds = await bmcStore.getCredentials(uuid).catch((e) => {
      log.error({ node: uuid, err: (e as Error).message }, 'cannot read BMC credentials');
      return null;
    });
    let failure: string | undefined;
    if (!creds) failure = 'no usable BMC credentials: cannot set the boot device or cycle the power';
    else {
      try {
        const b = createBmc(creds);
        if (step === 'soft-reset') {
          const action = (await b.powerStatus()) === 'on' ? 'reset' : 'on';
          await powerPacer.take();
          await assertFence(fence);
          await b.power(action);
          await fx(fence, (w) => w.nodes.addEvent(uuid, { kind: 'bmc', reason: `soft reset: power ${action} (${b.driver} ${b.target})`, actor, data: { attempt, step, power: action } }));
        } else {
          if (step === 'bmc-reset') {
            await assertFence(fence);
            await b.mcResetCold();
            await fx(fence, (w) => w.nodes.addEvent(uuid, { kind: 'bmc', reason: `BMC cold reset (mc reset cold) of ${b.driver} ${b.target}: the power cycles before did not bring the node back`, actor, data: { attempt, step } }));
            await waitForBmc(b);
          }
          await reprovision(fence, uuid, b, actor, { attempt, step }, pxeUefi(creds.options, node.bootPlatform));
        }
        bmcErrorShown.delete(uuid);
      } catch (e) {
        if (e instanceof FencedError) throw e;
        failure = await bmcEvent(fence, uuid, e, creds.password);
      }
    }
    if (failure === undefined) {
      log.info({ node: uuid, attempt, step }, 'rebuild started');
      return node;
    }
    await fx(fence, (w) => w.fleet.finishRebuild(id, 'failed', failure, now));
    const failed = await transitionAs(fence, uuid, { type: 'fail', reason: `rebuild attempt ${attempt} failed: ${failure}` }, actor, { attempt, step, cause: 'bmc', causeClass: CAUSE_CLASS.bmc, ...(await consoleDetail(uuid)) });
    metrics.rebuildsFailed.inc();
    return failed;
  }

  async function reprovision(fence: Fence | null, uuid: string, b: Bmc, actor: string, data: Record<string, unknown>, uefi: boolean | undefined): Promise<void> {
    await assertFence(fence);
    await b.setBootDevice('pxe', uefi === undefined ? {} : { uefi });
    const power = await b.powerStatus();
    const action = power === 'on' ? 'cycle' : 'on';
    await powerPacer.take();
    await assertFence(fence);
    await b.power(action);
    await fx(fence, (w) => w.nodes.addEvent(uuid, { kind: 'bmc', reason: `next boot from PXE, power ${action} (${b.driver} ${b.target})`, actor, data: { ...data, bootdev: 'pxe', uefi: uefi ?? null, power: action } }));
  }

  /** After mc reset cold the BMC drops off for a while: ask its power state every 5 s until it answers, bounded. */
  async function waitForBmc(b: Bmc): Promise<void> {
    const tries = Math.max(1, Math.ceil(config.rebuild.bmcResetWaitSeconds / 5));
    let last: unknown;
    for (let i = 0; i < tries; i++) {
      await sleep(5000);
      try {
        await b.powerStatus();
        return;
      } catch (e) {
        last = e;
      }
    }
    throw last;
  }

  /** The ladder's first look: is the node's power on? Recorded as attempt 0; decide() waits one more interval. */
  async function confirm(fence: Fence, d: Extract<Decision, { type: 'confirm' }>, now: Date): Promise<void> {
    // check before act: a confirm is a BMC read, not a transition, so compare with the current row here
    const row = await store.get(d.uuid);
    if (!row || row.state !== d.expect.state || row.stateSince.getTime() !== d.expect.stateSince.getTime()) throw new StaleDecisionError(d.uuid, 'state', d.expect.state, row?.state ?? null);
    const creds = await bmcStore.getCredentials(d.uuid).catch(() => null);
    let outcome: 'confirmed' | 'confirmed-off' = 'confirmed';
    let what: string;
    if (!creds) what = 'no usable BMC credentials';
    else {
      try {
        const b = createBmc(creds);
        const power = await b.powerStatus();
        if (power === 'off') outcome = 'confirmed-off';
        what = `BMC ${b.target} reports the power ${power}`;
      } catch (e) {
        what = await bmcEvent(fence, d.uuid, e, creds.password);
      }
    }
    const interval = heartbeatIntervalMs({ profile: row.profile }, config);
    const next = outcome === 'confirmed-off' ? 'the first repair step is due now' : `waiting one more heartbeat interval (${Math.round(interval / 1000)} s) for the node to report before the first repair step`;
    await fx(fence, async (w) => {
      await w.fleet.recordConfirm({ nodeUuid: d.uuid, failedAt: d.failedAt, at: now, outcome, reason: what });
      await w.nodes.addEvent(d.uuid, { kind: 'fleet', reason: `confirm: ${what}; ${next}`, actor: ACTOR, data: { step: 'confirm', outcome } });
    });
    metrics.ladderSteps.inc({ step: 'confirm' });
  }

  async function apply(fence: Fence, d: Decision, nodesByUuid: Map<string, FleetNode>, now: Date, ctx: { observedSince: Date | null; breakerOpen: boolean }): Promise<void> {
    switch (d.type) {
      case 'close-rebuild': {
        const n = nodesByUuid.get(d.uuid);
        const ttr = ((n?.stateSince ?? now).getTime() - d.failedAt.getTime()) / 1000;
        const closed = await fx(fence, async (w) => {
          if (!(await w.fleet.finishRebuild(d.id, d.outcome, d.reason, now))) return false;
          if (d.outcome === 'succeeded') {
            await w.nodes.addEvent(d.uuid, { kind: 'fleet', reason: `rebuilt: active again ${Math.round(ttr)} s after the failure`, actor: ACTOR, data: { rebuild: d.id, timeToRecoverSeconds: ttr } });
            await w.webhooks.emit({ event: 'rebuilt', node: { uuid: d.uuid, state: n?.state, labels: n?.labels }, reason: d.reason, data: { timeToRecoverSeconds: ttr } });
          } else if (n) await w.nodes.addEvent(d.uuid, { kind: 'fleet', reason: `rebuild ${d.outcome}: ${d.reason}`, actor: ACTOR, data: { rebuild: d.id } });
          return true;
        });
        if (!closed) return;
        if (d.outcome === 'succeeded') {
          metrics.rebuildsSucceeded.inc();
          metrics.timeToRecover.observe(ttr);
        } else if (d.outcome === 'failed') metrics.rebuildsFailed.inc();
        return;
      }
      case 'fail': {
        // cause + causeClass let the image rollback gate count only failures the image could have caused
        const row = await transitionAs(fence, d.uuid, { type: 'fail', reason: d.reason }, ACTOR, { cause: d.cause, causeClass: CAUSE_CLASS[d.cause], observedSince: ctx.observedSince?.toISOString() ?? null, breakerOpen: ctx.breakerOpen, ...(await consoleDetail(d.uuid)) }, { expect: d.expect });
        await fx(fence, (w) => w.webhooks.emit({ event: 'failed', node: { uuid: d.uuid, state: row.state, labels: row.labels }, reason: d.reason, data: { cause: d.cause } }));
        metrics.failures.inc({ cause: d.cause });
        log.warn({ node: d.uuid, cause: d.cause, reason: d.reason }, 'node failed');
        return;
      }
      case 'confirm':
        await confirm(fence, d, now);
        return;
      case 'quarantine': {
        const row = await transitionAs(fence, d.uuid, { type: 'quarantine', reason: d.reason }, ACTOR, { ladder: 'end' }, { expect: d.expect });
        await fx(fence, (w) => w.webhooks.emit({ event: 'quarantined', node: { uuid: d.uuid, state: row.state, labels: row.labels }, reason: d.reason }));
        metrics.quarantined.inc();
        log.warn({ node: d.uuid, reason: d.reason }, 'node quarantined');
        return;
      }
      case 'rebuild':
        waitShown.delete(d.uuid);
        await runRebuild(fence, d.uuid, d, ACTOR);
        return;
      case 'wait': {
        // one event per distinct kind of deferral, not one per tick
        const key = d.reason.replace(/\d{4}-\d\d-\d\dT[\d:.]+Z|\d+/g, '#');
        if (waitShown.get(d.uuid) === key) return;
        await fx(fence, (w) => w.nodes.addEvent(d.uuid, { kind: 'fleet', reason: `rebuild deferred: ${d.reason}`, actor: ACTOR, data: d.until ? { until: d.until.toISOString() } : null }));
        waitShown.set(d.uuid, key);
        return;
      }
    }
  }

  const ORDER: Record<Decision['type'], number> = { 'close-rebuild': 0, fail: 1, quarantine: 2, confirm: 3, rebuild: 4, wait: 5 };
  const REMEDIATION: ReadonlySet<Decision['type']> = new Set(['quarantine', 'confirm', 'rebuild']);

  /** After this tick's failures: does the fleet-wide breaker trip? Opens it (once, for every replica) if so. */
  async function judgeBreaker(fence: Fence, now: Date): Promise<boolean> {
    const b = await fleetStore.breaker();
    if (b.open) return true;
    if (!config.breaker.enabled) return false;
    const windowStart = now.getTime() - config.breaker.windowSeconds * 1000;
    // failures before a resume were seen by the person who resumed: they do not count again
    const since = new Date(Math.max(windowStart, b.resumedAt?.getTime() ?? 0));
    const trip = breakerVerdict(await fleetStore.breakerInputs({ since, rackLabel: config.rebuild.rackLabel, actor: ACTOR }), config);
    if (!trip) return false;
    const data = { scope: trip.scope, failures: trip.failures, population: trip.population, share: trip.share, threshold: config.breaker.share, windowSeconds: config.breaker.windowSeconds };
    const opened = await fx(
      fence,
      async (w) => {
        if (!(await w.fleet.openBreaker({ at: now, reason: trip.reason, data, actor: ACTOR }))) return false;
        await w.webhooks.emit({ event: 'breaker-open', reason: trip.reason, data });
        return true;
      },
      { lock: 'update' },
    );
    if (opened) {
      metrics.breakerTrips.inc();
      log.error({ ...data }, `fleet circuit breaker open: ${trip.reason}`);
    }
    return true;
  }

  async function tickOnce(): Promise<TickReport> {
    const at = clock.now();
    const elector = await getElector();
    const isLeader = await elector.check();
    const fence = elector.fence();
    metrics.setLeader(isLeader && !!fence, fence?.epoch);
    await presence(isLeader && !!fence);
    if (!isLeader || !fence) {
      releaseLeaderTasks('not the leader');
      return { leader: false, at, decisions: [], errors: [], stale: [] };
    }
    releasedLead = false;
    const errors: string[] = [];
    const stale: string[] = [];
    const decisions: Decision[] = [];
    try {
      return await leadTick(elector, fence, at, decisions, errors, stale);
    } catch (e) {
      if (!(e instanceof LostLeadership || e instanceof FencedError)) throw e;
      log.warn({ epoch: fence.epoch, err: (e as Error).message }, 'fleet tick stopped: leadership lost');
      releaseLeaderTasks((e as Error).message);
      metrics.setLeader(false);
      return { leader: false, at, decisions, errors, stale, epoch: fence.epoch, lost: (e as Error).message };
    }
  }

  /** The leader's tick under one fence. Throws LostLeadership / FencedError as soon as the fence is gone. */
  async function leadTick(elector: LeaderElector, fence: Fence, at: Date, decisions: Decision[], errors: string[], stale: string[]): Promise<TickReport> {
    /** before every batch of actions: still the leader, under the same epoch? */
    const guard = async (what: string) => {
      if (!(await elector.check()) || elector.fence()?.epoch !== fence.epoch) throw new LostLeadership(`leadership (epoch ${fence.epoch}) lost before ${what}`);
    };
    const hold = await peerHold(at);
    const live = await fx(fence, (w) => w.fleet.beginTick({ leaderId: instanceId, now: at, maxGapMs: maxTickGapMs, hold }), { lock: 'update' });
    // a peer hold restarts the window at every tick it lasts; peerHold() logged it once when it began
    if (live.restarted && live.restarted.why !== 'peer') log.warn({ why: live.restarted.why, gapMs: live.restarted.gapMs, previousLeader: live.restarted.previousLeader, observedSince: live.observedSince }, 'fleet observation window restarts: no heartbeat verdict before one full interval × missed has passed');
    let breakerOpen = (await fleetStore.breaker()).open;
    const [rows, bmcs, rebuilds] = await Promise.all([store.list({ limit: 1_000_000 }), bmcStore.list(), fleetStore.rebuildRecords()]);
    const withBmc = new Set(bmcs.map((b) => b.nodeUuid));
    const nodes = rows.map((r) => view(r, withBmc));
    const byUuid = new Map(nodes.map((n) => [n.uuid, n]));
    for (const n of nodes) if (n.state === 'active') metrics.heartbeatAge.observe(heartbeatAgeMs(n, at) / 1000);
    await pollBmcs(fence, nodes, at);

    decisions.push(...decide({ nodes, rebuilds, observations, now: at, config, observedSince: live.observedSince, breakerOpen }));
    let lost: FencedError | undefined;
    const apply1 = async (d: Decision) => {
      if (lost) return;
      try {
        await apply(fence, d, byUuid, at, { observedSince: live.observedSince, breakerOpen });
      } catch (e) {
        if (e instanceof FencedError) {
          lost = e;
          return;
        }
        if (e instanceof StaleDecisionError) {
          // the node moved on since the snapshot (a heartbeat, an operator, another replica): next tick decides again
          stale.push(`${d.type} ${d.uuid}: ${e.message}`);
          log.debug({ node: d.uuid, decision: d.type, err: e.message }, 'stale fleet decision dropped');
          return;
        }
        // the node moved on between read and write (an agent report, an operator): next tick decides again
        const msg = e instanceof TransitionError ? `${d.type} ${d.uuid}: ${e.message}` : `${d.type} ${d.uuid}: ${(e as Error).message}`;
        errors.push(msg);
        log[e instanceof TransitionError ? 'info' : 'error']({ node: d.uuid, decision: d.type, err: msg }, 'fleet decision not applied');
      }
    };
    const batch = async (what: string, list: Decision[], parallel = false) => {
      if (!list.length) return;
      await guard(what);
      if (parallel) await Promise.all(list.map(apply1));
      else for (const d of list) await apply1(d);
      if (lost) throw lost;
    };
    const sorted = [...decisions].sort((a, b) => ORDER[a.type] - ORDER[b.type]);
    await batch('closing rebuilds and failing nodes', sorted.filter((x) => x.type === 'close-rebuild' || x.type === 'fail'));
    // the failures of this tick may be the ones that show a shared outage: judge before any remediation
    if (!breakerOpen && sorted.some((d) => d.type === 'fail')) breakerOpen = await judgeBreaker(fence, at);
    let rest: Decision[] = sorted.filter((x) => x.type !== 'close-rebuild' && x.type !== 'fail');
    if (breakerOpen) {
      const held = new Set(rest.filter((d) => REMEDIATION.has(d.type)).map((d) => d.uuid));
      rest = [...rest.filter((d) => !REMEDIATION.has(d.type)), ...[...held].map((uuid): Decision => ({ type: 'wait', uuid, reason: 'circuit breaker open: automatic repair stopped until an operator resumes it (bootfarm fleet resume)' }))];
    }
    await batch('quarantines and deferrals', rest.filter((x) => x.type !== 'rebuild' && x.type !== 'confirm'));
    // confirms and rebuilds drive BMCs: run them side by side (decide() already applied the concurrency limits)
    await batch('BMC confirms and rebuilds', rest.filter((x) => x.type === 'rebuild' || x.type === 'confirm'), true);

    await guard('webhook delivery');
    try {
      await webhooks.deliver({ webhookResult: (id, r) => fx(fence, (w) => w.fleet.webhookResult(id, r)) });
    } catch (e) {
      if (e instanceof FencedError) throw e;
      log.error({ err: (e as Error).message }, 'webhook delivery failed');
    }
    for (const task of leaderTasks) {
      await guard(task.name);
      try {
        await task.run(at, fence);
      } catch (e) {
        // a task's write refused by the fence: this replica does not lead any more
        if (e instanceof FencedError) fenced(e);
        errors.push(`${task.name}: ${(e as Error).message}`);
        log.error({ task: task.name, err: (e as Error).message }, 'leader task failed');
      }
    }
    metrics.setNodeCounts(await store.countByState());
    metrics.breakerOpen.set(breakerOpen ? 1 : 0);
    await fx(
      fence,
      async (w) => {
        await w.fleet.endTick({ leaderId: instanceId, now: clock.now() });
        await w.replicas.prune(new Date(clock.now().getTime() - config.replicas.forgetSeconds * 1000));
      },
      { lock: 'update' },
    );
    return { leader: true, at, decisions, errors, stale, observedSince: live.observedSince ?? undefined, breakerOpen, epoch: fence.epoch };
  }

  let current: Promise<TickReport> | null = null;
  const timers: NodeJS.Timeout[] = [];
  let stopped = false;

  let watched: { at: number; value: Promise<Date> } | null = null;
  const fleet = {
    /** this replica's BMC power-on pacer: the power API shares it (main wraps its BMC factory with pacedBmcFactory) */
    powerPacer,
    config,
    metrics,
    registry,
    store: fleetStore,
    /** one pass of every controller; concurrent calls share the pass in progress */
    tick(): Promise<TickReport> {
      current ??= tickOnce().finally(() => (current = null));
      return current;
    },
    isLeader: () => elector?.isLeader() ?? false,
    /** the leader epoch this replica holds (null while it does not lead) */
    fence: () => elector?.fence() ?? null,
    instanceId,
    /** presence of every replica (GET /api/v1/cluster), and after how long without an upsert one is gone */
    replicas: replicaStore,
    goneAfterMs,
    /** the fleet-wide circuit breaker as stored (every replica sees the same) */
    breaker: () => fleetStore.breaker(),
    /**
     * Since when the control plane has been watching heartbeats without a gap (server/domain/boot-trust.ts
     * watchedSince): /ipxe counts a node's silence only from here. Read from fleet_control (every replica sees the
     * leader's window), cached for two seconds so a boot storm costs one query per replica per two seconds.
     */
    watchedSince(): Promise<Date> {
      const now = clock.now();
      if (watched && now.getTime() - watched.at < 2000) return watched.value;
      const value = fleetStore.liveness().then((l) => watchedSince(l, now, maxTickGapMs));
      watched = { at: now.getTime(), value };
      value.catch(() => (watched = null));
      return value;
    },
    /** an operator resumes automatic repair (audited in fleet_events); null if the breaker was not open */
    async resume(actor: string, reason: string, audit?: AuditIntent) {
      const b = await fleetStore.resumeBreaker({ at: clock.now(), actor, reason, audit });
      if (b) {
        metrics.breakerOpen.set(0);
        log.warn({ actor, reason }, 'fleet circuit breaker resumed by an operator');
        await webhooks.emit({ event: 'breaker-resumed', reason, data: { actor } });
      }
      return b;
    },
    /** operator-requested rebuild (admin API): no concurrency limit, the person decided */
    async rebuild(uuid: string, reason: string, actor: string, audit?: AuditIntent): Promise<NodeRow> {
      const n = await store.require(uuid);
      const failedAt = n.state === 'failed' ? n.stateSince : clock.now();
      return runRebuild(null, uuid, { rack: n.labels?.[config.rebuild.rackLabel] ?? null, failedAt, reason, audit }, actor);
    },
    start(): void {
      if (timers.length) return;
      stopped = false;
      if (!config.enabled) {
        // no controllers here, but the replica still shows in the cluster
        timers.push(setInterval(() => void presence(false), config.tickSeconds * 1000));
        timers[0]!.unref();
        void presence(false);
        return;
      }
      const run = () => {
        if (stopped) return;
        fleet.tick().catch((e) => log.error({ err: (e as Error).message }, 'fleet tick failed'));
      };
      // a follower checks the lock more often than it ticks, so it takes over soon after a leader dies
      timers.push(setInterval(() => void getElector().then((e) => e.check()).catch(() => undefined), config.leader.checkSeconds * 1000));
      timers.push(setInterval(run, config.tickSeconds * 1000));
      for (const t of timers) t.unref();
      run();
    },
    async stop(): Promise<void> {
      stopped = true;
      for (const t of timers.splice(0)) clearInterval(t);
      await current?.catch(() => undefined);
      releasedLead = false;
      await Promise.all(leaderTasks.map((t) => t.release?.('shutting down').catch(() => undefined)));
      await elector?.stop();
      // leave the cluster view, so the leader does not hold heartbeat verdicts for a replica that stopped cleanly
      if (replica) await replicaStore.remove(replica.id).catch((e: Error) => log.warn({ err: e.message }, 'replica presence not removed'));
    },
  };
  return fleet;
}

export type Fleet = ReturnType<typeof createFleet>;
