// Fleet health and remediation decisions as pure functions over (nodes, rebuild records, BMC observations,
// now, config). No I/O, no clock: the controller (controller.ts) gathers the inputs, calls decide(), and
// applies each decision as a lifecycle transition with its reason, so tests can run a day of failures by
// moving `now`.
//
// The repair loop (ARCHITECTURE.md "Node lifecycle", docs/self-repair.md):
//   active ──(missed heartbeats | BMC says off | BMC critical)──▶ failed
//   inspecting/firmware-updating/ready/provisioning/rebuilding ──(phase timeout)──▶ failed
//   failed ──(heartbeat from the running node: server/fleet/heartbeat.ts)──▶ active
//   failed ──confirm (ask the BMC, wait one more interval)──▶ ladder step n of attempt n ≤ N, after backoff,
//            under the concurrency limits ──▶ rebuilding (soft reset | bootdev pxe + cycle | mc reset cold + …)
//   failed with N attempts spent ──▶ quarantined (a person decides)
// maintenance, quarantined, retired and discovered nodes are never touched.
//
// Outage awareness (issue 12 §1): every age is measured from the start of the control plane's current observation
// window at the earliest (`observedSince`), so time in which the server, its timers or its database were away
// never counts as a missed heartbeat. While the fleet-wide breaker is open no remediation is decided at all.
import type { NodeState } from '../contract/lifecycle.ts';
import { backoffDelay } from '../contract/backoff.ts';
import type { BmcHealth, PowerState } from '../bmc/types.ts';
import type { FleetConfig } from './config.ts';
import type { RebuildRecord } from '../domain/rebuild.ts';
import { ladderFor, stepOfAttempt, type LadderStep } from './ladder.ts';

export interface FleetNode {
  uuid: string;
  state: NodeState | string;
  stateSince: Date;
  stateReason: string | null;
  labels: Record<string, string>;
  profile: string | null;
  lastHeartbeat: Date | null;
  rebuildAttempts: number;
  hasBmc: boolean;
}

export type { RebuildRecord };

export interface BmcObservation {
  at: Date;
  power?: PowerState;
  health?: BmcHealth;
  error?: { kind: string; message: string };
}

/**
 * Why a node was failed; the `cause` of every `fail` transition's event data (imgsafe's rollback gate filters on
 * it). heartbeat / timeout: the node did not report (could be the node or its image); power-off: its BMC says the
 * power is off; bmc-health: its BMC reports critical hardware health; bmc: a repair step could not drive the BMC.
 */
export type FailCause = 'heartbeat' | 'timeout' | 'power-off' | 'bmc-health' | 'bmc';
/** What kind of thing a cause points at: the node's software (node), its power, or its BMC. */
export const CAUSE_CLASS: Record<FailCause, 'node' | 'power' | 'bmc'> = { heartbeat: 'node', timeout: 'node', 'power-off': 'power', 'bmc-health': 'bmc', bmc: 'bmc' };

/** What a decision assumed of the node's row; the store re-checks it under the row lock (check before act). */
export interface Expectation {
  state: string;
  stateSince: Date;
  rebuildAttempts?: number;
  lastHeartbeat?: Date | null;
}

export type Decision =
  | { type: 'fail'; uuid: string; cause: FailCause; reason: string; expect: Expectation }
  /** the ladder's first look: BMC power status; the first reboot step waits one more heartbeat interval */
  | { type: 'confirm'; uuid: string; failedAt: Date; reason: string; expect: Expectation }
  | { type: 'rebuild'; uuid: string; attempt: number; step: Exclude<LadderStep, 'confirm'>; rack: string | null; failedAt: Date; reason: string; expect: Expectation }
  | { type: 'quarantine'; uuid: string; reason: string; expect: Expectation }
  /** a rebuild that is due but held back (backoff, concurrency); not applied, only logged */
  | { type: 'wait'; uuid: string; reason: string; until?: Date }
  /** a running rebuild record whose node has moved on */
  | { type: 'close-rebuild'; id: number; uuid: string; outcome: 'succeeded' | 'failed' | 'abandoned'; reason: string; failedAt: Date; startedAt: Date };

export interface DecideInput {
  nodes: readonly FleetNode[];
  /** rebuild records with outcome running, plus the latest record of each node */
  rebuilds: readonly RebuildRecord[];
  observations?: ReadonlyMap<string, BmcObservation>;
  now: Date;
  config: FleetConfig;
  /** start of the control plane's current observation window (fleet_control.observed_since); absent = always watched */
  observedSince?: Date | null;
  /** the fleet-wide circuit breaker is open: decide failures, never remediation */
  breakerOpen?: boolean;
}

const TIMEOUT_OF: Partial<Record<string, keyof FleetConfig['timeouts']>> = {
  inspecting: 'inspectingSeconds',
  'firmware-updating': 'firmwareUpdatingSeconds',
  ready: 'readySeconds',
  provisioning: 'provisioningSeconds',
  rebuilding: 'rebuildingSeconds',
};

/** States the controllers never act on: an operator holds the node, it is final, or it never booted. */
export const HANDS_OFF: ReadonlySet<string> = new Set(['maintenance', 'quarantined', 'retired', 'discovered']);

export function fmtDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

export function heartbeatIntervalMs(node: Pick<FleetNode, 'profile'>, config: FleetConfig): number {
  const p = node.profile ? config.heartbeat.profiles[node.profile] : undefined;
  return (p ?? config.heartbeat.intervalSeconds) * 1000;
}

/**
 * Age of the newest sign of life of an active node: its last heartbeat, becoming active, or the start of the
 * control plane's observation window, whichever is latest. The window start is there because a heartbeat sent
 * while the server or its database was away could not be recorded: its absence proves nothing.
 */
export function heartbeatAgeMs(node: Pick<FleetNode, 'lastHeartbeat' | 'stateSince'>, now: Date, observedSince?: Date | null): number {
  const last = Math.max(node.lastHeartbeat?.getTime() ?? 0, node.stateSince.getTime(), observedSince?.getTime() ?? 0);
  return now.getTime() - last;
}

/**
 * Wait before rebuild attempt `attempt` (1-based): none before the first, then base × 2^(n−2), capped — the
 * project's one backoff (server/contract/backoff.ts), without jitter: the due time is stored and shown to operators,
 * and the fleet's concurrency limits already spread the rebuilds out.
 */
export function backoffMs(attempt: number, config: FleetConfig): number {
  if (attempt <= 1) return 0;
  const { backoffBaseSeconds: base, backoffMaxSeconds: max } = config.rebuild;
  return backoffDelay(attempt - 2, { baseMs: base * 1000, capMs: max * 1000 });
}

/** Why an unhealthy node has failed, or null if it is fine (or not ours to judge). */
export function healthVerdict(node: FleetNode, now: Date, config: FleetConfig, obs?: BmcObservation, observedSince?: Date | null): { cause: FailCause; reason: string } | null {
  if (HANDS_OFF.has(node.state)) return null;
  if (node.state === 'active') {
    const interval = heartbeatIntervalMs(node, config);
    const age = heartbeatAgeMs(node, now, observedSince);
    if (age > interval * config.heartbeat.missed) {
      return { cause: 'heartbeat', reason: `no heartbeat for ${fmtDuration(age)} (interval ${fmtDuration(interval)}, ${config.heartbeat.missed} missed)` };
    }
    // an observation older than the current state may describe the previous boot: ignore it
    if (obs && obs.at >= node.stateSince) {
      if (obs.power === 'off') return { cause: 'power-off', reason: 'node is active but its BMC reports the power off' };
      if (config.bmc.failOnCritical && obs.health?.health === 'critical') return { cause: 'bmc-health', reason: `BMC reports critical health${obs.health.detail ? ` (${obs.health.detail})` : ''}` };
    }
    return null;
  }
  const key = TIMEOUT_OF[node.state];
  if (key) {
    const limit = config.timeouts[key] * 1000;
    // a node that could not report while the control plane was away is not stuck: count only watched time
    const age = now.getTime() - Math.max(node.stateSince.getTime(), observedSince?.getTime() ?? 0);
    if (age > limit) return { cause: 'timeout', reason: `stuck in ${node.state} for ${fmtDuration(age)} (limit ${fmtDuration(limit)})` };
  }
  return null;
}

/** What happened to a running rebuild, judged from its node's current state; null while still in flight. */
export function rebuildOutcome(rec: RebuildRecord, node: FleetNode | undefined): { outcome: 'succeeded' | 'failed' | 'abandoned'; reason: string } | null {
  if (!node) return { outcome: 'abandoned', reason: 'node no longer exists' };
  // a state entered before the rebuild started is the one the rebuild began from
  const since = node.stateSince >= rec.startedAt;
  if (node.state === 'active' && since) return { outcome: 'succeeded', reason: 'node is active again' };
  if (node.state === 'failed' && since) return { outcome: 'failed', reason: node.stateReason ?? 'node failed again' };
  if (node.state === 'maintenance' || node.state === 'quarantined' || node.state === 'retired') return { outcome: 'abandoned', reason: `node is ${node.state}` };
  return null;
}

const expectOf = (n: FleetNode): Expectation => ({ state: n.state, stateSince: n.stateSince, rebuildAttempts: n.rebuildAttempts });

export function decide({ nodes, rebuilds, observations, now, config, observedSince = null, breakerOpen = false }: DecideInput): Decision[] {
  const out: Decision[] = [];
  const byUuid = new Map(nodes.map((n) => [n.uuid, n]));
  const rackOf = (n: FleetNode) => n.labels[config.rebuild.rackLabel] ?? null;

  // 1. close rebuild records whose node has moved on; the rest are in flight
  const inFlight: RebuildRecord[] = [];
  const lastByNode = new Map<string, RebuildRecord>();
  for (const r of [...rebuilds].sort((a, b) => a.id - b.id)) {
    lastByNode.set(r.nodeUuid, r);
    if (r.outcome !== 'running') continue;
    const o = rebuildOutcome(r, byUuid.get(r.nodeUuid));
    if (o) out.push({ type: 'close-rebuild', id: r.id, uuid: r.nodeUuid, ...o, failedAt: r.failedAt, startedAt: r.startedAt });
    else inFlight.push(r);
  }

  // 2. health: which nodes have failed
  for (const n of nodes) {
    const v = healthVerdict(n, now, config, observations?.get(n.uuid), observedSince);
    if (v) out.push({ type: 'fail', uuid: n.uuid, ...v, expect: { ...expectOf(n), lastHeartbeat: n.lastHeartbeat } });
  }

  // 3. remediation of failed nodes: oldest failure first, then by uuid (deterministic)
  if (!config.rebuild.enabled) return out;
  if (breakerOpen) {
    // many nodes failed together: a shared cause is likelier than many bad nodes; a person looks first
    for (const n of nodes) if (n.state === 'failed') out.push({ type: 'wait', uuid: n.uuid, reason: 'circuit breaker open: automatic repair stopped until an operator resumes it (bootfarm fleet resume)' });
    return out;
  }
  let running = inFlight.length;
  const perRack = new Map<string, number>();
  for (const r of inFlight) if (r.rack !== null) perRack.set(r.rack, (perRack.get(r.rack) ?? 0) + 1);
  const failed = nodes.filter((n) => n.state === 'failed').sort((a, b) => a.stateSince.getTime() - b.stateSince.getTime() || a.uuid.localeCompare(b.uuid));
  for (const n of failed) {
    if (n.rebuildAttempts >= config.rebuild.maxAttempts) {
      out.push({ type: 'quarantine', uuid: n.uuid, reason: `${n.rebuildAttempts} rebuild attempt(s) did not bring the node back (last failure: ${n.stateReason ?? 'unknown'})`, expect: expectOf(n) });
      continue;
    }
    if (!n.hasBmc) {
      if (config.rebuild.quarantineWithoutBmc) out.push({ type: 'quarantine', uuid: n.uuid, reason: `no BMC enrolled: the node cannot be rebuilt remotely (failure: ${n.stateReason ?? 'unknown'})`, expect: expectOf(n) });
      else out.push({ type: 'wait', uuid: n.uuid, reason: 'no BMC enrolled' });
      continue;
    }
    const ladder = ladderFor(n.profile, config);
    const attempt = n.rebuildAttempts + 1;
    let due = new Date(n.stateSince.getTime() + backoffMs(attempt, config));
    if (attempt === 1 && ladder.includes('confirm')) {
      // look before touching: one BMC read, then one more heartbeat interval for the node to speak up
      const last = lastByNode.get(n.uuid);
      const confirmed = last && last.step === 'confirm' && last.startedAt >= n.stateSince ? last : undefined;
      if (!confirmed) {
        out.push({ type: 'confirm', uuid: n.uuid, failedAt: n.stateSince, reason: `confirm before repair: ${n.stateReason ?? 'failure'}`, expect: expectOf(n) });
        continue;
      }
      // the BMC says the power is off: nothing to wait for
      due = confirmed.outcome === 'confirmed-off' ? confirmed.startedAt : new Date(confirmed.startedAt.getTime() + heartbeatIntervalMs(n, config));
      if (due > now) {
        out.push({ type: 'wait', uuid: n.uuid, reason: `confirmed (${confirmed.reason ?? 'BMC asked'}); one more heartbeat interval until ${due.toISOString()}`, until: due });
        continue;
      }
    } else if (due > now) {
      out.push({ type: 'wait', uuid: n.uuid, reason: `backoff before attempt ${attempt} until ${due.toISOString()}`, until: due });
      continue;
    }
    if (running >= config.rebuild.maxConcurrent) {
      out.push({ type: 'wait', uuid: n.uuid, reason: `${running} rebuilds in flight (limit ${config.rebuild.maxConcurrent})` });
      continue;
    }
    const rack = rackOf(n);
    if (rack !== null && (perRack.get(rack) ?? 0) >= config.rebuild.maxConcurrentPerRack) {
      out.push({ type: 'wait', uuid: n.uuid, reason: `${perRack.get(rack)} rebuilds in flight in rack ${rack} (limit ${config.rebuild.maxConcurrentPerRack})` });
      continue;
    }
    running++;
    if (rack !== null) perRack.set(rack, (perRack.get(rack) ?? 0) + 1);
    // the repair loop started when the node first failed; later attempts keep that time (time to recover)
    const last = lastByNode.get(n.uuid);
    const failedAt = n.rebuildAttempts > 0 && last ? last.failedAt : n.stateSince;
    const step = stepOfAttempt(ladder, attempt);
    out.push({ type: 'rebuild', uuid: n.uuid, attempt, step, rack, failedAt, reason: `rebuild attempt ${attempt}/${config.rebuild.maxAttempts} (${step}) after: ${n.stateReason ?? 'failure'}`, expect: expectOf(n) });
  }
  return out;
}
