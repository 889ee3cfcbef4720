// API tokens (issue 14 item 1), admin only:
//   POST   /api/v1/tokens       {name, role, expiresInSeconds?} → 201 {token, …}: the token is in this answer only
//   GET    /api/v1/tokens       the database's tokens (never a token or its hash) and the configured ones' names
//   DELETE /api/v1/tokens/:id   revoke: refused from the next request on every replica; its dashboard sessions end
// Create and revoke are audited (audit_log). Tokens from configuration are listed but not revocable here (remove
// them from the configuration).
import { Hono } from 'hono';
import { z } from 'zod';
import { Role } from '../config.ts';
import type { TokenStore, TokenView } from '../store/tokens.ts';
import type { Clock } from '../clock.ts';
import { principalOf } from './auth.ts';
import { audited } from './audit-context.ts';
import type { RouteDoc } from './openapi.ts';
import { jsonBody, parseWith } from './validate.ts';

type RequireRole = (role: 'viewer' | 'operator' | 'admin') => import('hono').MiddlewareHandler;

export const CreateTokenRequest = z.strictObject({
  /** what it is for ("ci", "grafana", a person): shown in lists and in the audit log as api:<name> */
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/, 'letters, digits and . _ @ - (1-64, starting with a letter or digit)'),
  role: Role,
  /** lifetime; none: until revoked */
  expiresInSeconds: z.number().int().min(60).max(10 * 365 * 86_400).optional(),
});

const TokenId = z.string().regex(/^[1-9][0-9]{0,8}$/, 'a token id is a positive integer').transform(Number);

export const TOKEN_ROUTES: RouteDoc[] = [
  { method: 'post', path: '/api/v1/tokens', summary: 'Create an API token (returned once; only its sha256 is stored; audited)', tag: 'tokens', auth: 'admin', request: CreateTokenRequest },
  { method: 'get', path: '/api/v1/tokens', summary: 'API tokens (never the token or its hash) and the names of configured tokens', tag: 'tokens', auth: 'admin' },
  { method: 'delete', path: '/api/v1/tokens/{id}', summary: 'Revoke an API token on every replica; its dashboard sessions end (audited)', tag: 'tokens', auth: 'admin' },
];

const render = (t: TokenView) => ({
  ...t,
  createdAt: t.createdAt.toISOString(),
  lastUsedAt: t.lastUsedAt?.toISOString() ?? null,
  expiresAt: t.expiresAt?.toISOString() ?? null,
  revokedAt: t.revokedAt?.toISOString() ?? null,
});

export function tokenRoutes({ store, clock, configured }: { store: Pick<TokenStore, 'create' | 'list' | 'revoke'>; clock: Clock; configured: { name: string; role: string }[] }, requireRole: RequireRole): Hono {
  const app = new Hono();
  app.post('/api/v1/tokens', requireRole('admin'), async (c) => {
    const body = await jsonBody(c, CreateTokenRequest);
    const expiresAt = body.expiresInSeconds ? new Date(clock.now().getTime() + body.expiresInSeconds * 1000) : null;
    // the target's id is the new token's, named by the store in the audit row
    const { token, view } = await audited(c, 'token.create', { kind: 'token', id: 'new' }, (audit) => store.create({ name: body.name, role: body.role, createdBy: `api:${principalOf(c).name}`, expiresAt }, audit));
    c.header('cache-control', 'no-store');
    return c.json({ ...render(view), token }, 201);
  });
  app.get('/api/v1/tokens', requireRole('admin'), async (c) => {
    const tokens = (await store.list()).map(render);
    return c.json({ tokens, configured: configured.map((t) => ({ name: t.name, role: t.role, source: 'configuration' })) });
  });
  app.delete('/api/v1/tokens/:id', requireRole('admin'), async (c) => {
    const id = parseWith(TokenId, c.req.param('id'));
    return c.json(render(await audited(c, 'token.revoke', { kind: 'token', id: String(id) }, (audit) => store.revoke(id, `api:${principalOf(c).name}`, audit))));
  });
  return app;
}
