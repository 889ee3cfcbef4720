// Per-source-address rate limits for the unauthenticated and node-facing routes (issue 13 item 3): one token
// bucket per client address, refilled from the injected clock. Each replica counts on its own, so behind a
// load balancer with N replicas a source gets up to N times the rate: the limit bounds the work one source can
// cause, it is not an accounting of it. The table of sources is bounded (least recently seen evicted first).
//
// Over the limit:
//  - /boot.ipxe and /ipxe/*: 200 with an iPXE script that sleeps and chains /boot.ipxe again (plus Retry-After).
//    iPXE does not run the body of an error answer, so a 429 would end a real node's boot in a storm; the retry
//    script makes it wait and try again, and costs us no database work.
//  - agent calls: 429 with Retry-After; the agent's HTTP client backs off and retries.
// Requests without a socket address (in-process calls: tests, embedding) have no source to count and pass.
import type { Context, MiddlewareHandler } from 'hono';
import { AppError } from '../errors.ts';
import type { Clock } from '../clock.ts';
import { peerAddress, type ClientAddress } from './trusted.ts';

export interface RateLimit {
  /** sustained requests per minute per source address; 0 turns the limit off */
  perMinute: number;
  /** requests a source may make at once before the sustained rate applies */
  burst: number;
}

export function createBuckets({ perMinute, burst }: RateLimit, clock: Clock, maxSources = 65536) {
  const perMs = perMinute / 60_000;
  const table = new Map<string, { tokens: number; at: number }>();
  /** Takes one token for `key`; returns 0 when allowed, else the seconds until the next token. */
  return function take(key: string): number {
    const now = clock.now().getTime();
    let b = table.get(key);
    if (b) table.delete(key); // re-insert below: Map order is the eviction order
    else {
      b = { tokens: burst, at: now };
      if (table.size >= maxSources) table.delete(table.keys().next().value!);
    }
    b.tokens = Math.min(burst, b.tokens + Math.max(0, now - b.at) * perMs);
    b.at = now;
    table.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / perMs / 1000));
  };
}

export function rateLimit(limit: RateLimit, { clock, clientAddress, maxSources, onLimited }: { clock: Clock; clientAddress: ClientAddress; maxSources?: number; onLimited?: (c: Context, retryAfterSeconds: number) => Response }): MiddlewareHandler {
  const take = limit.perMinute > 0 ? createBuckets(limit, clock, maxSources) : null;
  return async function perSource(c, next) {
    // a socket whose client cannot be told (a malformed forwarded chain) shares one bucket with all such requests
    const addr = take ? (clientAddress(c) ?? (peerAddress(c) ? 'unknown' : null)) : null;
    if (take && addr !== null) {
      const wait = take(addr);
      if (wait > 0) {
        if (onLimited) return onLimited(c, wait);
        throw new AppError(429, 'rate_limited', `too many requests from ${addr}; try again in ${wait} s`, { retryAfterSeconds: wait }, { 'retry-after': String(wait) });
      }
    }
    await next();
  };
}
