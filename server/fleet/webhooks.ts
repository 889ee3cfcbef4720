// Webhooks on failed / rebuilt / quarantined, and fleet-wide on breaker-open / breaker-resumed (no node). Each event is queued as one row per URL (fleet_webhook_deliveries)
// and sent by the leader's loop, so a retry survives a restart or a change of leader.
//
// Signature: X-Bootfarm-Signature: sha256=<hex HMAC-SHA256(secret, raw body)> — the GitHub convention, so
// receivers can reuse their verification code. The receiver must compare in constant time over the raw bytes.
// X-Bootfarm-Delivery carries the row id: the same id on a retry lets the receiver drop duplicates.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../clock.ts';
import type { FleetConfig } from './config.ts';
import type { FleetStore } from '../store/fleet.ts';
import { backoffDelay } from '../contract/backoff.ts';

export type WebhookEvent = 'failed' | 'rebuilt' | 'quarantined' | 'breaker-open' | 'breaker-resumed';

export const SIGNATURE_HEADER = 'x-bootfarm-signature';

export function sign(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body, 'utf8').digest('hex')}`;
}

/** For receivers (and tests): constant-time check of a signature header against the raw body. */
export function verifySignature(secret: string, body: string, header: string | null | undefined): boolean {
  if (!header) return false;
  const want = Buffer.from(sign(secret, body));
  const got = Buffer.from(header);
  return want.length === got.length && timingSafeEqual(want, got);
}

export type WebhookFetch = (url: string, init: RequestInit) => Promise<Response>;

export interface WebhookPayload {
  event: WebhookEvent;
  /** absent for fleet-wide events (the breaker) */
  node?: { uuid: string; state?: string; labels?: Record<string, string> };
  reason: string;
  at: string;
  data?: Record<string, unknown>;
}

export function createWebhooks({ store, config, clock, fetch: doFetch = globalThis.fetch, onResult }: { store: FleetStore; config: FleetConfig['webhooks']; clock: Clock; fetch?: WebhookFetch; onResult?: (ok: boolean) => void }) {
  return {
    /** queues one delivery per configured URL */
    async emit(p: Omit<WebhookPayload, 'at'>): Promise<void> {
      if (!config.urls.length) return;
      const at = clock.now();
      const body = JSON.stringify({ ...p, at: at.toISOString() } satisfies WebhookPayload);
      await store.enqueueWebhooks(config.urls.map((url) => ({ event: p.event, nodeUuid: p.node?.uuid ?? null, url, body, at })));
    },

    /**
     * sends what is due; a failure schedules the next attempt with exponential backoff, then gives up. `write`
     * records each result (the controller passes one that checks its leader epoch in the same transaction).
     */
    async deliver(write: Pick<FleetStore, 'webhookResult'> = store): Promise<{ delivered: number; failed: number }> {
      if (!config.secret) return { delivered: 0, failed: 0 };
      const due = await store.dueWebhooks(clock.now());
      let delivered = 0;
      let failed = 0;
      await Promise.all(
        due.map(async (d) => {
          let error: string | undefined;
          try {
            const res = await doFetch(d.url, {
              method: 'POST',
              headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: sign(config.secret!, d.body), 'x-bootfarm-event': d.event, 'x-bootfarm-delivery': String(d.id), 'user-agent': 'bootfarm-fleet' },
              body: d.body,
              signal: AbortSignal.timeout(config.timeoutMs),
              redirect: 'manual',
            });
            await res.arrayBuffer().catch(() => undefined);
            if (res.status < 200 || res.status >= 300) error = `HTTP ${res.status}`;
          } catch (e) {
            error = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message;
          }
          const now = clock.now();
          if (!error) {
            delivered++;
            onResult?.(true);
            return write.webhookResult(d.id, { delivered: true, at: now });
          }
          failed++;
          onResult?.(false);
          const attempts = d.attempts + 1;
          const gaveUp = attempts >= config.maxAttempts;
          const wait = backoffDelay(attempts - 1, { baseMs: config.backoffBaseSeconds * 1000, capMs: config.backoffMaxSeconds * 1000 });
          return write.webhookResult(d.id, { delivered: false, at: now, error, gaveUp, nextAttemptAt: new Date(now.getTime() + wait) });
        }),
      );
      return { delivered, failed };
    },
  };
}

export type Webhooks = ReturnType<typeof createWebhooks>;
