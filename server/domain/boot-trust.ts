// When GET /ipxe/:uuid may open a stage-1 boot attempt (and so hand out a stage-1 token), as a pure function of
// the node's row and the clock. docs/security-model.md explains the model; in short: the request is not
// authenticated (iPXE has no HTTPS and nothing secret to present), so it may start a boot only when a boot is
// expected anyway. A running node's credential is never touched here: a refused request gets a retry script.
import type { BootAttemptsConfig } from '../config.ts';

export interface BootTrustNode {
  state: string;
  /** hash of the running boot's node credential (null: no compute OS ever reported in with one) */
  credentialHash: string | null;
  credentialIssuedAt: Date | null;
  lastHeartbeat: Date | null;
  bootExpectedAt: Date | null;
}

/**
 * Since when the control plane has been able to hear heartbeats without interruption: the start of the fleet
 * controller's observation window (fleet_control.observed_since), or now when the controller has not ticked for
 * longer than maxGapMs (the control plane or its database is down or just came back, and a new window has not
 * been written yet). A node is "gone" only after it was silent for a whole gone-interval of watched time, so
 * after an outage of the control plane nobody can open a boot attempt for a running node (and take its
 * credential through /profile) merely because its last heartbeat is old: the node gets that interval to be heard.
 */
export function watchedSince(live: { lastTickAt: Date | null; observedSince: Date | null }, now: Date, maxGapMs: number): Date {
  if (!live.lastTickAt || !live.observedSince || now.getTime() - live.lastTickAt.getTime() > maxGapMs) return now;
  return live.observedSince;
}

export type AttemptReason =
  /** the server started this boot (rebuild, power action) and waits for it */
  | 'expected'
  /** the node is not running a compute OS (discovered, inspecting, failed, rebuilding …) */
  | 'not-active'
  /** active, but it never got a node credential (e.g. it was active before credentials existed) */
  | 'no-credential'
  /** active, but silent for longer than goneAfterMissedBeats heartbeat intervals: its boot is over */
  | 'gone';

export type BootTrustDecision =
  | { open: true; reason: AttemptReason; serverStarted: boolean }
  | { open: false; why: string; retryAfterSeconds: number };

/** Whether the server is still waiting for a boot it started. */
export function bootExpected(node: Pick<BootTrustNode, 'bootExpectedAt'>, now: Date, cfg: Pick<BootAttemptsConfig, 'expectedBootSeconds'>): boolean {
  return !!node.bootExpectedAt && now.getTime() - node.bootExpectedAt.getTime() <= cfg.expectedBootSeconds * 1000;
}

/**
 * The rule, in order:
 *  1. the server started a boot and waits for it                       → open, server-started
 *  2. the node is not active                                            → open
 *  3. active without a node credential                                  → open
 *  4. active, last sign of life (heartbeat, or the credential's issue — and never earlier than `watched`, the
 *     start of the time the control plane could hear it) older than goneAfterMissedBeats × its heartbeat
 *     interval                                                          → open ("gone")
 *  5. otherwise the node is running: no attempt; retry once it could count as gone (a real node that rebooted by
 *     itself stops heartbeating, so it gets its attempt within that time).
 */
export function decideBootAttempt(node: BootTrustNode, now: Date, heartbeatIntervalSeconds: number, cfg: BootAttemptsConfig, retrySeconds: number, watched: Date | null = null): BootTrustDecision {
  if (bootExpected(node, now, cfg)) return { open: true, reason: 'expected', serverStarted: true };
  if (node.state !== 'active') return { open: true, reason: 'not-active', serverStarted: false };
  if (!node.credentialHash) return { open: true, reason: 'no-credential', serverStarted: false };
  const lastAlive = Math.max(node.lastHeartbeat?.getTime() ?? 0, node.credentialIssuedAt?.getTime() ?? 0, watched?.getTime() ?? 0);
  const goneMs = cfg.goneAfterMissedBeats * heartbeatIntervalSeconds * 1000;
  const silentMs = now.getTime() - lastAlive;
  if (silentMs > goneMs) return { open: true, reason: 'gone', serverStarted: false };
  const untilGone = Math.ceil((goneMs - silentMs) / 1000) + 1;
  return {
    open: false,
    why: `node is active and heartbeating (last ${Math.round(silentMs / 1000)} s ago); a boot attempt opens when the server starts one or after ${Math.round(goneMs / 1000)} s without a heartbeat`,
    retryAfterSeconds: Math.max(1, Math.min(retrySeconds, untilGone)),
  };
}
