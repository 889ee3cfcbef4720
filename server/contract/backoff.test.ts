import { describe, expect, it } from 'vitest';
import { backoffDelay, retry } from './backoff.ts';

describe('backoffDelay', () => {
  it('doubles from base up to the cap, without jitter by default', () => {
    expect([0, 1, 2, 3, 4, 5].map((n) => backoffDelay(n, { baseMs: 1000, capMs: 10_000 }))).toEqual([1000, 2000, 4000, 8000, 10_000, 10_000]);
  });
  it('stays at the cap for huge retry numbers (2^n overflows to Infinity) and at base for negative ones', () => {
    expect(backoffDelay(5000, { baseMs: 1, capMs: 60_000 })).toBe(60_000);
    expect(backoffDelay(-3, { baseMs: 500, capMs: 60_000 })).toBe(500);
  });
  it('full jitter is uniform in [0, delay)', () => {
    expect(backoffDelay(3, { baseMs: 100, capMs: 5000, jitter: 'full', random: () => 0 })).toBe(0);
    expect(backoffDelay(3, { baseMs: 100, capMs: 5000, jitter: 'full', random: () => 0.5 })).toBe(400);
    expect(backoffDelay(10, { baseMs: 100, capMs: 5000, jitter: 'full', random: () => 0.999999 })).toBe(4999);
  });
});

describe('retry', () => {
  const recorder = () => {
    const sleeps: number[] = [];
    return { sleeps, sleep: async (ms: number) => void sleeps.push(ms) };
  };

  it('retries with the backoff until fn resolves, and says so before each wait', async () => {
    const { sleeps, sleep } = recorder();
    const told: string[] = [];
    let n = 0;
    const v = await retry(async (attempt) => (n++ < 3 ? Promise.reject(new Error(`down ${attempt}`)) : 'up'), { baseMs: 100, capMs: 250, sleep, onRetry: (e, r, d) => told.push(`${(e as Error).message} r${r} ${d}`) });
    expect(v).toBe('up');
    expect(sleeps).toEqual([100, 200, 250]);
    expect(told).toEqual(['down 0 r0 100', 'down 1 r1 200', 'down 2 r2 250']);
  });

  it('gives up after the attempts with the last error, and at once on an error that is not retryable', async () => {
    const { sleeps, sleep } = recorder();
    let n = 0;
    await expect(retry(async () => Promise.reject(new Error(`e${n++}`)), { baseMs: 1, capMs: 1, attempts: 3, sleep })).rejects.toThrow('e2');
    expect(sleeps).toHaveLength(2);
    await expect(retry(async () => Promise.reject(new Error('fatal')), { baseMs: 1, capMs: 1, sleep, retryable: (e) => (e as Error).message !== 'fatal' })).rejects.toThrow('fatal');
    expect(sleeps).toHaveLength(2);
  });

  it('waits as long as the other side asked (Retry-After), but never past the cap', async () => {
    const { sleeps, sleep } = recorder();
    let n = 0;
    const ask = (ms: number) => Object.assign(new Error('busy'), { ms });
    await retry(async () => (n++ === 0 ? Promise.reject(ask(3000)) : n === 2 ? Promise.reject(ask(99_000)) : 'ok'), { baseMs: 100, capMs: 10_000, sleep, retryAfterMs: (e) => (e as { ms?: number }).ms });
    expect(sleeps).toEqual([3000, 10_000]);
  });
});
