// Failed dashboard logins, counted per source address and over all addresses, in sliding windows on an injected
// clock. API tokens are long random strings, so guessing one is hopeless anyway; the limit keeps a script from
// turning /ui/login into a token oracle, a log flood or a session-table churn. The state is per process: each
// replica counts for itself (a guesser spread over N replicas gets N times the budget, still hopeless).
import type { Context } from 'hono';
import { clientAddressOf } from './trusted.ts';
import type { Clock } from '../clock.ts';

export interface FailureLimit {
  failures: number;
  windowSeconds: number;
}

/** The client's address as the app resolved it (X-Forwarded-For only from http.trustedProxies; see trusted.ts),
 * or 'unknown' when there is no socket (in-process requests). */
export function sourceAddress(c: Context): string {
  return clientAddressOf(c) ?? 'unknown';
}

export function createLoginLimiter({ perAddress, global, clock, maxAddresses = 10_000 }: { perAddress: FailureLimit; global: FailureLimit; clock: Clock; maxAddresses?: number }) {
  // the times of the newest `failures` failures: a source is blocked while that many fall inside the window,
  // until the oldest of them leaves it
  const byAddress = new Map<string, number[]>();
  const everyone: number[] = [];

  const wait = (times: number[] | undefined, limit: FailureLimit, now: number): number => {
    if (!times || times.length < limit.failures) return 0;
    return Math.max(0, times[times.length - limit.failures]! + limit.windowSeconds * 1000 - now);
  };
  const push = (times: number[], limit: FailureLimit, now: number) => {
    times.push(now);
    if (times.length > limit.failures) times.splice(0, times.length - limit.failures);
  };

  return {
    /** Seconds until a login from `address` may be tried again; 0 when it may be tried now. */
    retryAfterSeconds(address: string): number {
      const now = clock.now().getTime();
      return Math.ceil(Math.max(wait(byAddress.get(address), perAddress, now), wait(everyone, global, now)) / 1000);
    },
    failed(address: string): void {
      const now = clock.now().getTime();
      push(everyone, global, now);
      let times = byAddress.get(address);
      if (!times) {
        // bounded memory under a spray of source addresses: forget the address seen longest ago
        if (byAddress.size >= maxAddresses) byAddress.delete(byAddress.keys().next().value!);
        times = [];
      } else byAddress.delete(address);
      byAddress.set(address, times); // re-inserted: Map order is least recently failed first
      push(times, perAddress, now);
    },
    /** A successful login clears its address's failures (not the global count). */
    succeeded(address: string): void {
      byAddress.delete(address);
    },
  };
}
export type LoginLimiter = ReturnType<typeof createLoginLimiter>;
