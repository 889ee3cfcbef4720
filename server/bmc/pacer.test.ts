// BMC power-on pacing (issue 15 item 2): a burst goes out at once, the rest in waves at perSecond, in the order
// asked; only the commands a boot follows wait. Time is a fake clock advanced by the injected sleep.
import { describe, expect, it } from 'vitest';
import { createPowerPacer, pacedBmcFactory } from './pacer.ts';
import type { Bmc, BmcTarget } from './types.ts';

describe('power-on pacer', () => {
  it('lets a burst through, then one power-on per 1/perSecond, each caller waiting its own turn', async () => {
    // sleep here does not advance the shared clock for the other callers: they all ask at t = 0
    const asked: number[] = [];
    const pacer = createPowerPacer({ perSecond: 4, burst: 3, now: () => 0, sleep: async (ms) => void asked.push(ms) });
    await Promise.all(Array.from({ length: 7 }, () => pacer.take()));
    // 3 at once, then 250 ms apart: a wave of 3, then 4 a second
    expect(asked).toEqual([250, 500, 750, 1000]);
  });

  it('refills over time up to the burst; 0 per second turns pacing off', async () => {
    let t = 0;
    const waits: number[] = [];
    const pacer = createPowerPacer({ perSecond: 2, burst: 2, now: () => t, sleep: async (ms) => void waits.push(ms) });
    await pacer.take();
    await pacer.take();
    t = 10_000; // a quiet spell: back to a full burst, not 20 tokens
    await pacer.take();
    await pacer.take();
    await pacer.take();
    expect(waits).toEqual([500]);
    const off = createPowerPacer({ perSecond: 0, burst: 1, sleep: async () => expect.unreachable('no pacing') });
    for (let i = 0; i < 10; i++) await off.take();
  });

  it('paces on, cycle and reset through the BMC factory; off, soft, status and the rest go straight through', async () => {
    const calls: string[] = [];
    const bmc = (target: BmcTarget): Bmc =>
      ({
        driver: target.driver,
        target: target.address,
        power: async (a: string) => void calls.push(`power ${a}`),
        powerStatus: async () => 'on',
      }) as unknown as Bmc;
    let taken = 0;
    const factory = pacedBmcFactory(bmc, { take: async () => void taken++, waiting: () => 0 });
    const b = factory({ driver: 'ipmi', address: '10.0.0.5', username: 'u', password: 'p' } as BmcTarget);
    for (const a of ['on', 'off', 'cycle', 'soft', 'reset'] as const) await b.power(a);
    expect(await b.powerStatus()).toBe('on');
    expect(b.target).toBe('10.0.0.5');
    expect(calls).toEqual(['power on', 'power off', 'power cycle', 'power soft', 'power reset']);
    expect(taken).toBe(3);
  });
});
