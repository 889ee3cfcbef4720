import { describe, expect, it } from 'vitest';
import { checkGates, decideRollback, judgeFailure, rollbackTarget, validatePromotion, windowOutcomes, PromotionError, type BootOutcome, type DigestHealth, type PromotionGates } from './promotion.ts';

const gates: PromotionGates = { minActiveNodes: 3, minSuccessRatio: 0.9, windowMs: 3600_000, noQuarantined: true };
const h = (p: Partial<DigestHealth>): DigestHealth => ({ active: 0, windowActive: 0, windowFailed: 0, quarantined: 0, ...p });

describe('checkGates', () => {
  const cases: [string, DigestHealth, string[]][] = [
    ['healthy candidate passes every gate', h({ active: 5, windowActive: 5, windowFailed: 0 }), []],
    ['too few active nodes fails only the count gate', h({ active: 2, windowActive: 2 }), ['min-active-nodes']],
    ['a low success ratio fails the ratio gate', h({ active: 9, windowActive: 8, windowFailed: 2 }), ['success-ratio']],
    ['no boots inside the window is not a success', h({ active: 4 }), ['success-ratio']],
    ['one quarantined node blocks promotion', h({ active: 10, windowActive: 10, quarantined: 1 }), ['no-quarantined']],
    ['everything wrong names all three conditions', h({ active: 1, windowActive: 1, windowFailed: 3, quarantined: 2 }), ['min-active-nodes', 'success-ratio', 'no-quarantined']],
    ['ratio exactly at the threshold passes', h({ active: 9, windowActive: 9, windowFailed: 1 }), []],
  ];
  it.each(cases)('%s', (_, health, failed) => {
    const r = checkGates(health, gates);
    expect(r.failures.map((f) => f.condition)).toEqual(failed);
    expect(r.ok).toBe(failed.length === 0);
  });

  it('says which condition failed in words', () => {
    const r = checkGates(h({ active: 1, windowActive: 1 }), gates);
    expect(r.failures[0]!.message).toBe('1 node(s) active on the candidate, 3 required');
  });

  it('can allow quarantined nodes when configured', () => {
    expect(checkGates(h({ active: 3, windowActive: 3, quarantined: 1 }), { ...gates, noQuarantined: false }).ok).toBe(true);
  });
});

describe('validatePromotion', () => {
  const ch = ['dev', 'canary', 'prod'];
  it('allows moving forward, also skipping a channel', () => {
    expect(() => validatePromotion(ch, 'canary', 'prod')).not.toThrow();
    expect(() => validatePromotion(ch, 'dev', 'prod')).not.toThrow();
  });
  it.each([
    ['prod', 'canary', 'wrong-direction'],
    ['dev', 'dev', 'same-channel'],
    ['dev', 'staging', 'unknown-channel'],
  ])('%s → %s is refused (%s)', (from, to, code) => {
    try {
      validatePromotion(ch, from, to);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(PromotionError);
      expect((e as PromotionError).code).toBe(code);
    }
  });
});

describe('decideRollback', () => {
  const policy = { maxFailureRatio: 0.3, minSamples: 4, windowMs: 3600_000 };
  it.each([
    ['too few samples to judge', h({ windowActive: 1, windowFailed: 2 }), true, false],
    ['failure ratio below threshold', h({ windowActive: 8, windowFailed: 2 }), true, false],
    ['failure ratio at threshold rolls back', h({ windowActive: 7, windowFailed: 3 }), true, true],
    ['all failing but nothing to return to', h({ windowFailed: 5 }), false, false],
  ])('%s', (_, health, hasPrevious, expected) => {
    expect(decideRollback(health, policy, hasPrevious).rollback).toBe(expected);
  });
  it('reports the ratio it used', () => {
    const d = decideRollback(h({ windowActive: 2, windowFailed: 2 }), policy, true);
    expect(d.failureRatio).toBe(0.5);
    expect(d.reason).toMatch(/2 of 4 boots/);
  });
});

describe('rollbackTarget', () => {
  it('walks back past earlier rollbacks instead of flipping between two images', () => {
    // pushed 1, promoted 1→2, 2→3, rolled back 3→2: the next rollback goes to 1
    const hist = [
      { action: 'rollback', fromImageId: 3, toImageId: 2 },
      { action: 'promote', fromImageId: 2, toImageId: 3 },
      { action: 'promote', fromImageId: 1, toImageId: 2 },
      { action: 'push', fromImageId: null, toImageId: 1 },
    ];
    expect(rollbackTarget(3, hist.slice(1))).toBe(2);
    expect(rollbackTarget(2, hist)).toBe(1);
    expect(rollbackTarget(1, hist)).toBeNull();
  });
});

describe('which failures an image caused (judgeFailure, windowOutcomes)', () => {
  const at = new Date('2026-12-01T10:00:00Z');
  const o = (over: Partial<BootOutcome>): BootOutcome => ({ boot: 1, node: 'n1', at, fromState: 'active', toState: 'failed', cause: 'heartbeat', kexecStarted: true, nextState: null, ...over });
  it.each([
    ['heartbeat loss after active', o({}), { counts: true }],
    ['a provisioning timeout after kexec', o({ fromState: 'provisioning', cause: 'timeout' }), { counts: true }],
    ['a provisioning timeout before kexec', o({ fromState: 'provisioning', cause: 'timeout', kexecStarted: false }), { counts: false, why: 'before-kexec' }],
    ['a timeout in stage-1 (inspecting)', o({ fromState: 'inspecting', cause: 'timeout' }), { counts: false, why: 'not-image-cause' }],
    ['BMC says power off', o({ cause: 'power-off' }), { counts: false, why: 'bmc-or-power' }],
    ['BMC critical health', o({ cause: 'bmc-health' }), { counts: false, why: 'bmc-or-power' }],
    ['an operator fail (no cause)', o({ cause: null }), { counts: false, why: 'not-image-cause' }],
    ['a cause the fleet adds later', o({ cause: 'outage' }), { counts: false, why: 'not-image-cause' }],
    ['heartbeat loss undone by recovery', o({ nextState: 'active' }), { counts: false, why: 'recovered' }],
    ['heartbeat loss followed by a rebuild', o({ nextState: 'rebuilding' }), { counts: true }],
  ])('%s', (_what, outcome, verdict) => {
    expect(judgeFailure(outcome)).toEqual(verdict);
  });

  it('ignores failures inside a breaker episode, open or closed, and only those', () => {
    const spans = [{ from: new Date('2026-12-01T09:59:00Z'), to: new Date('2026-12-01T10:00:00Z') }];
    expect(judgeFailure(o({}), spans)).toEqual({ counts: true }); // the end is exclusive: resumed at 10:00
    expect(judgeFailure(o({ at: new Date('2026-12-01T09:59:30Z') }), spans)).toEqual({ counts: false, why: 'breaker-open' });
    expect(judgeFailure(o({}), [{ from: new Date('2026-12-01T09:00:00Z'), to: null }])).toEqual({ counts: false, why: 'breaker-open' });
    expect(judgeFailure(o({ breakerOpen: true }))).toEqual({ counts: false, why: 'breaker-open' }); // the fleet's own mark on the fail event
  });

  it('counts each boot once: failed if the image failed it, else active if it reached active', () => {
    const activated = (boot: number) => o({ boot, fromState: 'provisioning', toState: 'active', cause: null });
    const h = windowOutcomes([activated(1), o({ boot: 1 }), activated(2), o({ boot: 2, cause: 'power-off' }), activated(3), o({ boot: 4, fromState: 'provisioning', cause: 'timeout', kexecStarted: false })]);
    expect(h).toEqual({ windowActive: 2, windowFailed: 1, ignoredFailures: { 'bmc-or-power': 1, 'before-kexec': 1 } });
    expect(decideRollback({ active: 0, quarantined: 0, ...h }, { maxFailureRatio: 0.3, minSamples: 3, windowMs: 1 }, true)).toMatchObject({ rollback: true, samples: 3 });
  });
});
