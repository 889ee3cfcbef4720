// The fleet controller: a thin loop around decide() (decide.ts). Each tick, on the leader only:
//   gather nodes, rebuild records and BMC observations → decide() → apply every decision as a lifecycle
//   transition or an event with its reason → deliver due webhooks → update metrics.
// Time comes from the injected clock and tick() can be called directly, so a test runs a day of failures in
// milliseconds; start() only adds real timers around tick().
import { Registry } from 'prom-client';
import type { DbHandle } from '../db/index.ts';
import type { NodeRow, NodeStore } from '../store/nodes.ts';
import type { BmcStore } from '../store/bmcs.ts';
import { TransitionError } from '../domain/lifecycle.ts';
import { systemClock, type Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import { createBmcFactory, type BmcFactory } from '../bmc/index.ts';
import { BmcError, redact } from '../bmc/types.ts';
import { FleetConfig, type FleetConfigInput } from './config.ts';
import { decide, heartbeatAgeMs, type BmcObservation, type Decision, type FleetNode } from './decide.ts';
import { createFleetStore, type FleetStore } from '../store/fleet.ts';
import { createWebhooks, type WebhookFetch } from './webhooks.ts';
import { createFleetMetrics, type FleetMetrics } from './metrics.ts';
import { alwaysLeader, createPgLeaderElector, type LeaderElector } from './leader.ts';

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
  /** default: pg advisory lock on PostgreSQL, always-leader on PGlite */
  leader?: LeaderElector;
  /** other controllers that must run on the leader only (e.g. automatic image rollback), once per tick */
  leaderTasks?: { name: string; run: (now: Date) => Promise<unknown> }[];
}

export interface TickReport {
  leader: boolean;
  at: Date;
  decisions: Decision[];
  /** decisions that could not be applied (the node changed under us, a BMC error), one line each */
  errors: string[];
}

export function createFleet({ db, store, bmcStore, clock = systemClock, config: rawConfig = {}, logger, metrics: registry = new Registry(), bmc, fetch, leader, leaderTasks = [] }: FleetDeps) {
  const config = FleetConfig.parse(rawConfig);
  const log = logger.child({ component: 'fleet' });
  const metrics: FleetMetrics = createFleetMetrics(registry);
  const createBmc = bmc ?? createBmcFactory({ observe: metrics.observeBmc });
  const fleetStore: FleetStore = createFleetStore(db.db);
  const webhooks = createWebhooks({ store: fleetStore, config: config.webhooks, clock, fetch, onResult: (ok) => metrics.webhookDeliveries.inc({ result: ok ? 'delivered' : 'failed' }) });
  const observations = new Map<string, BmcObservation>();
  /** last BMC error recorded as an event per node, so an unreachable BMC is one event, not one per poll */
  const bmcErrorShown = new Map<string, string>();
  /** last deferral recorded per node (same reason: no new event) */
  const waitShown = new Map<string, string>();

  let elector: LeaderElector | undefined = leader;
  async function getElector(): Promise<LeaderElector> {
    if (elector) return elector;
    elector = db.kind === 'postgres' && db.url ? await createPgLeaderElector({ url: db.url, lockKey: config.leader.lockKey, logger: log, onChange: (v) => metrics.isLeader.set(v ? 1 : 0) }) : alwaysLeader();
    return elector;
  }

  const view = (n: NodeRow, withBmc: Set<string>): FleetNode => ({ uuid: n.uuid, state: n.state, stateSince: n.stateSince, stateReason: n.stateReason, labels: n.labels ?? {}, profile: n.profile, lastHeartbeat: n.lastHeartbeat, rebuildAttempts: n.rebuildAttempts, hasBmc: withBmc.has(n.uuid) });

  async function bmcEvent(uuid: string, err: unknown, password?: string): Promise<string> {
    const msg = redact(err instanceof BmcError ? err.message : `BMC error: ${(err as Error)?.message ?? String(err)}`, [password]);
    if (bmcErrorShown.get(uuid) !== msg) {
      bmcErrorShown.set(uuid, msg);
      await store.addEvent(uuid, { kind: 'bmc', reason: msg, actor: ACTOR, data: err instanceof BmcError ? { kind: err.kind, operation: err.operation, target: err.target } : null });
    }
    log.warn({ node: uuid, err: msg }, 'BMC call failed');
    return msg;
  }

  /** power state (and health) of active nodes, at most every pollSeconds each, `parallel` at a time */
  async function pollBmcs(nodes: FleetNode[], now: Date): Promise<void> {
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
          if (bmcErrorShown.delete(n.uuid)) await store.addEvent(n.uuid, { kind: 'bmc', reason: `BMC ${b.target} answers again`, actor: ACTOR });
        } catch (e) {
          const msg = await bmcEvent(n.uuid, e, creds.password);
          observations.set(n.uuid, { at: now, error: { kind: e instanceof BmcError ? e.kind : 'failed', message: msg } });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(config.bmc.parallel, due.length) }, worker));
  }

  /**
   * One rebuild attempt: lifecycle → rebuilding (counts the attempt), a rebuild record, then BMC: next boot from
   * PXE and a power cycle (power on if it is off). A BMC error is an event and fails the attempt — the node
   * goes back to failed and the backoff / quarantine rules take it from there. Never throws for a BMC problem.
   */
  async function runRebuild(uuid: string, d: { attempt?: number; rack: string | null; failedAt: Date; reason: string }, actor: string): Promise<NodeRow> {
    const node = await store.transition(uuid, { type: 'rebuild', reason: d.reason }, actor, { attempt: d.attempt });
    const now = clock.now();
    const attempt = node.rebuildAttempts;
    const id = await fleetStore.startRebuild({ nodeUuid: uuid, attempt, rack: d.rack, failedAt: d.failedAt, startedAt: node.stateSince, reason: d.reason });
    metrics.rebuildsStarted.inc();
    const creds = await bmcStore.getCredentials(uuid).catch((e) => {
      log.error({ node: uuid, err: (e as Error).message }, 'cannot read BMC credentials');
      return null;
    });
    let failure: string | undefined;
    if (!creds) failure = 'no usable BMC credentials: cannot set the boot device or cycle the power';
    else {
      try {
        const b = createBmc(creds);
        await b.setBootDevice('pxe');
        const power = await b.powerStatus();
        const action = power === 'on' ? 'cycle' : 'on';
        await b.power(action);
        bmcErrorShown.delete(uuid);
        await store.addEvent(uuid, { kind: 'bmc', reason: `next boot from PXE, power ${action} (${b.driver} ${b.target})`, actor, data: { attempt, bootdev: 'pxe', power: action } });
      } catch (e) {
        failure = await bmcEvent(uuid, e, creds.password);
      }
    }
    if (failure === undefined) {
      log.info({ node: uuid, attempt }, 'rebuild started');
      return node;
    }
    await fleetStore.finishRebuild(id, 'failed', failure, now);
    metrics.rebuildsFailed.inc();
    return store.transition(uuid, { type: 'fail', reason: `rebuild attempt ${attempt} failed: ${failure}` }, actor, { attempt });
  }

  async function apply(d: Decision, nodesByUuid: Map<string, FleetNode>, now: Date): Promise<void> {
    switch (d.type) {
      case 'close-rebuild': {
        if (!(await fleetStore.finishRebuild(d.id, d.outcome, d.reason, now))) return;
        const n = nodesByUuid.get(d.uuid);
        if (d.outcome === 'succeeded') {
          const activeAt = n?.stateSince ?? now;
          const ttr = (activeAt.getTime() - d.failedAt.getTime()) / 1000;
          metrics.rebuildsSucceeded.inc();
          metrics.timeToRecover.observe(ttr);
          await store.addEvent(d.uuid, { kind: 'fleet', reason: `rebuilt: active again ${Math.round(ttr)} s after the failure`, actor: ACTOR, data: { rebuild: d.id, timeToRecoverSeconds: ttr } });
          await webhooks.emit({ event: 'rebuilt', node: { uuid: d.uuid, state: n?.state, labels: n?.labels }, reason: d.reason, data: { timeToRecoverSeconds: ttr } });
        } else {
          if (d.outcome === 'failed') metrics.rebuildsFailed.inc();
          if (n) await store.addEvent(d.uuid, { kind: 'fleet', reason: `rebuild ${d.outcome}: ${d.reason}`, actor: ACTOR, data: { rebuild: d.id } });
        }
        return;
      }
      case 'fail': {
        const row = await store.transition(d.uuid, { type: 'fail', reason: d.reason }, ACTOR, { cause: d.cause });
        metrics.failures.inc({ cause: d.cause });
        log.warn({ node: d.uuid, cause: d.cause, reason: d.reason }, 'node failed');
        await webhooks.emit({ event: 'failed', node: { uuid: d.uuid, state: row.state, labels: row.labels }, reason: d.reason, data: { cause: d.cause } });
        return;
      }
      case 'quarantine': {
        const row = await store.transition(d.uuid, { type: 'quarantine', reason: d.reason }, ACTOR);
        metrics.quarantined.inc();
        log.warn({ node: d.uuid, reason: d.reason }, 'node quarantined');
        await webhooks.emit({ event: 'quarantined', node: { uuid: d.uuid, state: row.state, labels: row.labels }, reason: d.reason });
        return;
      }
      case 'rebuild':
        waitShown.delete(d.uuid);
        await runRebuild(d.uuid, d, ACTOR);
        return;
      case 'wait': {
        // one event per distinct kind of deferral, not one per tick
        const key = d.reason.replace(/\d{4}-\d\d-\d\dT[\d:.]+Z|\d+/g, '#');
        if (waitShown.get(d.uuid) === key) return;
        waitShown.set(d.uuid, key);
        await store.addEvent(d.uuid, { kind: 'fleet', reason: `rebuild deferred: ${d.reason}`, actor: ACTOR, data: d.until ? { until: d.until.toISOString() } : null });
        return;
      }
    }
  }

  const ORDER: Record<Decision['type'], number> = { 'close-rebuild': 0, fail: 1, quarantine: 2, rebuild: 3, wait: 4 };

  async function tickOnce(): Promise<TickReport> {
    const at = clock.now();
    const isLeader = await (await getElector()).check();
    metrics.isLeader.set(isLeader ? 1 : 0);
    if (!isLeader) return { leader: false, at, decisions: [], errors: [] };
    const [rows, bmcs, rebuilds] = await Promise.all([store.list({ limit: 1_000_000 }), bmcStore.list(), fleetStore.rebuildRecords()]);
    const withBmc = new Set(bmcs.map((b) => b.nodeUuid));
    const nodes = rows.map((r) => view(r, withBmc));
    const byUuid = new Map(nodes.map((n) => [n.uuid, n]));
    for (const n of nodes) if (n.state === 'active') metrics.heartbeatAge.observe(heartbeatAgeMs(n, at) / 1000);
    await pollBmcs(nodes, at);

    const decisions = decide({ nodes, rebuilds, observations, now: at, config });
    const errors: string[] = [];
    const apply1 = async (d: Decision) => {
      try {
        await apply(d, byUuid, at);
      } catch (e) {
        // the node moved on between read and write (an agent report, an operator): next tick decides again
        const msg = e instanceof TransitionError ? `${d.type} ${d.uuid}: ${e.message}` : `${d.type} ${d.uuid}: ${(e as Error).message}`;
        errors.push(msg);
        log[e instanceof TransitionError ? 'info' : 'error']({ node: d.uuid, decision: d.type, err: msg }, 'fleet decision not applied');
      }
    };
    const sorted = [...decisions].sort((a, b) => ORDER[a.type] - ORDER[b.type]);
    for (const d of sorted.filter((x) => x.type !== 'rebuild')) await apply1(d);
    // rebuilds drive BMCs: run them side by side (decide() already applied the concurrency limits)
    await Promise.all(sorted.filter((x) => x.type === 'rebuild').map(apply1));

    try {
      await webhooks.deliver();
    } catch (e) {
      log.error({ err: (e as Error).message }, 'webhook delivery failed');
    }
    for (const task of leaderTasks) {
      try {
        await task.run(at);
      } catch (e) {
        errors.push(`${task.name}: ${(e as Error).message}`);
        log.error({ task: task.name, err: (e as Error).message }, 'leader task failed');
      }
    }
    metrics.setNodeCounts(await store.countByState());
    return { leader: true, at, decisions, errors };
  }

  let current: Promise<TickReport> | null = null;
  const timers: NodeJS.Timeout[] = [];
  let stopped = false;

  const fleet = {
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
    /** operator-requested rebuild (admin API): no concurrency limit, the person decided */
    async rebuild(uuid: string, reason: string, actor: string): Promise<NodeRow> {
      const n = await store.require(uuid);
      const failedAt = n.state === 'failed' ? n.stateSince : clock.now();
      return runRebuild(uuid, { rack: n.labels?.[config.rebuild.rackLabel] ?? null, failedAt, reason }, actor);
    },
    start(): void {
      if (!config.enabled || timers.length) return;
      stopped = false;
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
      await elector?.stop();
    },
  };
  return fleet;
}

export type Fleet = ReturnType<typeof createFleet>;
