// The login limiter alone, on a fake clock: sliding windows and bounded memory under an address spray.
import { expect, it } from 'vitest';
import { FakeClock } from '../clock.ts';
import { createLoginLimiter } from './login-limit.ts';

it('blocks while `failures` fall inside the window, until the oldest of them leaves it', () => {
  const clock = new FakeClock();
  const l = createLoginLimiter({ perAddress: { failures: 2, windowSeconds: 10 }, global: { failures: 1000, windowSeconds: 10 }, clock });
  l.failed('a');
  expect(l.retryAfterSeconds('a')).toBe(0);
  clock.advance(4000);
  l.failed('a');
  expect(l.retryAfterSeconds('a')).toBe(6); // the first failure leaves the window 10 s after it happened
  clock.advance(6000);
  expect(l.retryAfterSeconds('a')).toBe(0);
  l.failed('a');
  expect(l.retryAfterSeconds('a')).toBe(4); // now the second and third count
});

it('remembers at most maxAddresses sources, forgetting the one that failed longest ago', () => {
  const clock = new FakeClock();
  const l = createLoginLimiter({ perAddress: { failures: 1, windowSeconds: 60 }, global: { failures: 1000, windowSeconds: 60 }, clock, maxAddresses: 3 });
  for (const a of ['a', 'b', 'c']) l.failed(a);
  l.failed('a'); // a is now the most recent
  l.failed('d'); // evicts b
  expect(['a', 'b', 'c', 'd'].map((x) => l.retryAfterSeconds(x) > 0)).toEqual([true, false, true, true]);
});
