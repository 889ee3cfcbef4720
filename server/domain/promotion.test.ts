import { describe, expect, it } from 'vitest';
import { checkGates, decideRollback, rollbackTarget, validatePromotion, PromotionError, type DigestHealth, type PromotionGates } from './promotion.ts';

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
