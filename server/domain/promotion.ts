// Promotion and rollback rules for image channels, as pure functions over figures the store computes.
// A profile follows a channel (dev → canary → prod by default); moving a channel is gated on evidence from
// the nodes that actually booted the candidate (they report kernel/initrd digests), and a channel whose
// nodes fail too often is rolled back automatically. Nothing here touches storage, time or HTTP.

/** What the fleet says about one image (kernel+initrd pair) on one image name. */
export interface DigestHealth {
  /** nodes now active on the candidate (any time) */
  active: number;
  /** boots of the candidate inside the window that reached active and have not failed by the image's fault */
  windowActive: number;
  /** boots of the candidate inside the window that failed by the image's fault (see judgeFailure) */
  windowFailed: number;
  /** nodes quarantined while on the candidate (any time) */
  quarantined: number;
  /** failures of the candidate's boots inside the window that were not counted, by why (see judgeFailure) */
  ignoredFailures?: Partial<Record<IgnoredWhy, number>>;
}

// ---- which failures an image caused (issue 12 item 6) ------------------------------------------------------------
//
// The gates and the automatic rollback judge an image by its boots: a boot is one `provision` of a node with the
// image's kernel+initrd (the provision transition records both digests), and its outcome comes from the node's
// transition events after it. A boot's failure counts against the image only when the image is the likely cause:
//
//   counted  heartbeat loss (cause "heartbeat") of a node that had become active on that boot: the image's
//            kernel and compute OS were running, then stopped answering.
//   counted  a provisioning timeout (cause "timeout" while provisioning) after the agent reported
//            "kexec-started": stage-1 had downloaded and verified the image and handed over to its kernel, which
//            then never reported in (panic, missing driver, broken initrd, no iSCSI). The same timeout before
//            kexec is stage-1's or the network's (download, image store), not this image's.
//   ignored  BMC power off or BMC critical health (cause "power-off", "bmc-health"): hardware, power or BMC.
//   ignored  fails without a cause (an operator's `fail` action, a failed rebuild attempt, which is a BMC matter)
//            and any cause not listed above, including those a later fleet controller adds (e.g. for an outage):
//            the list of counted causes is closed, so a new kind of failure never rolls an image back by itself.
//   ignored  a failure undone without a new boot (the node's next transition is back to active: it was alive,
//            the control plane had not heard it; recovery, issue 12 item 2).
//   ignored  every failure inside a fleet circuit-breaker episode, or recorded by the fleet while its breaker was
//            open (data.breakerOpen): many nodes failing together is the network, power or the control plane,
//            not an image. While the breaker is open nothing is rolled back at all.
// Outages of the control plane itself do not produce heartbeat failures (the fleet controller waits out a grace
// period after any gap, issue 12 item 1); should one slip through, it falls inside the breaker episode it trips.

/** One transition of a boot of the image, as the store reads it from the events table. */
export interface BootOutcome {
  /** id of the provision event that started the boot */
  boot: number;
  node: string;
  at: Date;
  fromState: string | null;
  toState: string;
  /** data.cause of a fail transition (heartbeat | timeout | power-off | bmc-health | …), null if none */
  cause: string | null;
  /** the agent reported kexec-started between the provision and this transition */
  kexecStarted: boolean;
  /** the node's next transition after this one (null: none yet) */
  nextState: string | null;
  /** the fleet controller recorded the fail while its circuit breaker was open (data.breakerOpen) */
  breakerOpen?: boolean;
}

/** A fleet circuit-breaker episode: from the start of the window whose failures tripped it to the resume (null: open). */
export interface BreakerSpan {
  from: Date;
  to: Date | null;
}

export type IgnoredWhy = 'breaker-open' | 'recovered' | 'before-kexec' | 'bmc-or-power' | 'not-image-cause';

export const COUNTED_CAUSES: ReadonlySet<string> = new Set(['heartbeat', 'timeout']);

export function judgeFailure(o: BootOutcome, spans: readonly BreakerSpan[] = []): { counts: true } | { counts: false; why: IgnoredWhy } {
  if (o.breakerOpen || spans.some((s) => o.at >= s.from && (s.to === null || o.at < s.to))) return { counts: false, why: 'breaker-open' };
  if (o.nextState === 'active') return { counts: false, why: 'recovered' };
  if (o.cause === 'heartbeat' && o.fromState === 'active') return { counts: true };
  if (o.cause === 'timeout' && o.fromState === 'provisioning') return o.kexecStarted ? { counts: true } : { counts: false, why: 'before-kexec' };
  if (o.cause === 'power-off' || o.cause === 'bmc-health') return { counts: false, why: 'bmc-or-power' };
  return { counts: false, why: 'not-image-cause' };
}

/** Window figures from the boots' transitions (all inside the window): one sample per boot, failed or active. */
export function windowOutcomes(outcomes: readonly BootOutcome[], spans: readonly BreakerSpan[] = []): Pick<DigestHealth, 'windowActive' | 'windowFailed' | 'ignoredFailures'> {
  const boots = new Map<number, 'active' | 'failed'>();
  const ignoredFailures: Partial<Record<IgnoredWhy, number>> = {};
  for (const o of outcomes) {
    if (o.toState === 'failed') {
      const j = judgeFailure(o, spans);
      if (j.counts) boots.set(o.boot, 'failed');
      else ignoredFailures[j.why] = (ignoredFailures[j.why] ?? 0) + 1;
    } else if (o.toState === 'active' && o.fromState === 'provisioning' && !boots.has(o.boot)) boots.set(o.boot, 'active');
  }
  let windowActive = 0;
  let windowFailed = 0;
  for (const v of boots.values()) v === 'failed' ? windowFailed++ : windowActive++;
  return { windowActive, windowFailed, ignoredFailures };
}

export interface PromotionGates {
  /** at least this many nodes reached active on the candidate */
  minActiveNodes: number;
  /** active / (active + failed) inside the window must be at least this (0..1) */
  minSuccessRatio: number;
  /** the window for the ratio, in ms */
  windowMs: number;
  /** refuse while any node is quarantined on the candidate */
  noQuarantined: boolean;
}

export const DEFAULT_GATES: PromotionGates = { minActiveNodes: 3, minSuccessRatio: 0.95, windowMs: 24 * 3600_000, noQuarantined: true };

export type GateCondition = 'min-active-nodes' | 'success-ratio' | 'no-quarantined';

export interface GateCheck {
  condition: GateCondition;
  ok: boolean;
  required: number;
  actual: number;
  message: string;
}

export interface GateResult {
  ok: boolean;
  checks: GateCheck[];
  /** the checks that failed, in the order above */
  failures: GateCheck[];
}

/** success ratio inside the window; null when nothing happened in it */
export function successRatio(h: DigestHealth): number | null {
  const n = h.windowActive + h.windowFailed;
  return n === 0 ? null : h.windowActive / n;
}

export function checkGates(h: DigestHealth, g: PromotionGates): GateResult {
  const ratio = successRatio(h);
  const hours = Math.round((g.windowMs / 3600_000) * 10) / 10;
  const checks: GateCheck[] = [
    {
      condition: 'min-active-nodes',
      ok: h.active >= g.minActiveNodes,
      required: g.minActiveNodes,
      actual: h.active,
      message: `${h.active} node(s) active on the candidate, ${g.minActiveNodes} required`,
    },
    {
      condition: 'success-ratio',
      // No boots in the window is not evidence of success.
      ok: ratio !== null && ratio >= g.minSuccessRatio,
      required: g.minSuccessRatio,
      actual: ratio ?? 0,
      message:
        ratio === null
          ? `no node booted the candidate in the last ${hours} h; success ratio ${g.minSuccessRatio} required`
          : `success ratio ${ratio.toFixed(3)} over the last ${hours} h (${h.windowActive} active, ${h.windowFailed} failed), ${g.minSuccessRatio} required`,
    },
  ];
  if (g.noQuarantined)
    checks.push({
      condition: 'no-quarantined',
      ok: h.quarantined === 0,
      required: 0,
      actual: h.quarantined,
      message: `${h.quarantined} node(s) quarantined on the candidate, none allowed`,
    });
  const failures = checks.filter((c) => !c.ok);
  return { ok: failures.length === 0, checks, failures };
}

export class PromotionError extends Error {
  constructor(
    readonly code: 'unknown-channel' | 'same-channel' | 'wrong-direction' | 'empty-channel' | 'already-there' | 'gate-failed' | 'nothing-to-roll-back',
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'PromotionError';
  }
}

/** Channels are ordered from least to most trusted; a promotion moves a candidate towards the end. */
export function validatePromotion(channels: readonly string[], from: string, to: string): void {
  const i = channels.indexOf(from);
  const j = channels.indexOf(to);
  if (i < 0 || j < 0) throw new PromotionError('unknown-channel', `unknown channel ${JSON.stringify(i < 0 ? from : to)}; channels are ${channels.join(', ')}`, { channels });
  if (i === j) throw new PromotionError('same-channel', `cannot promote ${from} to itself`);
  if (j < i) throw new PromotionError('wrong-direction', `promotion goes ${channels.join(' → ')}; ${from} → ${to} goes backwards (use rollback)`, { channels });
}

export interface RollbackPolicy {
  /** roll back when failed / (active + failed) inside the window reaches this (0..1) */
  maxFailureRatio: number;
  /** ...and at least this many nodes booted it in the window (one bad node is not a trend) */
  minSamples: number;
  windowMs: number;
}

export const DEFAULT_ROLLBACK: RollbackPolicy = { maxFailureRatio: 0.3, minSamples: 3, windowMs: 3600_000 };

export interface RollbackDecision {
  rollback: boolean;
  reason: string;
  failureRatio: number | null;
  samples: number;
}

export function decideRollback(h: DigestHealth, p: RollbackPolicy, hasPrevious: boolean): RollbackDecision {
  const samples = h.windowActive + h.windowFailed;
  const failureRatio = samples === 0 ? null : h.windowFailed / samples;
  const base = { failureRatio, samples };
  if (samples < p.minSamples) return { ...base, rollback: false, reason: `${samples} boot(s) in the window, ${p.minSamples} needed to judge` };
  if (failureRatio! < p.maxFailureRatio) return { ...base, rollback: false, reason: `failure ratio ${failureRatio!.toFixed(3)} below ${p.maxFailureRatio}` };
  if (!hasPrevious) return { ...base, rollback: false, reason: `failure ratio ${failureRatio!.toFixed(3)} ≥ ${p.maxFailureRatio} but the channel has no previous image to return to` };
  return { ...base, rollback: true, reason: `failure ratio ${failureRatio!.toFixed(3)} (${h.windowFailed} of ${samples} boots) ≥ ${p.maxFailureRatio}` };
}

/** History rows as the rollback target search needs them, newest first. */
export interface ChannelMove {
  action: string;
  fromImageId: number | null;
  toImageId: number;
}

/**
 * Where a rollback of a channel now on `current` goes: the image it was on before the move that brought
 * `current` in. Moves made by rollbacks are skipped, so rolling back twice walks further back (v3 → v2 → v1)
 * instead of flipping between two images.
 */
export function rollbackTarget(current: number, historyNewestFirst: readonly ChannelMove[]): number | null {
  const move = historyNewestFirst.find((m) => m.toImageId === current && m.action !== 'rollback' && m.action !== 'auto-rollback');
  return move?.fromImageId ?? null;
}
