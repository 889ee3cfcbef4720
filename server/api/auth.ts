// Admin API: bearer tokens mapped to roles (viewer < operator < admin) — from configuration (in memory) and from
// the api_tokens table (server/store/tokens.ts: one indexed lookup per request, so a token revoked on any replica
// fails on every replica at its next request; no cache) — and the dashboard's server-side sessions opened with one.
// Agent calls: the credential the server put on the node's kernel command line (bootfarm.token=): in stage-1 the
// boot attempt's stage-1 token, in the compute OS the node credential of that boot. Only hashes are stored.
// docs/security-model.md has the model and the table of which endpoint takes which.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { getCookie } from 'hono/cookie';
import type { Role } from '../config.ts';
import { AppError } from '../errors.ts';
import { hashToken } from '../secrets.ts';
import type { SessionStore } from '../store/sessions.ts';
import type { TokenStore } from '../store/tokens.ts';
import type { AgentCredential, BootAttemptRow, NodeRow } from '../store/nodes.ts';

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

/** The dashboard's session cookie (set by /ui/login). It carries a random session id, never an API token; the
 * server keeps only the id's hash (ui_sessions). For the API it is honoured only for GET and HEAD, so a page on
 * another site cannot make a logged-in browser change anything through /api/v1. The dashboard's own forms
 * (POST /ui/…) take it together with the page's CSRF token (csrfToken below, checked in server/api/ui.ts). */
export const UI_COOKIE = 'bootfarm_session';

/**
 * The dashboard's form token for a session (the synchronizer-token pattern, OWASP CSRF cheat sheet): an HMAC of a
 * fixed label keyed with the session id. A page puts it in a hidden field; /ui form posts must send it back with
 * the cookie. Another site can make a browser send the cookie (were SameSite=Strict ever missing) but cannot read
 * the page, the cookie or the id, so it cannot produce the token. Nothing is stored: every replica derives the same
 * token, and it ends with the session. The database keeps sha256(id), from which the token cannot be computed.
 */
export function csrfToken(sessionId: string): string {
  return createHmac('sha256', sessionId).update('bootfarm dashboard form v1').digest('base64url');
}

export function csrfMatches(sessionId: string, token: unknown): boolean {
  if (typeof token !== 'string' || token.length > 256) return false;
  const want = Buffer.from(csrfToken(sessionId));
  const got = Buffer.from(token);
  return got.length === want.length && timingSafeEqual(got, want);
}

/** Sessions are kept at most this many per API token: a token holder who logs in in a loop cannot grow the table. */
const SESSIONS_PER_TOKEN = 50;

export interface AdminAuthOptions {
  /** where dashboard sessions live; without it the session cookie is not honoured */
  sessions?: SessionStore;
  sessionTtlSeconds?: number;
  /** tokens created through the API (server/store/tokens.ts) */
  tokenStore?: Pick<TokenStore, 'lookup' | 'used'>;
}

export function createAdminAuth(tokens: { name: string; role: Role; token: string }[], { sessions, sessionTtlSeconds = 12 * 3600, tokenStore }: AdminAuthOptions = {}) {
  const table = tokens.map((t) => ({ name: t.name, role: t.role, hash: digest(t.token) }));
  /** A configured token (constant time over the whole table) or a valid database token (lookup by sha256). */
  async function authenticate(token: string): Promise<(Principal & { credentialHash: string }) | null> {
    const h = digest(token);
    // compare against every entry so timing does not reveal which one matched
    let found: (Principal & { credentialHash: string }) | null = null;
    for (const t of table) if (timingSafeEqual(h, t.hash)) found = { name: t.name, role: t.role, credentialHash: t.hash.toString('hex') };
    if (found || !tokenStore || token.length > 512) return found;
    const hex = h.toString('hex');
    const row = await tokenStore.lookup(hex);
    if (!row) return null;
    await tokenStore.used(row);
    return { name: row.name, role: row.role, credentialHash: hex };
  }

  async function sessionPrincipal(sessionId: string): Promise<Principal | null> {
    if (!sessions || sessionId.length > 256) return null;
    const s = await sessions.get(hashToken(sessionId));
    if (!s) return null;
    // the token that opened the session must still be valid, with the same role: revoking a token (or removing it
    // from the configuration) ends its dashboard sessions too
    const h = Buffer.from(s.credentialHash, 'hex');
    let still = table.some((t) => t.hash.length === h.length && timingSafeEqual(t.hash, h) && t.role === s.role);
    if (!still && tokenStore) still = (await tokenStore.lookup(s.credentialHash))?.role === s.role;
    return still ? { name: s.principalName, role: s.role as Role } : null;
  }

  /** Who is calling: a bearer token, or (GET/HEAD only) a dashboard session. Null when neither is presented or
   * the session is unknown or expired; a bearer token that is not valid is a 401. Remembered on the context. */
  async function identify(c: Context): Promise<Principal | null> {
    const known = c.get('principal' as never) as Principal | undefined;
    if (known) return known;
    const token = bearer(c);
    let p: Principal | null = null;
    if (token) {
      const t = await authenticate(token);
      if (!t) throw new AppError(401, 'unauthorized', 'the API token is not valid (unknown, revoked or expired)');
      p = { name: t.name, role: t.role };
    } else if (c.req.method === 'GET' || c.req.method === 'HEAD') {
      const sid = getCookie(c, UI_COOKIE);
      if (sid) p = await sessionPrincipal(sid);
    }
    if (p) c.set('principal' as never, p as never);
    return p;
  }

  const unauthorized = () => new AppError(401, 'unauthorized', 'this endpoint needs an API token: Authorization: Bearer <token>');

  /** Middleware: requires a token of at least `min` role; sets c.var.principal. */
  const requireRole = function requireRole(min: Role): MiddlewareHandler {
    return async function roleCheck(c, next) {
      const p = await identify(c);
      if (!p) throw unauthorized();
      if (RANK[p.role] < RANK[min]) throw new AppError(403, 'forbidden', `this action needs the ${min} role; the token has ${p.role}`);
      await next();
    };
  };

  /** Middleware for a whole area (app.ts puts it in front of /api/v1): any caller without a valid credential
   * gets 401 before a route parses its path, query or body, so an unauthenticated caller learns nothing about
   * what exists (no 400, 403 or 404 for it). The route's own requireRole then checks the role. */
  const authenticated: MiddlewareHandler = async function authenticated(c, next) {
    if (!(await identify(c))) throw unauthorized();
    await next();
  };

  /** The dashboard session behind a request's cookie, whatever the method (the /ui form routes check the CSRF
   * token themselves before acting on it); null without a valid session. Never used for /api/v1. */
  async function session(c: Context): Promise<{ principal: Principal; sessionId: string } | null> {
    const sid = getCookie(c, UI_COOKIE);
    if (!sid) return null;
    const p = await sessionPrincipal(sid);
    return p ? { principal: p, sessionId: sid } : null;
  }

  /** Marks the request as made by `p` (a /ui form whose session and token were checked). */
  const actAs = (c: Context, p: Principal) => c.set('principal' as never, p as never);

  /** /ui/login: exchanges a valid API token for a new session id (null when the token is not valid). */
  async function openSession(token: string): Promise<{ sessionId: string; principal: Principal; maxAgeSeconds: number } | null> {
    const t = await authenticate(token);
    if (!t || !sessions) return null;
    const sessionId = randomBytes(32).toString('base64url');
    await sessions.create({ idHash: hashToken(sessionId), principalName: t.name, role: t.role, credentialHash: t.credentialHash, ttlMs: sessionTtlSeconds * 1000, keepPerCredential: SESSIONS_PER_TOKEN });
    return { sessionId, principal: { name: t.name, role: t.role }, maxAgeSeconds: sessionTtlSeconds };
  }

  /** /ui/logout: the session is deleted on the server, not only forgotten by the browser. */
  async function closeSession(sessionId: string | undefined): Promise<void> {
    if (sessionId && sessions && sessionId.length <= 256) await sessions.delete(hashToken(sessionId));
  }

  return Object.assign(requireRole, { authenticate, identify, authenticated, openSession, closeSession, session, actAs, atLeast: (p: Principal, min: Role) => RANK[p.role] >= RANK[min] });
}

export const principalOf = (c: Context): Principal => (c.get('principal' as never) as Principal | undefined) ?? { name: 'anonymous', role: 'viewer' };

/** Which credential an agent endpoint takes: stage-1's boot token, the compute OS's node credential, or either. */
export type AgentScope = 'stage1' | 'node' | 'either';

export interface AgentAuthStore {
  get(uuid: string): Promise<NodeRow | null>;
  agentCredential(node: Pick<NodeRow, 'uuid' | 'credentialHash'>, token: string): Promise<AgentCredential>;
}

/** What a successful agent call records about its credential's use (after the response: see recordAgentUse). */
type AgentUse = { kind: 'stage1'; attempt: BootAttemptRow } | { kind: 'node'; uuid: string };
const AGENT_USE = 'agentCredentialUse';

/**
 * Middleware for /api/v1/agent/*: after a successful (2xx) agent call, slides its stage-1 attempt's expiry, or —
 * for a call with the node credential — closes the stage-1 attempts opened on the guess that the node was gone
 * (NodeStore.nodeCredentialUsed). After the response, so a rejected request writes nothing.
 */
export function recordAgentUse(nodes: { attemptUsed(id: number, seen?: Pick<BootAttemptRow, 'openedAt' | 'lastUsedAt'>): Promise<void>; nodeCredentialUsed(uuid: string): Promise<number> }): MiddlewareHandler {
  return async function agentUse(c, next) {
    await next();
    const use = c.get(AGENT_USE as never) as AgentUse | undefined;
    if (!use || c.res.status >= 300) return;
    if (use.kind === 'stage1') await nodes.attemptUsed(use.attempt.id, use.attempt);
    else await nodes.nodeCredentialUsed(use.uuid);
  };
}

/** The route recorded the credential's use itself (a buffered heartbeat): recordAgentUse writes nothing. */
export const agentUseRecorded = (c: Context) => c.set(AGENT_USE as never, undefined as never);

export interface AgentAuth {
  node: NodeRow;
  kind: 'stage1' | 'node';
  /** the stage-1 boot attempt (kind stage1) */
  attempt?: BootAttemptRow;
}

const SCOPE_TEXT: Record<Exclude<AgentScope, 'either'>, string> = {
  stage1: "the stage-1 endpoints take the boot attempt's stage-1 token, not the compute OS's node credential",
  node: "installed and heartbeats take the compute OS's node credential (issued with the profile), not a stage-1 boot token",
};

/**
 * The node an agent call is about, with its credential checked against `scope`. A caller without a token learns
 * nothing about whether the node exists (401 before 404). Reads only; recordAgentUse writes what a successful
 * call implies.
 */
export async function agentAuth(c: Context, nodes: AgentAuthStore, uuid: string, scope: AgentScope): Promise<AgentAuth> {
  const token = bearer(c);
  if (!token) throw new AppError(401, 'unauthorized', 'agent calls need the credential from the kernel command line (bootfarm.token=) as "Authorization: Bearer <token>"');
  const node = await nodes.get(uuid);
  if (!node) throw new AppError(404, 'not_found', `node ${uuid} not found`);
  const cred = await nodes.agentCredential(node, token);
  if (cred.kind === 'invalid') throw new AppError(403, 'forbidden', `not a valid credential for node ${uuid}: ${cred.why}`);
  if (scope !== 'either' && cred.kind !== scope) throw new AppError(403, 'forbidden', SCOPE_TEXT[scope]);
  if (cred.kind === 'node') {
    nodeCredentialAccepted(c, uuid);
    return { node, kind: 'node' };
  }
  c.set(AGENT_USE as never, { kind: 'stage1', attempt: cred.attempt } satisfies AgentUse as never);
  return { node, kind: 'stage1', attempt: cred.attempt };
}

/** The node credential of `uuid` was accepted (by agentAuth, or a heartbeat checked against a cached row):
 * recordAgentUse closes the node's guessed stage-1 attempts after a successful response. */
export const nodeCredentialAccepted = (c: Context, uuid: string) => c.set(AGENT_USE as never, { kind: 'node', uuid } satisfies AgentUse as never);

/** The node a stage-1 call (firmware, BMC setup, register …) is about, its boot token checked. */
export async function agentNode(c: Context, nodes: AgentAuthStore, uuid: string): Promise<NodeRow> {
  return (await agentAuth(c, nodes, uuid, 'stage1')).node;
}
