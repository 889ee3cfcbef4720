// The keyring over HTTP (issue 14 item 1, issue 17 item 6), admin only:
//   GET  /api/v1/secrets          data keys (id, active, legacy, which KEK wrapped each) and this replica's KEK check
//   POST /api/v1/secrets/rotate   {rewrapKek?} → a new data key; every BMC password re-encrypted under it (and with
//                                 rewrapKek every data key re-wrapped under this replica's KEK), audited, one transaction
// Key material never crosses the API: a new KEK comes from the replicas' configuration (docs/security-model.md).
import { Hono } from 'hono';
import { z } from 'zod';
import type { Keyring } from '../store/keyring.ts';
import { principalOf } from './auth.ts';
import { audited } from './audit-context.ts';
import type { Mount, RequireRole } from './app.ts';
import type { RouteDoc } from './openapi.ts';
import { jsonBody } from './validate.ts';

export const RotateRequest = z.strictObject({
  /** also re-wrap every data key under this replica's KEK (the last step of rolling to a new KEK) */
  rewrapKek: z.boolean().optional(),
});

export const SECRETS_ROUTES: RouteDoc[] = [
  { method: 'get', path: '/api/v1/secrets', summary: "Data keys (no key material) and this replica's KEK check value", tag: 'secrets', auth: 'admin' },
  { method: 'post', path: '/api/v1/secrets/rotate', summary: 'New data key; every BMC password re-encrypted under it; optionally re-wrap data keys under the current KEK (audited)', tag: 'secrets', auth: 'admin', request: RotateRequest },
];

export function secretsMount({ keyring }: { keyring: Pick<Keyring, 'status' | 'rotate'> }) {
  return (requireRole: RequireRole): Mount => {
    const app = new Hono();
    app.get('/api/v1/secrets', requireRole('admin'), async (c) => c.json(await keyring.status()));
    app.post('/api/v1/secrets/rotate', requireRole('admin'), async (c) => {
      const body = await jsonBody(c, RotateRequest);
      // the target is the new data key, named by the store in the audit row
      const result = await audited(c, 'secrets.rotate', { kind: 'data-key', id: 'new' }, (audit) => keyring.rotate({ actor: `api:${principalOf(c).name}`, rewrapKek: body.rewrapKek ?? false, audit }));
      return c.json(result);
    });
    return { at: '/', app, docs: SECRETS_ROUTES };
  };
}
