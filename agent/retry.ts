// Exponential backoff with full jitter (delay = random × min(cap, base × 2^attempt)): a rack of nodes that
// lost the server together does not come back in lock-step when it returns.
import { isRetryable } from './client.ts';

export type Sleep = (ms: number) => Promise<void>;

export interface RetryOptions {
  sleep: Sleep;
  /** 0 ≤ x < 1 */
  random?: () => number;
  baseMs?: number;
  capMs?: number;
  /** attempts in all, including the first; Infinity retries until the error is not retryable */
  attempts?: number;
  /** told about every failed attempt that will be retried */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  retryable?: (err: unknown) => boolean;
}

export function backoffDelay(attempt: number, { baseMs = 500, capMs = 30_000, random = Math.random }: Pick<RetryOptions, 'baseMs' | 'capMs' | 'random'> = {}): number {
  return Math.floor(random() * Math.min(capMs, baseMs * 2 ** attempt));
}

export async function retry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  const { sleep, attempts = Infinity, onRetry, retryable = isRetryable } = opts;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt + 1 >= attempts || !retryable(err)) throw err;
      let delay = backoffDelay(attempt, opts);
      // a 503 with Retry-After (RFC 9110 §10.2.3) knows better than our guess
      const ra = (err as { retryAfterSeconds?: number }).retryAfterSeconds;
      if (ra) delay = Math.max(delay, Math.min(ra * 1000, opts.capMs ?? 30_000));
      onRetry?.(err, attempt, delay);
      await sleep(delay);
    }
  }
}
