// The agent's retry: the project's one backoff (server/contract/backoff.ts) with the agent's defaults — full
// jitter, so a rack of nodes that lost the server together does not come back in lock-step; only errors the
// client marks retryable; a 503's Retry-After honoured.
import { backoffDelay as delay, retry as retryWith, type RetryOptions as BaseOptions, type Sleep } from '../server/contract/backoff.ts';
import { isRetryable } from './client.ts';

export type { Sleep };

export interface RetryOptions extends Partial<Pick<BaseOptions, 'baseMs' | 'capMs' | 'random' | 'attempts' | 'onRetry' | 'retryable'>> {
  sleep: Sleep;
}

export function backoffDelay(attempt: number, { baseMs = 500, capMs = 30_000, random = Math.random }: Pick<RetryOptions, 'baseMs' | 'capMs' | 'random'> = {}): number {
  return delay(attempt, { baseMs, capMs, random, jitter: 'full' });
}

export function retry<T>(fn: (attempt: number) => Promise<T>, { baseMs = 500, capMs = 30_000, retryable = isRetryable, ...opts }: RetryOptions): Promise<T> {
  return retryWith(fn, {
    ...opts,
    baseMs,
    capMs,
    jitter: 'full',
    retryable,
    retryAfterMs: (err) => {
      const s = (err as { retryAfterSeconds?: number } | null)?.retryAfterSeconds;
      return s ? s * 1000 : undefined;
    },
  });
}
