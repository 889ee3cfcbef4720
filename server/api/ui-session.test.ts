// The dashboard's login as an attacker and an operator meet it (issue 13 item 6): server-side sessions whose
// cookie is only a random id, expiry and logout on the server, revocation with the token, login rate limits on an
// injected clock, the dashboard's security headers and /metrics behind a token when configured.
import { createHash } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb } from '../../test/fakes/db.ts';
import { createTestApp, testConfig, TOKENS } from '../../test/fakes/app.ts';
import { FakeClock } from '../clock.ts';
import type { DbHandle } from '../db/index.ts';
import { uiSessions } from '../db/schema/index.ts';
import { UI_COOKIE } from './auth.ts';

let db: DbHandle;
beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await db?.close();
});

type App = ReturnType<typeof createTestApp>['app'];
/** a request as if from `from` over a real socket (what @hono/node-server hands the app) */
const fromAddr = (from: string) => ({ incoming: { socket: { remoteAddress: from, remotePort: 40000, remoteFamily: 'IPv4' } } });

async function login(app: App, token: string, { from = '192.0.2.10', url = 'http://bootfarm.test/ui/login' } = {}) {
  return app.request(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token }).toString() }, fromAddr(from));
}
const sessionOf = (res: Response) => /bootfarm_session=([^;]+)/.exec(res.headers.get('set-cookie') ?? '')?.[1];
const withCookie = (sid: string, method = 'GET') => ({ method, headers: { cookie: `${UI_COOKIE}=${sid}` } });
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

describe('sessions', () => {
  it('login opens a server-side session: the cookie is a random id (HttpOnly, SameSite=Strict), the table keeps its hash', async () => {
    const { app } = createTestApp(db);
    const res = await login(app, TOKENS.operator);
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/ui');
    const cookie = res.headers.get('set-cookie')!;
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(cookie).not.toMatch(/Secure/); // plain HTTP: a Secure cookie would never come back
    const sid = sessionOf(res)!;
    expect(sid).toMatch(/^[A-Za-z0-9_-]{43}$/); // 32 random bytes
    expect(cookie).not.toContain(TOKENS.operator);
    const rows = await db.db.select().from(uiSessions).where(eq(uiSessions.idHash, sha256(sid)));
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ principalName: 'operator', role: 'operator', credentialHash: sha256(TOKENS.operator) });
    expect(JSON.stringify(await db.db.select().from(uiSessions))).not.toContain(sid);

    expect((await app.request('/ui', withCookie(sid))).status).toBe(200);
    expect((await app.request('/api/v1/nodes', withCookie(sid))).status).toBe(200);
    // the cookie cannot change anything (no CSRF), even for an operator's session
    const post = await app.request('/api/v1/nodes/aaaaaaaa-0000-0000-0000-000000000001/actions', { ...withCookie(sid, 'POST'), body: JSON.stringify({ action: 'fail' }) });
    expect(post.status).toBe(401);
    // the raw token is not a session id
    expect((await app.request('/api/v1/nodes', withCookie(TOKENS.operator))).status).toBe(401);
  });

  it('input checks know a logged-in browser: a NUL in the query is its 400, a stranger\'s 401', async () => {
    const { app } = createTestApp(db);
    const sid = sessionOf(await login(app, TOKENS.viewer))!;
    const mine = await app.request('/ui?state=%00', withCookie(sid));
    expect(mine.status).toBe(400);
    expect((await app.request('/ui?state=%00', withCookie('forged-session-id'))).status).toBe(401);
    expect((await app.request('/api/v1/nodes?state=%00', withCookie(sid))).status).toBe(400);
    expect((await app.request('/api/v1/nodes?state=%00')).status).toBe(401);
  });

  it('the cookie is Secure when the browser came over TLS', async () => {
    const { app } = createTestApp(db);
    const res = await login(app, TOKENS.viewer, { url: 'https://bootfarm.test/ui/login' });
    expect(res.status).toBe(302);
    expect(res.headers.get('set-cookie')).toMatch(/; Secure/);
  });

  it('logout deletes the session on the server: the old cookie is worthless afterwards', async () => {
    const { app } = createTestApp(db);
    const sid = sessionOf(await login(app, TOKENS.viewer))!;
    expect((await app.request('/api/v1/nodes', withCookie(sid))).status).toBe(200);
    const out = await app.request('/ui/logout', withCookie(sid));
    expect(out.status).toBe(302);
    expect(out.headers.get('set-cookie')).toMatch(/bootfarm_session=;.*Max-Age=0/);
    expect(await db.db.select().from(uiSessions).where(eq(uiSessions.idHash, sha256(sid)))).toHaveLength(0);
    expect((await app.request('/api/v1/nodes', withCookie(sid))).status).toBe(401);
    const ui = await app.request('/ui', withCookie(sid));
    expect(ui.status).toBe(302);
    expect(ui.headers.get('location')).toBe('/ui/login');
  });

  it('a session expires after ui.sessionTtlSeconds on the clock, and expired rows are dropped at the next login', async () => {
    const clock = new FakeClock('2026-03-01T00:00:00Z');
    const { app } = createTestApp(db, { clock, config: testConfig({ ui: { sessionTtlSeconds: 3600 } }) });
    const res = await login(app, TOKENS.viewer);
    expect(res.headers.get('set-cookie')).toMatch(/Max-Age=3600/);
    const sid = sessionOf(res)!;
    clock.advance(3599_000);
    expect((await app.request('/api/v1/nodes', withCookie(sid))).status).toBe(200);
    clock.advance(1000);
    expect((await app.request('/api/v1/nodes', withCookie(sid))).status).toBe(401);
    await login(app, TOKENS.viewer);
    expect(await db.db.select().from(uiSessions).where(eq(uiSessions.idHash, sha256(sid)))).toHaveLength(0);
  });

  it('removing a token from the configuration (or changing its role) ends the sessions it opened', async () => {
    const { app } = createTestApp(db);
    const sid = sessionOf(await login(app, TOKENS.operator))!;
    const tokensWithout = (drop: string, extra: { name: string; role: string; token: string }[] = []) => ({
      auth: { tokens: [...Object.entries(TOKENS).filter(([r]) => r !== drop).map(([role, token]) => ({ name: role, role, token })), ...extra] },
    });
    const revoked = createTestApp(db, { config: testConfig(tokensWithout('operator')) }).app;
    expect((await revoked.request('/api/v1/nodes', withCookie(sid))).status).toBe(401);
    const demoted = createTestApp(db, { config: testConfig(tokensWithout('operator', [{ name: 'operator', role: 'viewer', token: TOKENS.operator }])) }).app;
    expect((await demoted.request('/api/v1/nodes', withCookie(sid))).status).toBe(401);
    expect((await app.request('/api/v1/nodes', withCookie(sid))).status).toBe(200);
  });

  it('a token holder logging in in a loop keeps at most 50 sessions', async () => {
    const clock = new FakeClock('2026-03-01T12:00:00Z');
    const { app } = createTestApp(db, { clock });
    const first = sessionOf(await login(app, TOKENS.admin))!;
    for (let i = 0; i < 55; i++) {
      clock.advance(1000);
      expect((await login(app, TOKENS.admin)).status).toBe(302);
    }
    expect(await db.db.select().from(uiSessions).where(eq(uiSessions.credentialHash, sha256(TOKENS.admin)))).toHaveLength(50);
    expect((await app.request('/api/v1/nodes', withCookie(first))).status).toBe(401);
  });
});

describe('login rate limit', () => {
  it('blocks an address after ui.login.perAddress failures with 429 + Retry-After, even for a valid token, until the window passes', async () => {
    const clock = new FakeClock('2026-03-02T00:00:00Z');
    const { app } = createTestApp(db, { clock, config: testConfig({ ui: { login: { perAddress: { failures: 3, windowSeconds: 60 } } } }) });
    for (let i = 0; i < 3; i++) {
      clock.advance(1000);
      expect((await login(app, `wrong-token-${i}-0123456789`, { from: '198.51.100.7' })).status).toBe(401);
    }
    const blocked = await login(app, TOKENS.viewer, { from: '198.51.100.7' });
    expect(blocked.status).toBe(429);
    // the first failure was at +1 s, now is +3 s: it leaves the 60 s window in 58 s
    expect(blocked.headers.get('retry-after')).toBe('58');
    expect(blocked.headers.get('set-cookie')).toBeNull();
    expect(await blocked.text()).toContain('Too many failed logins');
    // another address is not affected
    expect((await login(app, TOKENS.viewer, { from: '198.51.100.8' })).status).toBe(302);
    clock.advance(57_000);
    expect((await login(app, TOKENS.viewer, { from: '198.51.100.7' })).status).toBe(429);
    clock.advance(1000);
    expect((await login(app, TOKENS.viewer, { from: '198.51.100.7' })).status).toBe(302);
  });

  it('blocks every address once ui.login.global failures happened, whoever made them', async () => {
    const clock = new FakeClock('2026-03-03T00:00:00Z');
    const { app } = createTestApp(db, { clock, config: testConfig({ ui: { login: { perAddress: { failures: 100, windowSeconds: 60 }, global: { failures: 5, windowSeconds: 120 } } } }) });
    for (let i = 0; i < 5; i++) expect((await login(app, 'wrong-token-0123456789', { from: `203.0.113.${i + 1}` })).status).toBe(401);
    const res = await login(app, TOKENS.viewer, { from: '203.0.113.200' });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('120');
    clock.advance(120_000);
    expect((await login(app, TOKENS.viewer, { from: '203.0.113.200' })).status).toBe(302);
  });

  it('a successful login clears its address\'s failures', async () => {
    const clock = new FakeClock('2026-03-04T00:00:00Z');
    const { app } = createTestApp(db, { clock, config: testConfig({ ui: { login: { perAddress: { failures: 2, windowSeconds: 600 } } } }) });
    expect((await login(app, 'wrong-token-0123456789', { from: '192.0.2.50' })).status).toBe(401);
    expect((await login(app, TOKENS.viewer, { from: '192.0.2.50' })).status).toBe(302);
    expect((await login(app, 'wrong-token-0123456789', { from: '192.0.2.50' })).status).toBe(401);
    expect((await login(app, TOKENS.viewer, { from: '192.0.2.50' })).status).toBe(302);
  });
});

describe('headers and /metrics', () => {
  it('every dashboard page carries a CSP without script and the usual security headers', async () => {
    const { app } = createTestApp(db);
    const sid = sessionOf(await login(app, TOKENS.viewer))!;
    for (const [path, init] of [['/ui/login', {}], ['/ui', withCookie(sid)], ['/ui/firmware', withCookie(sid)], ['/ui/nodes/not-a-uuid', withCookie(sid)], ['/ui/nope', {}]] as const) {
      const res = await app.request(path, init);
      const csp = res.headers.get('content-security-policy') ?? '';
      // no script at all: script-src 'none', or default-src 'none' without a script-src (a page's own policy)
      expect(csp, path).toMatch(/script-src 'none'|^default-src 'none'(?!.*script-src)/);
      expect(csp, path).toMatch(/default-src '(self|none)'/);
      expect(csp, path).toContain("frame-ancestors 'none'");
      expect(csp, path).toContain("form-action 'self'");
      expect(res.headers.get('x-content-type-options'), path).toBe('nosniff');
      expect(res.headers.get('referrer-policy'), path).toBe('no-referrer');
      expect(res.headers.get('x-frame-options'), path).toBe('DENY');
    }
  });

  it('/metrics is open by default and needs a viewer token with metrics.requireToken', async () => {
    expect((await createTestApp(db).app.request('/metrics')).status).toBe(200);
    const { app } = createTestApp(db, { config: testConfig({ metrics: { requireToken: true } }) });
    expect((await app.request('/metrics')).status).toBe(401);
    expect((await app.request('/metrics', { headers: { authorization: 'Bearer not-a-token-0123456789' } })).status).toBe(401);
    const ok = await app.request('/metrics', { headers: { authorization: `Bearer ${TOKENS.viewer}` } });
    expect(ok.status).toBe(200);
    const doc = (await (await app.request('/api/v1/openapi.json')).json()) as { paths: Record<string, Record<string, { 'x-role'?: string }>> };
    expect(doc.paths['/metrics']!.get!['x-role']).toBe('viewer');
  });
});
