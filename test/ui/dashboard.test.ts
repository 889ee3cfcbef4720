// The fleet dashboard as a person sees it, in headless Chromium against the app served over real HTTP.
import { createTestDb } from '../fakes/db.ts';
import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { DbHandle } from '../../server/db/index.ts';
import { bootToken, client, createTestApp, sampleFacts, TOKENS } from '../fakes/app.ts';
import { launchChromium } from '../harness/browser.ts';

const A = 'aaaaaaaa-0000-0000-0000-000000000001';
const B = 'bbbbbbbb-0000-0000-0000-000000000002';
let db: DbHandle;
let server: ServerType;
let browser: Browser;
let base: string;

beforeAll(async () => {
  db = await createTestDb();
  const t = createTestApp(db);
  const http = client(t.app);
  const ta = await bootToken(t.app, A);
  await http.post('/api/v1/agent/register', { token: ta, body: { facts: sampleFacts(A, { serial: 'SER-A' }) } });
  const profile = await http.get(`/api/v1/agent/${A}/profile`, { token: ta });
  // the compute OS reports in with its own node credential (on the profile's command line)
  const credential = /bootfarm\.token=(\S+)/.exec(profile.json.cmdline)![1]!;
  await http.post(`/api/v1/agent/${A}/installed`, { token: credential, body: {} });
  await bootToken(t.app, B);
  await http.patch(`/api/v1/nodes/${B}`, { token: TOKENS.operator, body: { labels: { rack: '<script>alert(1)</script>' } } });
  await http.post(`/api/v1/nodes/${B}/actions`, { token: TOKENS.operator, body: { action: 'maintenance-on', reason: 'PSU swap' } });
  server = serve({ fetch: t.app.fetch, hostname: '127.0.0.1', port: 0 });
  await new Promise((r) => server.once('listening', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  server?.close();
  await db?.close();
});

it('logs in, shows the fleet by state, and a node timeline', async () => {
  const page = await browser.newPage();
  let alerted = false;
  page.on('dialog', async (d) => {
    alerted = true;
    await d.dismiss();
  });
  await page.goto(`${base}/ui`);
  expect(page.url()).toBe(`${base}/ui/login`);
  await page.fill('input[name=token]', 'not-a-valid-token-at-all');
  await page.click('button');
  expect(await page.textContent('body')).toContain('That token is not valid');
  await page.goto(`${base}/ui/login`);
  await page.fill('input[name=token]', TOKENS.viewer);
  await page.click('button');
  await page.waitForURL(`${base}/ui`);

  expect(await page.textContent('body')).toContain('2 nodes');
  const legend = await page.locator('.legend').innerText();
  expect(legend).toContain('active 1');
  expect(legend).toContain('maintenance 1');
  const rows = page.locator('#nodes tbody tr');
  expect(await rows.count()).toBe(2);
  expect(await page.locator(`tr[data-uuid="${A}"]`).innerText()).toMatch(/active[\s\S]*SER-A/);
  expect(await page.locator(`tr[data-uuid="${B}"]`).innerText()).toContain('PSU swap');
  // the hostile label is shown as text, never run
  expect(await page.locator(`tr[data-uuid="${B}"]`).innerText()).toContain('rack=<script>alert(1)</script>');
  expect(alerted).toBe(false);

  await page.click(`a[href="/ui/nodes/${A}"]`);
  await page.waitForURL(`${base}/ui/nodes/${A}`);
  const timeline = await page.locator('#timeline').innerText();
  for (const step of ['discovered', 'inspecting', 'ready', 'provisioning', 'active']) expect(timeline).toContain(step);
  expect(await page.textContent('body')).toContain('SeaBIOS 1.16.2-debian-1.16.2-1');
  expect(await page.textContent('body')).toContain('tor-1');
  mkdirSync('test-results/ui', { recursive: true });
  await page.screenshot({ path: 'test-results/ui/dashboard-node.png', fullPage: true });

  // the JSON link works with the cookie (GET), but the cookie cannot change anything
  const viaCookie = await page.request.get(`${base}/api/v1/nodes/${A}`);
  expect(viaCookie.status()).toBe(200);
  const post = await page.request.post(`${base}/api/v1/nodes/${A}/actions`, { data: { action: 'fail', reason: 'csrf' } });
  expect(post.status()).toBe(401);
});

it('keeps only a server-side session id in an HttpOnly, SameSite=Strict cookie, and logout ends that session on the server', async () => {
  const login = async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const res = await page.goto(`${base}/ui/login`);
    // the dashboard's CSP: no script at all, no framing
    expect(res?.headers()['content-security-policy']).toContain("script-src 'none'");
    expect(res?.headers()['content-security-policy']).toContain("frame-ancestors 'none'");
    await page.fill('input[name=token]', TOKENS.viewer);
    await page.click('button');
    await page.waitForURL(`${base}/ui`);
    return { context, page };
  };
  const a = await login();
  const b = await login();
  const [cookie] = await a.context.cookies();
  expect(cookie).toMatchObject({ name: 'bootfarm_session', httpOnly: true, sameSite: 'Strict', secure: false, path: '/' });
  expect(cookie!.value).not.toContain(TOKENS.viewer);
  expect(cookie!.value).toMatch(/^[A-Za-z0-9_-]{43}$/);
  expect((await b.context.cookies())[0]!.value).not.toBe(cookie!.value); // one session per login
  expect(await a.page.evaluate('document.cookie')).toBe(''); // page script cannot read it

  await a.page.click('a[href="/ui/logout"]');
  await a.page.waitForURL(`${base}/ui/login`);
  expect(await a.context.cookies()).toEqual([]);
  await a.page.goto(`${base}/ui`);
  expect(a.page.url()).toBe(`${base}/ui/login`);

  // a copy of the cookie taken before logout is worthless: the session is gone from the database
  const replay = await browser.newContext();
  await replay.addCookies([{ name: cookie!.name, value: cookie!.value, url: base, httpOnly: true, sameSite: 'Strict' }]);
  const rp = await replay.newPage();
  await rp.goto(`${base}/ui`);
  expect(rp.url()).toBe(`${base}/ui/login`);
  expect((await rp.request.get(`${base}/api/v1/nodes`)).status()).toBe(401);

  // the other browser's session is untouched
  await b.page.goto(`${base}/ui`);
  expect(b.page.url()).toBe(`${base}/ui`);
  expect(await b.page.textContent('body')).toContain('2 nodes');
  for (const ctx of [a.context, b.context, replay]) await ctx.close();
});
