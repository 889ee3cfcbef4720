// Firmware compliance end to end through the real app (createApp + the firmware mount + the firmware gate) over
// a real migrated PGlite: baselines applied over the admin API, a node registering with an old BIOS under
// enforce, its plan, its report, its re-registration, quarantine after N failed tries, the same node under
// report in JSON, CSV, metrics and the /ui/firmware page — the page in headless Chromium (Debian's chromium).
// No mocks: the stage-1 agent is played by HTTP calls with the contract's own shapes.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { chromium, type Browser } from 'playwright-core';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiClient, CliError } from '../../server/cli.ts';
import { runFirmware } from '../../server/cli/firmware.ts';
import { FakeClock } from '../../server/clock.ts';
import { FirmwarePlan, FirmwareReportResponse } from '../../server/contract/firmware.ts';
import type { DbHandle } from '../../server/db/index.ts';
import { bootToken, client, createFirmwareTestApp, TOKENS } from '../fakes/app.ts';
import { createTestDb } from '../fakes/db.ts';

const BIOS_PKG = 'c'.repeat(64);
const UUID_A = '4c4c4544-0042-3510-8052-b4c04f4e4d32';
const UUID_B = '4c4c4544-0042-3510-8052-b4c04f4e4d33';
const UUID_X = '4c4c4544-0042-3510-8052-b4c04f4e4d34';
const HOSTILE = `<img src=x onerror="document.title='pwned'">&"Box'`;
const FORMULA = '=HYPERLINK("http://evil.example/")';

const baselineYaml = (policy: 'enforce' | 'report') => `name: r650
description: Dell R650 firmware set
selector:
  manufacturer: Dell Inc.
  product: PowerEdge R650
policy: ${policy}
maxAttempts: 2
components:
  - type: bios
    minimum: "1.4.9"
    update:
      sha256: ${BIOS_PKG}
      command: /opt/dell/bios.efi -q "$BOOTFARM_FIRMWARE_FILE"
      timeoutSeconds: 900
      reboot: true
  - type: nic
    driver: virtio_net
    minimum: "1.0"
`;

const dellFacts = (uuid: string, bios: string, nicFw = '1.0.0') => ({
  system: { uuid, serial: `SN-${uuid.slice(-4)}`, manufacturer: 'Dell Inc.', product: 'PowerEdge R650' },
  bios: { vendor: 'Dell Inc.', version: bios },
  bmc: { firmwareVersion: '7.00.00.171' },
  nics: [{ name: 'eth0', mac: `52:54:00:00:${uuid.slice(-2)}:01`, driver: 'virtio_net', firmwareVersion: nicFw, pciId: '1af4:1000' }],
});

let db: DbHandle;
let app: ReturnType<typeof createFirmwareTestApp>['app'];
let api: ReturnType<typeof client>;
let server: ServerType | undefined;
let browser: Browser | undefined;
const clock = new FakeClock('2026-11-21T08:00:00Z');
const registry = new Registry();

beforeAll(async () => {
  db = await createTestDb();
  ({ app } = createFirmwareTestApp(db, { clock, metrics: registry }));
  api = client(app);
});

afterAll(async () => {
  await browser?.close();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await db?.close();
});

/** stage-1 on one boot: PXE (fresh token), then register with these facts */
async function boot(uuid: string, facts: unknown) {
  clock.advance(60_000);
  const token = await bootToken(app, uuid);
  const reg = await api.post('/api/v1/agent/register', { token, body: { facts } });
  expect(reg.status, reg.text).toBeLessThan(300);
  return { token, reg: reg.json as { state: string; next: string; reason?: string } };
}

const applyBaseline = (text: string, token = TOKENS.admin) =>
  app.request('/api/v1/firmware/baselines?source=r650.yaml', { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/yaml' }, body: text });

describe('baselines over the admin API', () => {
  it('refuses a viewer, explains a bad document by line and field, and applies a good one', async () => {
    expect((await applyBaseline(baselineYaml('enforce'), TOKENS.viewer)).status).toBe(403);
    const bad = await applyBaseline(baselineYaml('enforce').replace('minimum: "1.4.9"', 'minimum: 1.4.9\n    exact: "2.0"'));
    expect(bad.status).toBe(422);
    const body = (await bad.json()) as { error: { message: string; details: { issues: { line: number; path: string }[] } } };
    expect(body.error.message).toBe('r650.yaml:10:14: components[0].minimum: has more than one version rule (exact, minimum); keep one');
    const junk = await applyBaseline('\u0000\u0001{[');
    expect(junk.status).toBe(422);
    const ok = await applyBaseline(baselineYaml('enforce'));
    expect(ok.status).toBe(201);
    expect(await ok.json()).toEqual({ results: [{ name: 'r650', version: 1, action: 'created' }] });
    // the same document again is not a change
    expect(await (await applyBaseline(baselineYaml('enforce'))).json()).toEqual({ results: [{ name: 'r650', version: 1, action: 'unchanged' }] });
    const doc = (await api.get('/api/v1/openapi.json')).json as { paths: Record<string, Record<string, unknown>> };
    expect(Object.keys(doc.paths['/api/v1/agent/{uuid}/firmware'] ?? {}).sort()).toEqual(['get', 'post']);
    const list = await api.get('/api/v1/firmware/baselines', { token: TOKENS.viewer });
    expect(list.json.baselines).toMatchObject([{ name: 'r650', version: 1, policy: 'enforce', components: 2 }]);
  });
});

describe('policy enforce', () => {
  it('plans a BIOS update, takes the report without believing it, and lets the node be ready on fresh facts', async () => {
    const first = await boot(UUID_A, dellFacts(UUID_A, '1.2.0'));
    expect(first.reg).toMatchObject({ state: 'firmware-updating', next: 'firmware' });
    expect(first.reg.reason).toContain('bios 1.2.0 → ≥ 1.4.9');

    // the plan needs the boot token
    expect((await api.get(`/api/v1/agent/${UUID_A}/firmware`)).status).toBe(401);
    const planRes = await api.get(`/api/v1/agent/${UUID_A}/firmware`, { token: first.token });
    expect(planRes.status).toBe(200);
    const plan = FirmwarePlan.parse(planRes.json);
    expect(plan).toEqual({
      uuid: UUID_A,
      baseline: { name: 'r650', version: 1, policy: 'enforce' },
      attempt: 1,
      reboot: true,
      steps: [{ component: 'bios', devices: [], current: '1.2.0', required: '≥ 1.4.9', package: { url: `/images/${BIOS_PKG}`, sha256: BIOS_PKG }, command: '/opt/dell/bios.efi -q "$BOOTFARM_FIRMWARE_FILE"', timeoutSeconds: 900, reboot: true }],
    });

    let row = (await api.get(`/api/v1/firmware/nodes/${UUID_A}`, { token: TOKENS.viewer })).json;
    expect(row.compliance.state).toBe('updating');

    // bad reports get clear 4xx answers, never a crash
    const raw = await app.request(`/api/v1/agent/${UUID_A}/firmware`, { method: 'POST', headers: { authorization: `Bearer ${first.token}`, 'content-type': 'application/json' }, body: '{"attempt": 1, "results": [' });
    expect(raw.status).toBe(400);
    const huge = await api.post(`/api/v1/agent/${UUID_A}/firmware`, { token: first.token, body: { attempt: 1, results: [{ component: 'bios', exitCode: 0, stdout: 'x'.repeat(70_000) }] } });
    expect(huge.status).toBe(400);
    expect(huge.json.error.message).toMatch(/^results\.0\.stdout: Too big/);
    // a report for another attempt is refused; the real one is taken
    expect((await api.post(`/api/v1/agent/${UUID_A}/firmware`, { token: first.token, body: { attempt: 7, results: [] } })).status).toBe(409);
    const rep = await api.post(`/api/v1/agent/${UUID_A}/firmware`, { token: first.token, body: { attempt: 1, results: [{ component: 'bios', exitCode: 0, stdout: 'BIOS updated to 1.5.0', durationMs: 42000, sha256: BIOS_PKG }] } });
    expect(rep.status).toBe(200);
    expect(FirmwareReportResponse.parse(rep.json)).toEqual({ attempt: 1, ok: true, next: 'reboot' });

    // the agent said it worked; the server still reads 1.2.0 until the machine registers again
    row = (await api.get(`/api/v1/firmware/nodes/${UUID_A}`, { token: TOKENS.viewer })).json;
    expect(row.compliance.components[0]).toMatchObject({ component: 'bios', current: '1.2.0', status: 'updating' });

    const second = await boot(UUID_A, dellFacts(UUID_A, '1.5.0'));
    expect(second.reg).toMatchObject({ state: 'ready', next: 'provision' });
    row = (await api.get(`/api/v1/firmware/nodes/${UUID_A}`, { token: TOKENS.viewer })).json;
    expect(row.compliance.state).toBe('compliant');
    // nothing left to run
    expect((await api.get(`/api/v1/agent/${UUID_A}/firmware`, { token: second.token })).json).toMatchObject({ attempt: null, steps: [], reboot: false });

    const events = (await api.get(`/api/v1/nodes/${UUID_A}/events`, { token: TOKENS.viewer })).json.events.slice().reverse() as { kind: string; reason: string; toState: string | null }[];
    const story = events.filter((e) => e.kind === 'firmware' || (e.kind === 'transition' && e.toState !== 'inspecting')).map((e) => e.toState ?? e.reason);
    // the gate notes the plan, then the register route moves the node
    expect(story).toEqual(['discovered', 'firmware plan 1: bios 1.2.0 → ≥ 1.4.9', 'firmware-updating', 'firmware attempt 1: all 1 update(s) ran', 'ready']);
  });

  it('quarantines a node that still fails after maxAttempts tries, with the reason', async () => {
    const one = await boot(UUID_B, dellFacts(UUID_B, '1.2.0'));
    expect(one.reg.next).toBe('firmware');
    const bad = { attempt: 1, results: [{ component: 'bios', exitCode: 5, stderr: 'flash verify failed' }] };
    expect((await api.post(`/api/v1/agent/${UUID_B}/firmware`, { token: one.token, body: bad })).json).toEqual({ attempt: 1, ok: false, next: 'register' });
    expect((await api.get(`/api/v1/firmware/nodes/${UUID_B}`, { token: TOKENS.viewer })).json.compliance.state).toBe('failed');

    const two = await boot(UUID_B, dellFacts(UUID_B, '1.2.0'));
    expect(two.reg).toMatchObject({ state: 'firmware-updating', next: 'firmware' });
    expect((await api.get(`/api/v1/agent/${UUID_B}/firmware`, { token: two.token })).json.attempt).toBe(2);
    await api.post(`/api/v1/agent/${UUID_B}/firmware`, { token: two.token, body: { ...bad, attempt: 2 } });

    const three = await boot(UUID_B, dellFacts(UUID_B, '1.2.0'));
    expect(three.reg).toMatchObject({ state: 'quarantined', next: 'hold' });
    expect(three.reg.reason).toBe('firmware (baseline r650 v1, enforce): still bios 1.2.0 → ≥ 1.4.9 after 2 update attempts');
    const row = (await api.get(`/api/v1/firmware/nodes/${UUID_B}`, { token: TOKENS.viewer })).json;
    expect(row.compliance.components[0]).toMatchObject({ status: 'failed', current: '1.2.0' });
  });
});

describe('policy report', () => {
  it('records the policy change as a new version, and the same node boots on with an old BIOS', async () => {
    const changed = await applyBaseline(baselineYaml('report'));
    expect(await changed.json()).toEqual({ results: [{ name: 'r650', version: 2, action: 'updated' }] });
    const show = (await api.get('/api/v1/firmware/baselines/r650', { token: TOKENS.viewer })).json;
    expect(show.history.map((h: { version: number; action: string; spec: { policy: string } }) => [h.version, h.action, h.spec.policy])).toEqual([
      [1, 'create', 'enforce'],
      [2, 'update', 'report'],
    ]);

    // node A comes back with its BIOS rolled back (a board swap): report policy lets it boot on
    const again = await boot(UUID_A, dellFacts(UUID_A, '1.2.0'));
    expect(again.reg).toMatchObject({ state: 'ready', next: 'provision' });
    expect(again.reg.reason).toBeUndefined();
    // and an unmanaged machine with a hostile product string
    await boot(UUID_X, { system: { uuid: UUID_X, manufacturer: FORMULA, product: HOSTILE }, bios: { version: '1.0' }, nics: [] });
  });

  it('shows the node as outdated in the JSON report, filterable', async () => {
    const all = (await api.get('/api/v1/reports/firmware', { token: TOKENS.viewer })).json;
    const a = all.nodes.find((n: { uuid: string }) => n.uuid === UUID_A);
    expect(a).toMatchObject({ model: 'Dell Inc. PowerEdge R650', nodeState: 'ready', compliance: { state: 'outdated', baseline: { name: 'r650', version: 2, policy: 'report' } } });
    expect(a.compliance.components.map((c: { component: string; current: string; required: string; status: string }) => [c.component, c.current, c.required, c.status])).toEqual([
      ['bios', '1.2.0', '≥ 1.4.9', 'outdated'],
      ['nic:virtio_net', '1.0.0', '≥ 1.0', 'compliant'],
    ]);
    expect(all.summary).toMatchObject({ total: 3, percentCompliant: 0, counts: { outdated: 1, failed: 1, unmanaged: 1, compliant: 0 } });
    expect(all.summary.byComponent).toMatchObject([
      { key: 'bios', total: 2, percentCompliant: 0 },
      { key: 'nic:virtio_net', total: 2, percentCompliant: 100 },
    ]);

    const outdated = (await api.get('/api/v1/reports/firmware?state=outdated', { token: TOKENS.viewer })).json;
    expect(outdated.nodes.map((n: { uuid: string }) => n.uuid)).toEqual([UUID_A]);
    const nicOnly = (await api.get(`/api/v1/reports/firmware?component=nic:virtio_net&model=${encodeURIComponent('dell inc. poweredge r650')}`, { token: TOKENS.viewer })).json;
    expect(nicOnly.nodes.map((n: { compliance: { state: string } }) => n.compliance.state)).toEqual(['compliant', 'compliant']);
    expect((await api.get('/api/v1/reports/firmware?label=rack=r9', { token: TOKENS.viewer })).json.nodes).toEqual([]);
    expect((await api.get('/api/v1/reports/firmware?state=bogus', { token: TOKENS.viewer })).status).toBe(400);
  });

  it('shows it in the CSV report, with hostile cells neutralised', async () => {
    const res = await api.get('/api/v1/reports/firmware?format=csv', { token: TOKENS.viewer });
    expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
    const lines = res.text.split('\r\n');
    expect(lines[0]).toBe('uuid,hostname,model,node_state,firmware_state,baseline,baseline_version,policy,component,devices,current,required,status,detail,facts_at,secure_boot,cabling_state,cabling_policy,cabling_detail');
    expect(lines).toContain(`${UUID_A},,Dell Inc. PowerEdge R650,ready,outdated,r650,2,report,bios,,1.2.0,≥ 1.4.9,outdated,,2026-11-21T08:06:00.000Z,,unplanned,,`);
    // a would-be formula gets a leading ', quotes are doubled and the field quoted (RFC 4180 §2.6-2.7)
    expect(res.text).toContain(`,"'=HYPERLINK(""http://evil.example/"") <img src=x onerror=""document.title='pwned'"">&""Box'",ready,unmanaged,`);
  });

  it('exports gauges per model and component', async () => {
    const text = await registry.metrics();
    expect(text).toContain('bootfarm_firmware_nodes{model="Dell Inc. PowerEdge R650",state="outdated"} 1');
    expect(text).toContain('bootfarm_firmware_nodes{model="Dell Inc. PowerEdge R650",state="failed"} 1');
    expect(text).toContain('bootfarm_firmware_components{model="Dell Inc. PowerEdge R650",component="bios",status="outdated"} 1');
    expect(text).toContain('bootfarm_firmware_components{model="Dell Inc. PowerEdge R650",component="nic:virtio_net",status="compliant"} 2');
  });

  it('shows it on /ui/firmware in a real browser: bars, rows, links, all escaped', async () => {
    server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => server!.once('listening', () => resolve()));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
    const ctx = await browser.newContext({ extraHTTPHeaders: { authorization: `Bearer ${TOKENS.viewer}` }, viewport: { width: 1280, height: 900 } });
    const page = await ctx.newPage();
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    const res = await page.goto(`${base}/ui/firmware`);
    expect(res?.status()).toBe(200);
    expect(res?.headers()['content-security-policy']).toContain("default-src 'none'");

    expect(await page.title()).toBe('Firmware compliance · bootfarm');
    expect(await page.locator('#fleet-percent').textContent()).toBe('0%');
    expect(await page.locator('#fleet-total').textContent()).toBe('3');
    const dell = page.locator('#by-model .bar-row', { hasText: 'Dell Inc. PowerEdge R650' });
    expect(await dell.locator('.bar-text').innerText()).toBe('0% compliant (0 of 2) 1 outdated · 1 failed');
    // the bar is drawn: one segment per state, widths in proportion
    expect(await dell.locator('.seg').evaluateAll((els) => els.map((e) => [e.getAttribute('data-state'), Math.round(e.getBoundingClientRect().width)]))).toEqual([
      ['outdated', expect.any(Number)],
      ['failed', expect.any(Number)],
    ]);
    const widths = await dell.locator('.seg').evaluateAll((els) => els.map((e) => e.getBoundingClientRect().width));
    expect(Math.abs(widths[0]! - widths[1]!)).toBeLessThan(1);
    expect(await page.locator('#by-component .bar-row', { hasText: 'nic:virtio_net' }).locator('.bar-text').innerText()).toMatch(/^100% compliant \(2 of 2\)/);

    const rowA = page.locator(`#noncompliant tr[data-uuid="${UUID_A}"]`);
    expect(await rowA.count()).toBe(1);
    expect(await rowA.locator('.change').innerText()).toBe('1.2.0 → ≥ 1.4.9');
    expect(await rowA.locator('.pill').innerText()).toBe('outdated');
    expect(await rowA.locator('a.facts').getAttribute('href')).toBe(`/api/v1/nodes/${UUID_A}`);
    expect(await rowA.locator('a.timeline').getAttribute('href')).toBe(`/api/v1/nodes/${UUID_A}/events`);
    expect(await page.locator(`#noncompliant tr[data-uuid="${UUID_B}"] .pill`).innerText()).toBe('failed');

    // the hostile product string is text on the page, never markup
    const rowX = page.locator(`#noncompliant tr[data-uuid="${UUID_X}"]`);
    expect(await rowX.locator('td').nth(1).innerText()).toBe(`${FORMULA} ${HOSTILE}`);
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.title()).not.toBe('pwned');
    expect(dialogs).toEqual([]);

    // the links lead to the node's facts and timeline
    const facts = await page.request.get(`${base}${await rowA.locator('a.facts').getAttribute('href')}`);
    expect(((await facts.json()) as { facts: { facts: { bios: { version: string } } } }).facts.facts.bios.version).toBe('1.2.0');

    mkdirSync('test-results/ui', { recursive: true });
    await page.screenshot({ path: 'test-results/ui/firmware-page.png', fullPage: true });

    // the filter form narrows the table
    await page.selectOption('select[name=state]', 'outdated');
    await page.click('button[type=submit]');
    await page.waitForURL(/state=outdated/);
    expect(await page.locator('#noncompliant tbody tr').evaluateAll((trs) => trs.map((t) => t.getAttribute('data-uuid')))).toEqual([UUID_A]);
  });
});

describe('bootfarm firmware (CLI)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bffw-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  // the CLI's own HTTP client, with the in-process app as its fetch
  const cliApi = (token: string) => apiClient('http://bootfarm.test', token, ((url: string, init?: RequestInit) => app.request(url, init)) as typeof fetch);
  async function run(args: string[], token = TOKENS.admin) {
    const lines: string[] = [];
    await runFirmware(args, { api: cliApi(token), out: (l) => lines.push(l) });
    return lines;
  }
  const r750 = `name: r750\nselector: {manufacturer: Dell Inc., product: PowerEdge R750, sku: 0A6C}\ncomponents:\n  - {type: bmc, minimum: "7.10"}\n`;

  it('rejects a bad file with its own name and line, before calling the server', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, r750.replace('minimum: "7.10"', 'minimum: "7.10", allowed: []'));
    const err = await run(['baseline', 'apply', file]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CliError);
    expect((err as Error).message).toBe(`${file}: invalid baseline document\n  ${file}:4:43: components[0].allowed: Too small: expected array to have >=1 items\n  ${file}:4:43: components[0].allowed: has more than one version rule (minimum, allowed); keep one`);
  });

  it('applies, lists, shows with history, and reports', async () => {
    const file = join(dir, 'r750.yaml');
    writeFileSync(file, r750);
    expect(await run(['baseline', 'apply', file])).toEqual(['r750: created (version 1)']);
    writeFileSync(file, r750.replace('7.10', '7.20'));
    expect(await run(['baseline', 'apply', file])).toEqual(['r750: updated (version 2)']);
    // a viewer may look but not change
    await expect(run(['baseline', 'apply', file], TOKENS.viewer)).rejects.toThrow(/403 forbidden/);

    const list = await run(['baseline', 'list'], TOKENS.viewer);
    expect(list[0]).toMatch(/^NAME\s+VERSION\s+POLICY\s+SELECTOR/);
    expect(list.find((l) => l.startsWith('r750 '))).toMatch(/^r750\s+2\s+report\s+Dell Inc\. \/ PowerEdge R750 \/ 0A6C\s+1\s+/);

    const show = await run(['baseline', 'show', 'r750'], TOKENS.viewer);
    expect(show).toContain('# version 2');
    expect(show.join('\n')).toContain('minimum: "7.20"');
    expect(show.filter((l) => /^#   v\d/.test(l)).map((l) => l.split(/\s+/).slice(1, 3).join(' '))).toEqual(['v1 create', 'v2 update']);

    const report = await run(['report', 'state=outdated'], TOKENS.viewer);
    // the summary covers the slice before the state filter; the rows are the outdated ones
    expect(report[0]).toBe('0% of 3 nodes compliant');
    expect(report).toContain(`${UUID_A.padEnd(38)}${'outdated'.padEnd(11)}${'bios'.padEnd(18)}1.2.0 → ≥ 1.4.9`);
    await expect(run(['report', 'outdated'])).rejects.toThrow(/filters are key=value/);
  });

  it('deletes a baseline over the API and keeps it in history', async () => {
    const del = await app.request('/api/v1/firmware/baselines/r750', { method: 'DELETE', headers: { authorization: `Bearer ${TOKENS.admin}` } });
    expect(del.status).toBe(204);
    expect((await api.get('/api/v1/firmware/baselines/r750', { token: TOKENS.viewer })).status).toBe(404);
    expect((await app.request('/api/v1/firmware/baselines/r750', { method: 'DELETE', headers: { authorization: `Bearer ${TOKENS.admin}` } })).status).toBe(404);
  });
});
