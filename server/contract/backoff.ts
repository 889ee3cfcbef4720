// The one exponential backoff of the project: the agent's server calls, the server's database connect at
// start-up, webhook redeliveries and the fleet's rebuild spacing all use it.
//
// It lives in server/contract/ because agent/ may import nothing else from the server; it is plain TypeScript
// (no Node APIs, no imports), so it compiles into the Bun agent as well. Written here rather than taken from npm:
// p-retry and exponential-backoff run their own setTimeout loop (no injected sleep, so tests need fake timers),
// and neither gives the pure `delay(n)` that the server needs to compute a *due time* it stores in the database
// (webhooks, rebuilds) instead of sleeping. The whole helper is the formula below plus a ten-line loop.
//
// delay(n) = min(cap, base × 2^n) for the n-th retry (n = 0 for the first). With full jitter the delay is
// uniform in [0, that): a rack of nodes that lost the server together does not come back in lock-step
// (AWS Architecture Blog, "Exponential Backoff and Jitter", 2015).

export interface BackoffOptions {
  /** delay before the first retry (ms) */
  baseMs: number;
  /** no delay is longer (ms) */
  capMs: number;
  /** 'full': uniform in [0, delay) — for many clients of one server; 'none': the deterministic delay */
  jitter?: 'full' | 'none';
  /** 0 ≤ x < 1; injected so tests are deterministic */
  random?: () => number;
}

/** Delay in ms before retry number `retry` (0-based: 0 is the wait after the first failure). */
export function backoffDelay(retry: number, { baseMs, capMs, jitter = 'none', random = Math.random }: BackoffOptions): number {
  // 2 ** n overflows to Infinity for large n; min() keeps that at the cap
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, retry));
  return jitter === 'full' ? Math.floor(random() * ceiling) : ceiling;
}

export type Sleep = (ms: number) => Promise<void>;

export interface RetryOptions extends BackoffOptions {
  /** waits between attempts; injected (a fake in tests, setTimeout in production) */
  sleep: Sleep;
  /** attempts in all, including the first; Infinity retries until the error is not retryable */
  attempts?: number;
  /** whether an error is worth another attempt (default: every error) */
  retryable?: (err: unknown) => boolean;
  /** a wait the other side asked for (e.g. HTTP Retry-After, RFC 9110 §10.2.3), in ms; honoured up to capMs */
  retryAfterMs?: (err: unknown) => number | undefined;
  /** told about every failed attempt that will be retried */
  onRetry?: (err: unknown, retry: number, delayMs: number) => void;
}

/** Calls fn until it resolves, an error is not retryable, or the attempts are used up (then the last error). */
export async function retry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  const { sleep, attempts = Infinity, retryable = () => true, retryAfterMs, onRetry } = opts;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt + 1 >= attempts || !retryable(err)) throw err;
      let delay = backoffDelay(attempt, opts);
      const asked = retryAfterMs?.(err);
      if (asked) delay = Math.max(delay, Math.min(asked, opts.capMs));
      onRetry?.(err, attempt, delay);
      await sleep(delay);
    }
  }
}
