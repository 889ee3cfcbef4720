// Admin API: bearer tokens mapped to roles (viewer < operator < admin) from config.
// Agent calls: the per-boot token the server put on the node's kernel command line; only its hash is stored.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { getCookie } from 'hono/cookie';
import type { Role } from '../config.ts';
import { AppError } from '../errors.ts';
import { tokenMatches } from '../secrets.ts';

const RANK: Record<Role, number> = { viewer: 1, operator: 2, admin: 3 };

export interface Principal {
  name: string;
  role: Role;
}

export function bearer(c: Context): string | null {
  const h = c.req.header('authorization');
  if (!h) return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  if (!m) throw new AppError(401, 'unauthorized', 'Authorization header must be "Bearer <token>"');
  return m[1]!;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** The dashboard keeps its token in this cookie (set by /ui/login). It is honoured only for GET and HEAD, so a
 * page on another site cannot make a logged-in browser change anything (no CSRF on state-changing calls). */
export const UI_COOKIE = 'bootfarm_token';

export function createAdminAuth(tokens: { name: string; role: Role; token: string }[]) {
  const table = tokens.map((t) => ({ ...t, hash: digest(t.token) }));
  function authenticate(token: string): Principal | null {
    const h = digest(token);
    // compare against every entry so timing does not reveal which one matched
    let found: Principal | null = null;
    for (const t of table) if (timingSafeEqual(h, t.hash)) found = { name: t.name, role: t.role };
    return found;
  }
  /** Middleware: requires a token of at least `min` role; sets c.var.principal. */
  const requireRole = function requireRole(min: Role): MiddlewareHandler {
    return async function roleCheck(c, next) {
      const safe = c.req.method === 'GET' || c.req.method === 'HEAD';
      const token = bearer(c) ?? (safe ? (getCookie(c, UI_COOKIE) ?? null) : null);
      if (!token) throw new AppError(401, 'unauthorized', 'this endpoint needs an API token: Authorization: Bearer <token>');
      const p = authenticate(token);
      if (!p) throw new AppError(401, 'unauthorized', 'the API token is not valid');
      if (RANK[p.role] < RANK[min]) throw new AppError(403, 'forbidden', `this action needs the ${min} role; the token has ${p.role}`);
      c.set('principal' as never, p as never);
      await next();
    };
  };
  return Object.assign(requireRole, { authenticate });
}

export const principalOf = (c: Context): Principal => (c.get('principal' as never) as Principal | undefined) ?? { name: 'anonymous', role: 'viewer' };

/** Checks a node's per-boot token. */
export function requireBootToken(c: Context, node: { uuid: string; bootTokenHash: string | null }): void {
  const token = bearer(c);
  if (!token) throw new AppError(401, 'unauthorized', `agent calls need the per-boot token from the kernel command line (bootfarm.token=) as "Authorization: Bearer <token>"`);
  if (!tokenMatches(token, node.bootTokenHash)) throw new AppError(403, 'forbidden', `the boot token does not match node ${node.uuid}'s current boot`);
}

/** The node an agent call is about, with its per-boot token checked. A caller without a token learns nothing
 * about whether the node exists (401 before 404). */
export async function agentNode(c: Context, nodes: { get(uuid: string): Promise<{ uuid: string; bootTokenHash: string | null } | null> }, uuid: string) {
  const node = await nodes.get(uuid);
  if (!node) {
    if (!bearer(c)) throw new AppError(401, 'unauthorized', 'agent calls need the per-boot token from the kernel command line');
    throw new AppError(404, 'not_found', `node ${uuid} not found`);
  }
  requireBootToken(c, node);
  return node;
}
