// The dashboard in-process: server-side filters and keyset pages on the fleet page, the forms' CSRF rule (session
// + the page's token + same origin + operator role, each refused on its own), no inline style anywhere (the CSP
// has no 'unsafe-inline'), and hostile node data rendered as text. The browser suite (test/ui/operator.test.ts)
// clicks through the same pages in Chromium.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb } from '../../test/fakes/db.ts';
import { createTestApp, TOKENS } from '../../test/fakes/app.ts';
import { uuidOf } from '../../test/fakes/fleet.ts';
import type { DbHandle } from '../db/index.ts';
import { csrfToken } from './auth.ts';
import { CSS_PATH } from './views/styles.ts';

let db: DbHandle;
let t: ReturnType<typeof createTestApp>;
const HOSTILE = '<script>alert(1)</script>';
const N = 230;

beforeAll(async () => {
  db = await createTestDb();
  t = createTestApp(db);
  for (let i = 0; i < N; i++) {
    const u = uuidOf(i, 'cccccccc');
    await t.nodes.enroll(u, { serial: `S${i}` }, 'test');
    await t.nodes.setLabels(u, { rack: `r${i % 3}` }, 'test');
    if (i % 10 === 0) await t.nodes.transition(u, { type: 'maintenance-on', reason: 'PSU swap' }, 'test');
  }
  await t.nodes.setLabels(uuidOf(1, 'cccccccc'), { note: HOSTILE }, 'test');
});
afterAll(async () => {
  await db?.close();
});

async function login(token: string) {
  const res = await t.app.request('/ui/login', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token }).toString() });
  const sid = /bootfarm_session=([^;]+)/.exec(res.headers.get('set-cookie') ?? '')![1]!;
  return { sid, cookie: `bootfarm_session=${sid}` };
}
const get = async (path: string, cookie: string) => {
  const res = await t.app.request(path, { headers: { cookie } });
  return { status: res.status, text: await res.text(), headers: res.headers };
};
const rowsOf = (html: string) => [...html.matchAll(/<tr data-uuid="([^"]+)" data-state="([^"]+)"/g)].map((m) => ({ uuid: m[1]!, state: m[2]! }));
const csrfIn = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)?.[1];

describe('fleet page', () => {
  it('pages through the fleet by keyset links, forwards and back, each node once', async () => {
    const { cookie } = await login(TOKENS.viewer);
    const seen: string[] = [];
    let path: string | undefined = '/ui?limit=100';
    const pages: string[] = [];
    while (path) {
      const r = await get(path, cookie);
      expect(r.status).toBe(200);
      pages.push(r.text);
      seen.push(...rowsOf(r.text).map((x) => x.uuid));
      path = /<a id="next" rel="next" href="([^"]+)"/.exec(r.text)?.[1]?.replaceAll('&amp;', '&');
    }
    expect(pages).toHaveLength(3);
    expect(seen).toHaveLength(N);
    expect(new Set(seen).size).toBe(N);
    expect(pages[2]).toContain('230 matching · 30 on this page');
    // the previous link of the last page leads to the second page
    const prev = /<a id="prev" rel="prev" href="([^"]+)"/.exec(pages[2]!)![1]!.replaceAll('&amp;', '&');
    expect(rowsOf((await get(prev, cookie)).text).map((x) => x.uuid)).toEqual(seen.slice(100, 200));
  });

  it('filters by state and label on the server and keeps the filters in the pager', async () => {
    const { cookie } = await login(TOKENS.viewer);
    const m = await get('/ui?state=maintenance', cookie);
    expect(rowsOf(m.text).map((r) => r.state)).toEqual(Array(23).fill('maintenance'));
    expect(m.text).toContain('23 matching');
    expect(m.text).toMatch(/<span data-state="maintenance"><a href="\/ui\?state=maintenance">maintenance<\/a> 23<\/span>/);
    const both = await get('/ui?state=maintenance&label=rack%3Dr1&limit=3', cookie);
    const rows = rowsOf(both.text);
    expect(rows).toHaveLength(3);
    expect(both.text).toContain('8 matching · 3 on this page');
    const next = /<a id="next" rel="next" href="([^"]+)"/.exec(both.text)![1]!.replaceAll('&amp;', '&');
    expect(next).toMatch(/^\/ui\?state=maintenance&label=rack%3Dr1&limit=3&after=/);
    // empty form fields mean "any"; nonsense is a 400 naming the field
    expect((await get('/ui?state=&label=', cookie)).status).toBe(200);
    const bad = await get('/ui?state=bogus', cookie);
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('state');
    expect((await get('/ui?after=not-a-uuid', cookie)).status).toBe(400);
  });

  it('renders a hostile label as text, and no page carries a style attribute or element', async () => {
    const { cookie } = await login(TOKENS.operator);
    const u = uuidOf(1, 'cccccccc');
    for (const path of ['/ui', `/ui/nodes/${u}`, '/ui/images', '/ui/login']) {
      const r = await get(path, cookie);
      expect(r.status, path).toBe(200);
      expect(r.text, path).not.toMatch(/<style|\sstyle=/i);
      expect(r.text, path).not.toContain('<script');
      expect(r.text, path).toContain(`<link rel="stylesheet" href="${CSS_PATH}"/>`);
      expect(r.headers.get('content-security-policy'), path).toBe("default-src 'none'; script-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'");
    }
    expect((await get(`/ui/nodes/${u}`, cookie)).text).toContain('note=&lt;script&gt;alert(1)&lt;/script&gt;');
    const css = await t.app.request(CSS_PATH);
    expect(css.status).toBe(200);
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8');
    expect(css.headers.get('cache-control')).toContain('immutable');
    expect(await css.text()).toContain('.st-maintenance{');
    expect((await t.app.request('/ui/static/other.css')).status).toBe(404);
  });
});

describe('forms: session, CSRF token, same origin, role', () => {
  const U = uuidOf(2, 'cccccccc');
  const post = (path: string, cookie: string, fields: Record<string, string>, headers: Record<string, string> = {}) =>
    t.app.request(path, { method: 'POST', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(fields).toString() });
  const stateOf = async () => (await t.nodes.require(U)).state;

  it('acts for an operator session that sends its own page token, and refuses every other combination', async () => {
    const op = await login(TOKENS.operator);
    const page = await get(`/ui/nodes/${U}`, op.cookie);
    const token = csrfIn(page.text)!;
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(token).not.toContain(op.sid);
    const other = await login(TOKENS.operator);
    const otherToken = csrfIn((await get(`/ui/nodes/${U}`, other.cookie)).text)!;
    expect(otherToken).not.toBe(token);
    const action = { action: 'maintenance-on', reason: 'csrf test' };

    // no session: back to the login, nothing done
    const anon = await post(`/ui/nodes/${U}/actions`, '', { ...action, _csrf: token });
    expect(anon.status).toBe(303);
    expect(anon.headers.get('location')).toBe('/ui/login');
    // no token, another session's token, a bearer token instead of the session: 403
    expect((await post(`/ui/nodes/${U}/actions`, op.cookie, action)).status).toBe(403);
    const mismatch = await post(`/ui/nodes/${U}/actions`, op.cookie, { ...action, _csrf: otherToken });
    expect(mismatch.status).toBe(403);
    // a refusal on a dashboard route is a page, with the code the API would send
    expect(mismatch.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await mismatch.text()).toMatch(/<p class="alert" role="alert" id="error" data-code="csrf_token_mismatch">the form&#39;s token does not belong to this session/);
    expect((await post(`/ui/nodes/${U}/actions`, '', { ...action, _csrf: token }, { authorization: `Bearer ${TOKENS.operator}` })).status).toBe(303);
    // the right token from another site (a browser says so in Sec-Fetch-Site): 403
    const cross = await post(`/ui/nodes/${U}/actions`, op.cookie, { ...action, _csrf: token }, { 'sec-fetch-site': 'cross-site' });
    expect(cross.status).toBe(403);
    expect(await cross.text()).toContain('Sec-Fetch-Site: cross-site');
    // nor can another site log the browser in (into the attacker's session)
    const crossLogin = await t.app.request('/ui/login', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'cross-site' }, body: new URLSearchParams({ token: TOKENS.operator }).toString() });
    expect(crossLogin.status).toBe(403);
    expect(crossLogin.headers.get('set-cookie')).toBeNull();
    // a JSON body is not a form
    const json = await t.app.request(`/ui/nodes/${U}/actions`, { method: 'POST', headers: { cookie: op.cookie, 'content-type': 'application/json' }, body: JSON.stringify({ ...action, _csrf: token }) });
    expect(json.status).toBe(415);
    // a viewer's session with its own valid token: 403 for the role
    const viewer = await login(TOKENS.viewer);
    const viewerPage = await get(`/ui/nodes/${U}`, viewer.cookie);
    expect(viewerPage.text).toContain('need the operator role');
    const vForbidden = await post(`/ui/nodes/${U}/actions`, viewer.cookie, { ...action, _csrf: csrfToken(viewer.sid) });
    expect(vForbidden.status).toBe(403);
    expect(await stateOf()).toBe('discovered');
    // the JSON API still ignores the cookie on POST, token or not
    const api = await t.app.request(`/api/v1/nodes/${U}/actions`, { method: 'POST', headers: { cookie: op.cookie, 'content-type': 'application/json' }, body: JSON.stringify(action) });
    expect(api.status).toBe(401);

    const ok = await post(`/ui/nodes/${U}/actions`, op.cookie, { ...action, _csrf: token }, { 'sec-fetch-site': 'same-origin' });
    expect(ok.status).toBe(303);
    expect(ok.headers.get('location')).toBe(`/ui/nodes/${U}?done=action-maintenance-on`);
    expect(await stateOf()).toBe('maintenance');
    const after = await get(ok.headers.get('location')!, op.cookie);
    expect(after.text).toContain('Action maintenance-on done.');
    expect(after.text).toMatch(/<td>maintenance-on<\/td>|csrf test/);
    const events = await t.nodes.events(U);
    expect(events.at(-1)).toMatchObject({ actor: 'ui:operator', reason: 'csrf test', toState: 'maintenance' });

    // a refused transition is shown on the page with its status, nothing written
    const again = await post(`/ui/nodes/${U}/actions`, op.cookie, { ...action, _csrf: token });
    expect(again.status).toBe(409);
    expect(await again.text()).toMatch(/role="alert"[^>]*>[^<]*maintenance/);
    // retire is an admin's action, also from the dashboard
    expect((await post(`/ui/nodes/${U}/actions`, op.cookie, { action: 'retire', _csrf: token })).status).toBe(403);
    // after logout the token is worth nothing
    await t.app.request('/ui/logout', { headers: { cookie: op.cookie } });
    const gone = await post(`/ui/nodes/${U}/actions`, op.cookie, { action: 'maintenance-off', _csrf: token });
    expect(gone.status).toBe(303);
    expect(gone.headers.get('location')).toBe('/ui/login');
    expect(await stateOf()).toBe('maintenance');
  });
});
