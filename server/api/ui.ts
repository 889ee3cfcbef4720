// The operator dashboard: server-rendered HTML (no client framework), every value escaped by hono's html
// template. /ui lists the fleet by state, /ui/nodes/:uuid shows one node's identity, interfaces, conflicts and
// event timeline. The token a person types at /ui/login opens a server-side session; the HttpOnly cookie carries
// only the session id and is honoured for GET only (server/api/auth.ts).
import { Hono } from 'hono';
import { html, raw } from 'hono/html';
import { secureHeaders } from 'hono/secure-headers';
import type { HtmlEscapedString } from 'hono/utils/html';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { NODE_STATES } from '../contract/lifecycle.ts';
import { SmbiosUuid } from '../contract/common.ts';
import type { Deps } from './deps.ts';
import { UI_COOKIE, type createAdminAuth } from './auth.ts';
import { createLoginLimiter, sourceAddress } from './login-limit.ts';
import { parseWith } from './validate.ts';
import { NodeListQuery } from './admin.ts';

export const STATE_COLORS: Record<string, string> = {
  discovered: '#90a4ae', inspecting: '#4fc3f7', 'firmware-updating': '#ffb74d', ready: '#81c784', provisioning: '#64b5f6',
  active: '#2e7d32', failed: '#e53935', rebuilding: '#fb8c00', quarantined: '#8e24aa', maintenance: '#6d4c41', retired: '#bdbdbd',
};

const CSS = `body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1200px;padding:0 16px;color:#212121}
nav a{margin-right:14px}h1{font-size:22px;margin:8px 0 16px}h2{font-size:17px;margin:24px 0 8px}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #e0e0e0;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#fafafa;font-weight:600}code,.mono{font-family:ui-monospace,monospace;font-size:12.5px}
.pill{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:12px}
.bar{display:flex;height:22px;border-radius:4px;overflow:hidden;margin:6px 0 4px}.bar span{display:block}
.legend span{margin-right:14px;font-size:12px}.warn{color:#c62828}.muted{color:#757575}
dl{display:grid;grid-template-columns:180px 1fr;gap:4px 12px}dt{color:#616161}`;

/** CSP and the usual headers for every dashboard page. The pages run no script at all (script-src 'none'); they
 * style themselves with a <style> element and style attributes (state colours, bar widths), hence 'unsafe-inline'
 * for styles only: every value in them is escaped, and default-src 'self' keeps an injected style from loading
 * anything from elsewhere. No framing (frame-ancestors 'none'), forms post only here, no Referer leaves. */
export function uiSecurityHeaders() {
  return secureHeaders({
    contentSecurityPolicy: {
      defaultSrc: ["'self'"],
      scriptSrc: ["'none'"],
      styleSrc: ["'self'", "'unsafe-inline'"],
      imgSrc: ["'self'", 'data:'],
      objectSrc: ["'none'"],
      baseUri: ["'none'"],
      formAction: ["'self'"],
      frameAncestors: ["'none'"],
    },
    xFrameOptions: 'DENY',
    xContentTypeOptions: 'nosniff',
    referrerPolicy: 'no-referrer',
    // HSTS is the TLS terminator's to send: this server speaks plain HTTP to iPXE on the same name
    strictTransportSecurity: false,
    // a page that sets its own, stricter policy keeps it (/ui/firmware: default-src 'none')
    overwrite: false,
  });
}

export function page(title: string, body: HtmlEscapedString | Promise<HtmlEscapedString>) {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · bootfarm</title><style>${raw(CSS)}</style></head>
<body><nav><a href="/ui">Fleet</a><a href="/ui/firmware">Firmware</a><a href="/api/v1/openapi.json">API</a><a href="/ui/logout">Log out</a></nav>
<h1>${title}</h1>${body}</body></html>`;
}

const pill = (state: string) => html`<span class="pill" style="background:${STATE_COLORS[state] ?? '#757575'}">${state}</span>`;
const ago = (d: Date | null | undefined, now: Date) => {
  if (!d) return '—';
  const s = Math.round((now.getTime() - new Date(d).getTime()) / 1000);
  return s < 120 ? `${s} s ago` : s < 7200 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
};

export function uiRoutes(deps: Deps, requireRole: ReturnType<typeof createAdminAuth>) {
  const app = new Hono();

  const limiter = createLoginLimiter({ ...deps.config.ui.login, clock: deps.clock });
  const loginForm = html`<form method="post" action="/ui/login"><p>API token (viewer or above):</p>
<input type="password" name="token" size="48" autocomplete="current-password" autofocus> <button>Log in</button></form>`;

  app.get('/login', (c) => c.html(page('Log in', loginForm)));
  app.post('/login', async (c) => {
    const from = sourceAddress(c);
    // checked before the token, so a blocked source learns nothing about the token it sends
    const wait = limiter.retryAfterSeconds(from);
    if (wait > 0) {
      c.header('retry-after', String(wait));
      return c.html(page('Log in', html`<p class="warn">Too many failed logins. Try again in ${wait} s.</p>`), 429);
    }
    const form = await c.req.parseBody();
    const token = typeof form.token === 'string' ? form.token.trim() : '';
    const session = token ? await requireRole.openSession(token) : null;
    if (!session) {
      limiter.failed(from);
      deps.log.info({ from }, 'dashboard login failed');
      return c.html(page('Log in', html`<p class="warn">That token is not valid.</p>${loginForm}`), 401);
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

  // a browser without a token is sent to the login form instead of getting a JSON 401
  app.use('*', async (c, next) => {
    try {
      await requireRole('viewer')(c, next);
    } catch (e) {
      if ((e as { status?: number }).status === 401) return c.redirect('/ui/login');
      throw e;
    }
  });

  app.get('/', async (c) => {
    const q = parseWith(NodeListQuery, c.req.query());
    const [counts, list, breaker] = await Promise.all([deps.nodes.countByState(), deps.nodes.list({ state: q.state, labels: q.label, limit: q.limit ?? 500 }), deps.fleetBreaker?.()]);
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    const now = deps.clock.now();
    const states = NODE_STATES.filter((s) => counts[s]);
    return c.html(
      page(
        'Fleet',
        html`${breaker?.open ? html`<p id="degraded" class="warn" role="alert"><strong>Fleet degraded: automatic repair is stopped</strong> since ${breaker.openedAt ? new Date(breaker.openedAt).toISOString() : '?'}: ${breaker.reason}. An operator resumes it: <code>bootfarm fleet resume</code>.</p>` : ''}<p>${total} nodes</p>
<div class="bar" role="img" aria-label="nodes by state">${states.map((s) => html`<span title="${s}: ${counts[s]}" style="width:${((counts[s]! / total) * 100).toFixed(2)}%;background:${STATE_COLORS[s]}"></span>`)}</div>
<div class="legend">${states.map((s) => html`<span><a href="/ui?state=${s}">${s}</a> ${counts[s]}</span>`)}</div>
<h2>${q.state ? `Nodes: ${q.state.join(', ')}` : 'Nodes'}</h2>
<table id="nodes"><thead><tr><th>Node</th><th>State</th><th>Since</th><th>Model</th><th>Serial</th><th>Image</th><th>Heartbeat</th><th>Labels</th></tr></thead><tbody>
${list.map(
  (n) => html`<tr data-uuid="${n.uuid}" data-state="${n.state}"><td><a href="/ui/nodes/${n.uuid}">${n.hostname ?? n.uuid}</a></td><td>${pill(n.state)}${n.stateReason ? html`<div class="muted">${n.stateReason}</div>` : ''}</td>
<td>${ago(n.stateSince, now)}</td><td>${[n.manufacturer, n.product].filter(Boolean).join(' ') || '—'}</td><td class="mono">${n.serial ?? '—'}</td>
<td>${n.imageName ? `${n.imageName}@${n.imageVersion ?? '?'}` : '—'}</td><td>${ago(n.lastHeartbeat, now)}</td><td class="mono">${Object.entries(n.labels).map(([k, v]) => `${k}=${v}`).join(' ')}</td></tr>`,
)}
</tbody></table>`,
      ),
    );
  });

  app.get('/nodes/:uuid', async (c) => {
    const uuid = parseWith(SmbiosUuid, c.req.param('uuid'));
    const node = await deps.nodes.require(uuid);
    const [facts, ifs, conflicts, bmc, events] = await Promise.all([deps.nodes.latestFacts(uuid), deps.nodes.interfaces(uuid), deps.nodes.conflicts(uuid), deps.bmcs.get(uuid), deps.nodes.events(uuid, { limit: 2000 })]);
    const f = (facts?.facts ?? {}) as { bios?: { vendor?: string; version?: string; releaseDate?: string } };
    const now = deps.clock.now();
    return c.html(
      page(
        node.hostname ?? uuid,
        html`<dl>
<dt>UUID</dt><dd class="mono">${uuid}</dd><dt>State</dt><dd>${pill(node.state)} ${node.stateReason ?? ''} <span class="muted">(${ago(node.stateSince, now)})</span></dd>
<dt>Model</dt><dd>${[node.manufacturer, node.product].filter(Boolean).join(' ') || '—'}</dd><dt>Serial</dt><dd class="mono">${node.serial ?? '—'}</dd>
<dt>BIOS</dt><dd>${f.bios ? `${f.bios.vendor ?? ''} ${f.bios.version ?? ''} (${f.bios.releaseDate ?? '?'})` : '—'}</dd>
<dt>Image</dt><dd>${node.imageName ? `${node.imageName}@${node.imageVersion}` : '—'} <span class="mono muted">${node.kernelDigest?.slice(0, 12) ?? ''}</span></dd>
<dt>Last heartbeat</dt><dd>${ago(node.lastHeartbeat, now)}</dd><dt>Rebuild attempts</dt><dd>${node.rebuildAttempts}</dd>
<dt>BMC</dt><dd>${bmc ? `${bmc.driver} ${bmc.address}${bmc.port ? `:${bmc.port}` : ''} as ${bmc.username}` : 'none enrolled'}</dd>
<dt>Labels</dt><dd class="mono">${Object.entries(node.labels).map(([k, v]) => `${k}=${v}`).join(' ') || '—'}</dd>
<dt>Facts</dt><dd><a href="/api/v1/nodes/${uuid}">JSON</a> ${facts ? html`<span class="muted">collected ${ago(facts.collectedAt, now)}; ${(facts.failures as unknown[]).length} probe failure(s)</span>` : ''}</dd></dl>
${conflicts.length ? html`<h2 class="warn">Identity conflicts</h2><ul>${conflicts.map((x) => html`<li class="warn">${x.kind} <code>${x.value}</code> is also claimed by <a href="/ui/nodes/${x.otherUuid}">${x.otherUuid}</a></li>`)}</ul>` : ''}
<h2>Interfaces</h2><table><thead><tr><th>MAC</th><th>Name</th><th>Driver / firmware</th><th>Switch</th><th>Port</th></tr></thead><tbody>
${ifs.map((i) => html`<tr><td class="mono">${i.mac}</td><td>${i.name ?? ''}</td><td>${i.driver ?? ''} ${i.firmwareVersion ?? ''}</td><td>${i.switchName ?? i.switchChassis ?? '—'}</td><td>${i.switchPortDescription ?? i.switchPort ?? '—'}</td></tr>`)}
</tbody></table>
<h2>Timeline</h2><table id="timeline"><thead><tr><th>Time</th><th>Kind</th><th>Change</th><th>Actor</th><th>Reason</th></tr></thead><tbody>
${events
  .slice()
  .reverse()
  .map((e) => html`<tr data-kind="${e.kind}"><td class="mono">${new Date(e.at).toISOString().replace('T', ' ').slice(0, 19)}</td><td>${e.kind}</td><td>${e.toState ? html`${e.fromState ?? '∅'} → ${pill(e.toState)}` : ''}</td><td>${e.actor}</td><td>${e.reason ?? ''}</td></tr>`)}
</tbody></table>`,
      ),
    );
  });
  return app;
}
