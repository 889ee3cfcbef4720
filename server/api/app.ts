// The hono app: composition of the boot, agent and admin routes with request ids, JSON logs, body limits,
// health endpoints and one error handler. Areas mount their own sub-apps through `extra`.
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { requestId } from 'hono/request-id';
import { Registry } from 'prom-client';
import { AppError } from '../errors.ts';
import { adminRoutes } from './admin.ts';
import { agentRoutes } from './agent.ts';
import { bearer, createAdminAuth, recordAgentUse } from './auth.ts';
import { bootRoutes } from './boot.ts';
import { BOOT_BINARY_PATH, bootFileRoutes } from './bootfiles.ts';
import { missingSecureBootFile } from '../secure-boot.ts';
import { clientAddressResolver, resolveClient, staleRequestGuard, trustedNetworks } from './trusted.ts';
import { rateLimit } from './ratelimit.ts';
import { baseUrlOf } from './url.ts';
import { renderRetryScript } from '../../boot/ipxe/script.ts';
import { renderGrubRetryConfig } from '../../boot/grub/script.ts';
import { uiRoutes, uiSecurityHeaders } from './ui.ts';
import { createSessionStore } from '../store/sessions.ts';
import { createTokenStore } from '../store/tokens.ts';
import { TOKEN_ROUTES, tokenRoutes } from './tokens.ts';
import { createAuditStore } from '../store/audit.ts';
import { AUDIT_ROUTES, auditRoutes } from './audit.ts';
import { createCablingStore } from '../store/cabling.ts';
import { CABLING_ROUTES, cablingRoutes } from './cabling.ts';
import { createIpamStore } from '../store/ipam.ts';
import { IPAM_ROUTES, ipamRoutes } from './ipam.ts';
import { provideAudit } from './audit-context.ts';
import type { Deps } from './deps.ts';
import { createErrorHandler, errorResponse } from './errors.ts';
import { cleanRequest } from './validate.ts';
import { CORE_ROUTES, openApiDocument, type RouteDoc } from './openapi.ts';
import { createHttpMetrics } from './http-metrics.ts';

export type RequireRole = ReturnType<typeof createAdminAuth>;

export interface Mount {
  /** path prefix, e.g. '/api/v1' or '/' */
  at: string;
  app: Hono;
  docs?: RouteDoc[];
  /** paths (full, from '/') whose routes apply their own body limit instead of http.bodyLimitBytes */
  ownBodyLimit?: RegExp;
}

/** Routes anyone (or a node with its boot token) may call; everything else needs an API token, and a bad request
 * to it from a caller without one is answered 401, not 400. */
export function isPublicPath(path: string): boolean {
  return (
    path === '/' ||
    path === '/boot.ipxe' ||
    path.startsWith('/ipxe/') ||
    path.startsWith('/grub/') ||
    path.startsWith('/api/v1/agent/') ||
    path.startsWith('/images/') ||
    path.startsWith('/ui/static/') ||
    BOOT_BINARY_PATH.test(path) ||
    ['/healthz', '/readyz', '/metrics', '/api/v1/openapi.json', '/ui/login', '/ui/logout'].includes(path)
  );
}

export function createApp(deps: Deps, { extra = [] as ((requireRole: RequireRole) => Mount)[] } = {}) {
  const app = new Hono();
  // API tokens: the configured ones (in memory) and the database's (server/store/tokens.ts, shared by every replica)
  const tokenStore = createTokenStore(deps.db.db, { clock: deps.clock });
  const requireRole = createAdminAuth(deps.config.auth.tokens, { sessions: createSessionStore(deps.db.db, { clock: deps.clock }), sessionTtlSeconds: deps.config.ui.sessionTtlSeconds, tokenStore });
  const metrics = deps.metrics ?? new Registry();
  const audit = deps.audit ?? createAuditStore(deps.db.db, { clock: deps.clock });
  const cabling = deps.cabling ?? createCablingStore(deps.db.db, { clock: deps.clock });
  const ipam = deps.ipam ?? createIpamStore(deps.db.db, { clock: deps.clock });
  const recordRequest = createHttpMetrics(metrics);

  app.use(requestId({ headerName: 'x-request-id' }));
  app.use(provideAudit(audit));
  app.use(async function accessLog(c, next) {
    const log = deps.log.child({ reqId: c.get('requestId') });
    c.set('log' as never, log as never);
    const t0 = performance.now();
    await next();
    const elapsed = performance.now() - t0;
    recordRequest(c.req.path, c.res.status, elapsed / 1000);
    const ms = Math.round(elapsed * 10) / 10;
    const line = { method: c.req.method, path: c.req.path, status: c.res.status, ms };
    if (c.res.status >= 500) log.warn(line, 'request');
    else log.debug(line, 'request');
  });
  // a node's request that sat in a paused or stalled replica past its client's patience does nothing (trusted.ts)
  const stale = staleRequestGuard({ trustedProxies: deps.config.http.trustedProxies, maxAgeSeconds: deps.config.http.maxRequestAgeSeconds, now: () => deps.clock.now().getTime() });
  for (const path of ['/boot.ipxe', '/ipxe/*', '/grub/*', '/api/v1/agent/*']) app.use(path, stale);
  // admin surface (issue 13 item 6): 401 before any route reads the path, query or body, so an unauthenticated
  // caller cannot tell a bad request from a good one, nor an existing node from a missing one; the dashboard
  // gets its CSP and security headers; /metrics optionally needs a viewer token
  // the client address: the peer, or behind a trusted proxy its X-Forwarded-For (server/api/trusted.ts)
  const clientAddress = clientAddressResolver(deps.config.http.trustedProxies, {
    onUntrustedForward: (peer) =>
      deps.log.warn(
        { peer },
        `requests from ${peer} carry X-Forwarded-For but ${peer} is not in http.trustedProxies: if it is a load balancer, every client behind it is seen as ${peer} (one shared per-source rate limit, boot.trustedNetworks judges the balancer); list it in http.trustedProxies`,
      ),
  });
  const bootNetwork = trustedNetworks(deps.config.boot.trustedNetworks, clientAddress);
  app.use('/api/v1/*', async function adminGate(c, next) {
    if (c.req.path === '/api/v1/openapi.json') return next();
    // agent calls: which node's token is valid is known only once the route has found the node, but a call with
    // no token at all is refused here (after the boot-network check), before the UUID or body is looked at
    if (c.req.path.startsWith('/api/v1/agent/')) {
      return bootNetwork(c, async () => {
        if (!bearer(c)) throw new AppError(401, 'unauthorized', 'agent calls need the node\'s token as "Authorization: Bearer <token>"');
        await next();
      });
    }
    return requireRole.authenticated(c, next);
  });
  app.use('/ui/*', uiSecurityHeaders()); // also matches /ui itself
  app.use('/ui/*', async function uiSession(c, next) {
    // who a dashboard request comes from, looked up once here, so that input checks below know a logged-in
    // browser (400 for a bad query) from a stranger (401); the pages themselves redirect strangers to the login
    await requireRole.identify(c).catch(() => null);
    await next();
  });
  if (deps.config.metrics.requireToken) app.use('/metrics', requireRole('viewer'));
  const tooLarge = (c: Context) => errorResponse(c, new AppError(413, 'payload_too_large', `request body exceeds ${deps.config.http.bodyLimitBytes} bytes`));
  const slowLimit = bodyLimit({ maxSize: deps.config.http.bodyLimitBytes, onError: tooLarge });
  // hono's bodyLimit begins with `c.req.raw.body`, which makes @hono/node-server build a whole web Request (undici,
  // a ReadableStream, an AbortController) for every request: 13 % of a heartbeat's CPU in the bench-api profile.
  // With a Content-Length and no Transfer-Encoding that header is all it then decides on, and a GET or HEAD without
  // either has no body (Fetch: a GET/HEAD Request cannot carry one), so both are answered from the headers here, by
  // the same rule; a chunked body still goes through it and is counted as it is read.
  const limitBody: MiddlewareHandler = async function limitBody(c, next) {
    const length = c.req.header('content-length');
    if (c.req.header('transfer-encoding') === undefined) {
      if (length !== undefined) return Number.parseInt(length || '0', 10) > deps.config.http.bodyLimitBytes ? tooLarge(c) : next();
      if (c.req.method === 'GET' || c.req.method === 'HEAD') return next();
    }
    return slowLimit(c, next);
  };
  // filled below as the areas mount (e.g. image upload chunks: an S3 part is at least 5 MiB)
  const ownBodyLimits: RegExp[] = [];
  app.use(async function bodyLimits(c, next) {
    if (ownBodyLimits.some((re) => re.test(c.req.path))) return next();
    return limitBody(c, next);
  });
  app.onError(createErrorHandler(deps.log));
  app.use(
    cleanRequest({
      isPublic: isPublicPath,
      // a bearer token or a dashboard session, as the routes themselves will see it
      isAuthenticated: async (c) => (await requireRole.identify(c)) !== null,
    }),
  );
  app.notFound((c) => errorResponse(c, new AppError(404, 'not_found', `no route for ${c.req.method} ${c.req.path}`)));

  app.get('/healthz', (c) => c.json({ ok: true }));
  app.get('/readyz', async (c) => {
    try {
      await deps.db.ping();
      return c.json({ ok: true, db: deps.db.kind });
    } catch {
      return errorResponse(c, new AppError(503, 'unavailable', 'database unreachable', { db: deps.db.kind }, { 'retry-after': '5' }));
    }
  });
  app.get('/metrics', async (c) => c.text(await metrics.metrics(), 200, { 'content-type': metrics.contentType }));

  // the boot network boundary, then per-source limits (server/api/trusted.ts, ratelimit.ts)
  app.use(resolveClient(clientAddress));
  // agent calls passed the same check in adminGate above
  // the GRUB configs of the Secure Boot path are the same boot scripts in another language: same boundary and limits
  for (const path of ['/boot.ipxe', '/ipxe/*', '/grub/*']) app.use(path, bootNetwork);
  // the iPXE binary for UEFI HTTP boot comes from the boot network too, like the scripts it then fetches
  app.use(async function bootBinaryNetwork(c, next) {
    return BOOT_BINARY_PATH.test(c.req.path) ? bootNetwork(c, next) : next();
  });
  const { rateLimit: limits } = deps.config.boot;
  const ipxeLimited = rateLimit(limits.ipxe, {
    clock: deps.clock,
    clientAddress,
    maxSources: limits.maxSources,
    onLimited: (c, seconds) => {
      let base: string;
      try {
        base = baseUrlOf(c, deps.config);
      } catch {
        return errorResponse(c, new AppError(429, 'rate_limited', `too many boot requests; try again in ${seconds} s`, undefined, { 'retry-after': String(seconds) }));
      }
      const message = 'busy: too many boot requests from this address';
      const body = c.req.path.startsWith('/grub/') ? renderGrubRetryConfig({ message, seconds, retryUrl: `${base}/grub/grub.cfg` }) : renderRetryScript({ message, seconds, retryUrl: `${base}/boot.ipxe` });
      return new Response(body, {
        headers: { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', 'retry-after': String(seconds) },
      });
    },
  });
  for (const path of ['/boot.ipxe', '/ipxe/*', '/grub/*']) app.use(path, ipxeLimited);
  app.use('/api/v1/agent/*', rateLimit(limits.agent, { clock: deps.clock, clientAddress, maxSources: limits.maxSources }));
  // after a successful agent call: slide the stage-1 token's expiry, or close guessed attempts (docs/security-model.md)
  app.use('/api/v1/agent/*', recordAgentUse(deps.nodes));
  app.route('/', bootRoutes(deps));
  if (deps.bootFiles) app.route('/', bootFileRoutes({ open: deps.bootFiles, log: deps.log, missing: (name) => missingSecureBootFile(deps.config, name) }));
  app.route('/api/v1/agent', agentRoutes({ ...deps, cabling, ipam }));
  app.route('/api/v1', adminRoutes(deps, requireRole));
  app.route('/api/v1', auditRoutes(audit, requireRole));
  app.route('/api/v1', cablingRoutes({ store: cabling }, requireRole));
  app.route('/api/v1', ipamRoutes({ store: ipam }, requireRole));
  app.route('/ui', uiRoutes({ ...deps, ipam }, requireRole));
  app.route('/', tokenRoutes({ store: tokenStore, clock: deps.clock, configured: deps.config.auth.tokens }, requireRole));
  app.get('/', (c) => c.redirect('/ui'));

  const docs = [...CORE_ROUTES, ...TOKEN_ROUTES, ...AUDIT_ROUTES, ...CABLING_ROUTES, ...IPAM_ROUTES].map((r) => (r.path === '/metrics' && deps.config.metrics.requireToken ? { ...r, auth: 'viewer' as const } : r));
  for (const mk of extra) {
    const m = mk(requireRole);
    app.route(m.at, m.app);
    docs.push(...(m.docs ?? []));
    if (m.ownBodyLimit) ownBodyLimits.push(m.ownBodyLimit);
  }
  const doc = openApiDocument(docs);
  app.get('/api/v1/openapi.json', (c) => c.json(doc));
  return app;
}
