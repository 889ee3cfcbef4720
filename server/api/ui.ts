// The operator dashboard: server-rendered HTML in hono's JSX (server/api/views/*.tsx: every value escaped by the
// renderer, no client framework, no script). /ui is the fleet (filters by state and label, counts per state,
// keyset pages), /ui/nodes/:uuid one node (facts, NICs and switch ports, firmware, timeline, console, power and
// lifecycle actions), /ui/images the image channels (promote, roll back); /ui/firmware lives in api/firmware.ts.
//
// Who: the token a person types at /ui/login opens a server-side session; the HttpOnly, SameSite=Strict cookie
// carries only the session id. Pages (GET) take the cookie like the API does (server/api/auth.ts). The forms
// (POST /ui/…) take it only with the page's CSRF token in the `_csrf` field (auth.ts csrfToken) and a same-origin
// Sec-Fetch-Site when the browser sends one; they then call the same functions as the JSON API routes
// (runNodeAction, PowerControl, the image pipeline) and answer 303 back to the page. The JSON API itself never
// accepts the cookie for anything but GET/HEAD.
import { Hono, type Context } from 'hono';
import { secureHeaders } from 'hono/secure-headers';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { z } from 'zod';
import { SmbiosUuid } from '../contract/common.ts';
import { AppError } from '../errors.ts';
import { toAppError } from './errors.ts';
import type { Deps } from './deps.ts';
import { csrfMatches, csrfToken, principalOf, UI_COOKIE, type createAdminAuth, type Principal } from './auth.ts';
import { createLoginLimiter, sourceAddress } from './login-limit.ts';
import { parseWith, rejectBadStrings } from './validate.ts';
import { LabelFilter, NodeAction, NodeListQuery, nodeActionRole, runNodeAction } from './admin.ts';
import { audited } from './audit-context.ts';
import type { AuditIntent } from '../store/audit.ts';
import { PowerRequest, PromoteBody, RollbackBody } from './requests.ts';
import { CSS, CSS_PATH } from './views/styles.ts';
import { renderErrorPage } from './views/layout.tsx';
import { renderLoginPage } from './views/login.tsx';
import { renderFleetPage } from './views/fleet.tsx';
import { renderNodePage } from './views/node.tsx';
import { consoleLines, createConsoleStore } from '../store/console.ts';
import { renderImagesPage, type ImageSummary } from './views/images.tsx';
import { renderNetworksPage } from './views/networks.tsx';
import { networkView } from './ipam.ts';
import { rowView } from '../store/ipam.ts';

/** CSP and the usual headers for every dashboard page. The pages run no script (script-src 'none') and take their
 * styles only from the served stylesheet (style-src 'self': no <style>, no style attribute, so an injected one
 * does nothing); everything else is refused (default-src 'none'); the data: image is the empty favicon. No
 * framing, forms post only here, no Referer leaves. */
export function uiSecurityHeaders() {
  return secureHeaders({
    contentSecurityPolicy: {
      defaultSrc: ["'none'"],
      scriptSrc: ["'none'"],
      styleSrc: ["'self'"],
      imgSrc: ["'self'", 'data:'],
      baseUri: ["'none'"],
      formAction: ["'self'"],
      frameAncestors: ["'none'"],
    },
    xFrameOptions: 'DENY',
    xContentTypeOptions: 'nosniff',
    referrerPolicy: 'no-referrer',
    // HSTS is the TLS terminator's to send: this server speaks plain HTTP to iPXE on the same name
    strictTransportSecurity: false,
    overwrite: false,
  });
}

/** The fleet page's query: the API's state and label filters, a keyset cursor and a page size. A form sends empty
 * fields for "any"; those are dropped before this is checked. */
const FleetQuery = z.strictObject({
  state: NodeListQuery.shape.state,
  label: LabelFilter.optional(),
  after: SmbiosUuid.optional(),
  before: SmbiosUuid.optional(),
  limit: z.coerce.number().int().min(1).max(500).optional(),
});

/** What a form did, named in the redirect back (a fixed set: no text from the query reaches the page). */
const DONE: Record<string, string> = {
  ...Object.fromEntries(PowerRequest.shape.action.options.map((a) => [`power-${a}`, `Power ${a} sent to the BMC.`])),
  ...Object.fromEntries(NodeAction.shape.action.options.map((a) => [`action-${a}`, `Action ${a} done.`])),
  promoted: 'Promoted.',
  'rolled-back': 'Rolled back.',
};
const DoneQuery = z.object({ done: z.string().optional() });
const doneMessage = (c: Context) => {
  const d = parseWith(DoneQuery, c.req.query()).done;
  return d && Object.hasOwn(DONE, d) ? DONE[d]! : null;
};

const nonEmpty = (q: Record<string, string>) => Object.fromEntries(Object.entries(q).filter(([, v]) => v !== ''));

export function uiRoutes(deps: Deps, requireRole: ReturnType<typeof createAdminAuth>) {
  const app = new Hono();
  // errors on dashboard routes are pages with the same status, code and message the API would send as JSON
  app.onError(async (err, c) => {
    const e = toAppError(err);
    if (e.status >= 500) ((c.get('log' as never) as Deps['log'] | undefined) ?? deps.log).error({ err, path: c.req.path }, 'dashboard request failed');
    for (const [k, v] of Object.entries(e.headers ?? {})) c.header(k, v);
    const viewer = (c.get('principal' as never) as Principal | undefined) ?? null;
    return c.html(await renderErrorPage({ status: e.status, code: String(e.code), message: e.message, viewer }), e.status);
  });

  // the one stylesheet, public (the login page needs it) and immutable under its content-hashed name
  app.get('/static/:file', (c) => {
    if (c.req.path !== CSS_PATH) throw new AppError(404, 'not_found', `no such file: ${c.req.path}`);
    return c.body(CSS, 200, { 'content-type': 'text/css; charset=utf-8', 'cache-control': 'public, max-age=31536000, immutable' });
  });

  const limiter = createLoginLimiter({ ...deps.config.ui.login, clock: deps.clock });
  app.get('/login', async (c) => c.html(await renderLoginPage({})));
  /** A browser's word that a form came from another site (Sec-Fetch-Site, sent by every current browser). */
  const crossSite = (c: Context) => {
    const site = c.req.header('sec-fetch-site');
    return site && site !== 'same-origin' ? site.slice(0, 40) : null;
  };
  app.post('/login', async (c) => {
    // login CSRF: another site must not log a browser into a session of the attacker's choosing
    const site = crossSite(c);
    if (site) throw new AppError(403, 'forbidden', `log in from the dashboard's own login page (Sec-Fetch-Site: ${site})`);
    const from = sourceAddress(c);
    // checked before the token, so a blocked source learns nothing about the token it sends
    const wait = limiter.retryAfterSeconds(from);
    if (wait > 0) {
      c.header('retry-after', String(wait));
      return c.html(await renderLoginPage({ problem: `Too many failed logins. Try again in ${wait} s.` }), 429);
    }
    const form = await c.req.parseBody();
    const token = typeof form.token === 'string' ? form.token.trim() : '';
    const session = token ? await requireRole.openSession(token) : null;
    if (!session) {
      limiter.failed(from);
      deps.log.info({ from }, 'dashboard login failed');
      return c.html(await renderLoginPage({ problem: 'That token is not valid.' }), 401);
    }
    limiter.succeeded(from);
    deps.log.info({ from, principal: session.principal.name, role: session.principal.role }, 'dashboard login');
    // the cookie holds only the random session id; Secure whenever the browser reached us over TLS
    setCookie(c, UI_COOKIE, session.sessionId, { httpOnly: true, sameSite: 'Strict', path: '/', maxAge: session.maxAgeSeconds, secure: new URL(c.req.url).protocol === 'https:' });
    return c.redirect('/ui');
  });
  app.get('/logout', async (c) => {
    await requireRole.closeSession(getCookie(c, UI_COOKIE));
    deleteCookie(c, UI_COOKIE, { path: '/' });
    return c.redirect('/ui/login');
  });

  // Forms. Checked in this order, each before anything is parsed or written: a live session (else back to the
  // login), a same-origin request where the browser says where it came from, the page's CSRF token, the role.
  app.post('*', async (c, next) => {
    const s = await requireRole.session(c);
    if (!s) return c.redirect('/ui/login', 303);
    const site = crossSite(c);
    if (site) throw new AppError(403, 'forbidden', `a dashboard form must come from a dashboard page (Sec-Fetch-Site: ${site})`);
    const type = c.req.header('content-type') ?? '';
    if (!/^(application\/x-www-form-urlencoded|multipart\/form-data)\b/i.test(type)) throw new AppError(415, 'unsupported_media_type', `dashboard forms are application/x-www-form-urlencoded, not ${type.slice(0, 80) || 'no content type'}`);
    const form = await c.req.parseBody();
    if (!csrfMatches(s.sessionId, form._csrf)) throw new AppError(403, 'csrf_token_mismatch', "the form's token does not belong to this session: reload the page and try again");
    if (!requireRole.atLeast(s.principal, 'operator')) throw new AppError(403, 'forbidden', `this action needs the operator role; the session has ${s.principal.role}`);
    requireRole.actAs(c, s.principal);
    await next();
  });

  // a browser without a token is sent to the login form instead of getting a JSON 401
  app.use('*', async (c, next) => {
    try {
      await requireRole('viewer')(c, next);
    } catch (e) {
      if ((e as { status?: number }).status === 401) return c.redirect('/ui/login');
      throw e;
    }
  });

  const viewerOf = (c: Context): Principal => principalOf(c);
  /** The session's form token, or null for a page opened with a bearer token (it gets no forms). */
  const csrfOf = (c: Context) => {
    const sid = getCookie(c, UI_COOKIE);
    return sid && !c.req.header('authorization') ? csrfToken(sid) : null;
  };
  /** A form's fields, as strings; empty ones dropped (a select's "unchanged"), bad characters refused. */
  const formOf = async (c: Context) => {
    const form = await c.req.parseBody();
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(form)) if (k !== '_csrf' && typeof v === 'string' && v !== '') out[k] = v;
    rejectBadStrings(out, 'form');
    return out;
  };
  /** A refusal worth showing on the page the operator is on (the BMC said no or is unreachable, a transition or a
   * gate refused): its status; null for anything else, which goes to the app's error handler. */
  const shownStatus = (err: unknown) => {
    const e = toAppError(err);
    return (e.status >= 400 && e.status < 500 && e.status !== 404) || e.status === 502 || e.status === 503 || e.status === 504 ? e.status : null;
  };

  app.get('/', async (c) => {
    const q = parseWith(FleetQuery, nonEmpty(c.req.query()));
    const filter = { state: q.state, labels: q.label };
    const filtered = !!(q.state?.length || (q.label && Object.keys(q.label).length));
    const [counts, page, breaker] = await Promise.all([deps.nodes.countByState(), deps.nodes.listPage(filter, { after: q.after, before: q.before, limit: q.limit ?? 100 }), deps.fleetBreaker?.()]);
    const matching = filtered ? await deps.nodes.count(filter) : Object.values(counts).reduce((a, b) => a + b, 0);
    return c.html(await renderFleetPage({ viewer: viewerOf(c), counts, filters: { state: q.state, label: q.label, limit: q.limit }, matching, page, breaker, now: deps.clock.now() }));
  });

  /** The timeline shows this many events, newest first. */
  const TIMELINE = 200;
  const CONSOLE_LINES = 40;
  const consoles = deps.consoles ?? createConsoleStore(deps.db.db, { clock: deps.clock });
  async function nodePage(c: Context, uuid: string, flash: { ok?: string | null; error?: string | null }, status = 200) {
    const node = await deps.nodes.require(uuid);
    // the newest page of the timeline, straight from the store (keyset pagination, newest first)
    const [facts, ifs, conflicts, bmc, events, firmware, tail] = await Promise.all([
      deps.nodes.latestFacts(uuid),
      deps.nodes.interfaces(uuid),
      deps.nodes.conflicts(uuid),
      deps.bmcs.get(uuid),
      deps.nodes.eventsPage(uuid, { limit: TIMELINE }),
      deps.firmwareCompliance?.(uuid) ?? null,
      // the end of the console: enough for the last screenful of lines
      consoles.tail(uuid, { bytes: 8192 }),
    ]);
    const viewer = viewerOf(c);
    const newest = events.rows;
    const html = await renderNodePage({
      viewer,
      node,
      facts,
      interfaces: ifs,
      conflicts,
      bmc: bmc ? { driver: bmc.driver, address: bmc.address, port: bmc.port ?? null, username: bmc.username } : null,
      events: newest,
      moreEvents: events.nextCursor !== null,
      now: deps.clock.now(),
      csrf: csrfOf(c),
      canOperate: requireRole.atLeast(viewer, 'operator'),
      isAdmin: requireRole.atLeast(viewer, 'admin'),
      power: !!deps.power,
      firmware,
      flash,
      console: { lines: consoleLines(tail.text).slice(-CONSOLE_LINES), bootAt: tail.bootAt },
    });
    return c.html(html, status as 200);
  }

  app.get('/nodes/:uuid', async (c) => nodePage(c, parseWith(SmbiosUuid, c.req.param('uuid')), { ok: doneMessage(c) }));

  app.post('/nodes/:uuid/power', async (c) => {
    const uuid = parseWith(SmbiosUuid, c.req.param('uuid'));
    const body = parseWith(PowerRequest, await formOf(c), 400, 'form');
    if (!deps.power) throw new AppError(409, 'not_configured', 'this server has no power control');
    try {
      await audited(c, `node.power.${body.action}`, { kind: 'node', id: uuid }, (audit) => deps.power!.act(uuid, body, `ui:${viewerOf(c).name}`, audit));
    } catch (e) {
      const status = shownStatus(e);
      if (status === null) throw e;
      return nodePage(c, uuid, { error: toAppError(e).message }, status);
    }
    return c.redirect(`/ui/nodes/${uuid}?done=power-${body.action}`, 303);
  });

  app.post('/nodes/:uuid/actions', async (c) => {
    const uuid = parseWith(SmbiosUuid, c.req.param('uuid'));
    const body = parseWith(NodeAction, await formOf(c), 400, 'form');
    const viewer = viewerOf(c);
    if (!requireRole.atLeast(viewer, nodeActionRole(body.action))) throw new AppError(403, 'forbidden', `${body.action} needs the ${nodeActionRole(body.action)} role; the session has ${viewer.role}`);
    try {
      await audited(c, `node.${body.action}`, { kind: 'node', id: uuid }, (audit) => runNodeAction(deps, uuid, body, `ui:${viewer.name}`, audit));
    } catch (e) {
      const status = shownStatus(e);
      if (status === null) throw e;
      return nodePage(c, uuid, { error: toAppError(e).message }, status);
    }
    return c.redirect(`/ui/nodes/${uuid}?done=action-${body.action}`, 303);
  });

  async function imagesPage(c: Context, flash: { ok?: string | null; error?: string | null }, status = 200) {
    const p = deps.imageChannels;
    let images: ImageSummary[] | null = null;
    if (p) {
      const list = await p.list();
      images = await Promise.all(list.map(async (i) => ({ name: i.name, versions: i.versions, latest: i.latest, channels: i.channels, history: await p.history(i.name, undefined, 10) })));
    }
    const viewer = viewerOf(c);
    const html = await renderImagesPage({ viewer, images, channels: p?.channels ?? [], csrf: csrfOf(c), canOperate: requireRole.atLeast(viewer, 'operator'), flash });
    return c.html(html, status as 200);
  }

  app.get('/images', async (c) => imagesPage(c, { ok: doneMessage(c) }));

  // IPAM (issue 16 item 1), read only: the networks and every address held
  app.get('/networks', async (c) => {
    if (!deps.ipam) throw new AppError(409, 'not_configured', 'this server has no IPAM store');
    const [networks, allocations] = await Promise.all([deps.ipam.listNetworks(), deps.ipam.allocations()]);
    return c.html(await renderNetworksPage({ viewer: viewerOf(c), networks: networks.map(networkView), allocations: allocations.map(rowView) }));
  });

  const imageForm = <S extends z.ZodType>(schema: S, act: (p: NonNullable<Deps['imageChannels']>, name: string, body: z.output<S>, actor: string, audit: AuditIntent) => Promise<unknown>, done: string) =>
    async function imageAction(c: Context) {
      const body = parseWith(schema, await formOf(c), 400, 'form');
      const p = deps.imageChannels;
      if (!p) throw new AppError(409, 'not_configured', 'this server has no image pipeline');
      try {
        const name = c.req.param('name')!;
        await audited(c, `image.${done === 'promoted' ? 'promote' : 'rollback'}`, { kind: 'image', id: name }, (audit) => act(p, name, body, `ui:${viewerOf(c).name}`, audit));
      } catch (e) {
        const status = shownStatus(e) ?? (toAppError(e).status === 404 ? 404 : null);
        if (status === null) throw e;
        return imagesPage(c, { error: toAppError(e).message }, status);
      }
      return c.redirect(`/ui/images?done=${done}`, 303);
    };
  // force (skipping failed gates) stays an admin's API call: the form never sends it
  app.post('/images/:name/promote', imageForm(PromoteBody.omit({ force: true }), (p, name, b, actor, audit) => p.promote({ name, ...b, actor, audit }), 'promoted'));
  app.post('/images/:name/rollback', imageForm(RollbackBody, (p, name, b, actor, audit) => p.rollback({ name, ...b, actor, audit }), 'rolled-back'));

  return app;
}
