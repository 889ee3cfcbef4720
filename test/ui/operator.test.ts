// An operator's day in headless Debian Chromium (playwright-core, test/harness/browser.ts) against the real app
// over HTTP on PGlite with a seeded fleet: log in, filter the fleet by state and label, open a node (facts, NICs
// with LLDP, firmware, timeline, console), power it on to PXE through a real BMC (ipmi_sim, driven by ipmitool),
// promote an image from dev to canary and roll canary back. On every page: no console error, no page error, no
// CSP violation (recorded by an init script listening for securitypolicyviolation), no dialog; a node whose
// facts and labels carry markup shows it as text. Screenshots: test-results/ui/*.png (git-ignored), one per page
// visited, written by shot() below.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createApp } from '../../server/api/app.ts';
import { createPowerControl } from '../../server/api/power.ts';
import { firmwareMount, nodeCompliance } from '../../server/api/firmware.ts';
import { parseBaselineDocument } from '../../server/domain/firmware-baseline.ts';
import { createFirmwareStore } from '../../server/store/firmware.ts';
import { createBmcFactory } from '../../server/bmc/index.ts';
import type { DbHandle } from '../../server/db/index.ts';
import { createImages, type Images } from '../../server/images/index.ts';
import { silentLogger } from '../../server/log.ts';
import { bootToken, client, createTestApp, sampleFacts, TOKENS, TEST_PLAN_SIGNER } from '../fakes/app.ts';
import { initrdFile, kernelFile } from '../fakes/boot-files.ts';
import { createTestDb } from '../fakes/db.ts';
import { uuidOf } from '../fakes/fleet.ts';
import { bootNode, type ImageDigests } from '../fakes/node-history.ts';
import { launchChromium } from '../harness/browser.ts';
import { startIpmiSim, type IpmiSim } from '../harness/ipmisim.ts';

const SHOTS = 'test-results/ui';
/** Runs in every page before its own content (and outside its CSP): CSP violations reach page script as
 * securitypolicyviolation events; this keeps them in window.__csp. (Browser-side code is passed as strings:
 * the project's tsconfig has no DOM library.) */
const RECORD_CSP = "window.__csp = []; document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));";
const CSP_SEEN = 'window.__csp';
const A = 'a1a1a1a1-0000-4000-8000-000000000001';
const HOSTILE_PRODUCT = '<img src=x onerror=alert(1)><script>alert(2)</script>';
const HOSTILE_LABEL = '"><script>alert(3)</script>';

let db: DbHandle;
let tmp: string;
let images: Images;
let sim: IpmiSim;
let server: ServerType;
let browser: Browser;
let context: BrowserContext;
let base: string;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'bf-ui-operator-'));
  [db, sim] = await Promise.all([createTestDb(), startIpmiSim({ power: 0 })]);
  const t = createTestApp(db);
  images = await createImages({ config: { dataDir: tmp, images: { gates: { minActiveNodes: 1 } } }, db: db.db, log: silentLogger(), clock: t.clock });
  const firmware = createFirmwareStore(db.db, { clock: t.clock });
  // a baseline for node A's model: its BIOS (SeaBIOS 1.16.2) is below the minimum
  const [baseline] = parseBaselineDocument(JSON.stringify({ name: 'qemu', selector: { manufacturer: 'QEMU', product: HOSTILE_PRODUCT }, policy: 'report', components: [{ type: 'bios', minimum: '1.17' }] }), 'test');
  await firmware.applyBaseline(baseline!, { actor: 'test' });
  const app = createApp({
    ...t.deps,
    power: createPowerControl({ nodes: t.nodes, bmcs: t.bmcs, createBmc: createBmcFactory() }),
    imageChannels: images.pipeline,
    firmwareCompliance: (uuid) => nodeCompliance(firmware, uuid),
    fleetBreaker: async () => ({ open: true, reason: '6 of 40 nodes failed within 10 min', openedAt: new Date('2026-01-01T00:00:00Z') }),
  }, { extra: [firmwareMount({ nodes: t.nodes, firmware, clock: t.clock, planSigner: TEST_PLAN_SIGNER })] });
  const http = client(app);

  // node A boots for real through the API: registers facts (with a hostile product string), gets its BMC
  const ta = await bootToken(app, A);
  await http.post('/api/v1/agent/register', { token: ta, body: { facts: sampleFacts(A, { serial: 'SER-A', product: HOSTILE_PRODUCT }) } });
  const profile = await http.get(`/api/v1/agent/${A}/profile`, { token: ta });
  const credential = /bootfarm\.token=(\S+)/.exec(profile.json.cmdline)![1]!;
  await http.post(`/api/v1/agent/${A}/installed`, { token: credential, body: {} });
  expect((await http.patch(`/api/v1/nodes/${A}`, { token: TOKENS.operator, body: { labels: { role: 'hv', rack: 'r1', note: HOSTILE_LABEL } } })).status).toBe(200);
  expect((await http.put(`/api/v1/nodes/${A}/bmc`, { token: TOKENS.admin, body: { driver: 'ipmi', address: '127.0.0.1', port: sim.port, username: sim.username, password: sim.password } })).status).toBe(200);

  // the rest of the fleet: 40 nodes in a few states over three racks
  for (let i = 0; i < 40; i++) {
    const u = uuidOf(i, 'b2b2b2b2');
    await t.nodes.enroll(u, { serial: `S-${i}` }, 'ipxe');
    await t.nodes.setLabels(u, { rack: `r${i % 3}`, role: i % 2 ? 'hv' : 'storage' }, 'test');
    if (i % 5 === 0) await t.nodes.transition(u, { type: 'maintenance-on', reason: 'PSU swap' }, 'test');
    else if (i % 7 === 0) {
      await t.nodes.transition(u, { type: 'inspect' }, 'agent');
      await t.nodes.transition(u, { type: 'fail', reason: 'inspection timed out' }, 'fleet');
    }
  }

  // image "compute": 1.0 on dev then canary, 1.1 on dev; each booted fine on one node (the promotion gates)
  const digests: Record<string, ImageDigests> = {};
  for (const version of ['1.0', '1.1']) {
    const k = kernelFile(tmp, `vmlinuz-${version}`);
    const i = initrdFile(tmp, `initrd-${version}`);
    await images.pipeline.push({ name: 'compute', version, kernelPath: k.path, initrdPath: i.path, actor: 'alice' });
    digests[version] = { kernel: k.digest, initrd: i.digest };
    await bootNode(t.nodes, uuidOf(version === '1.0' ? 100 : 101, 'c3c3c3c3'), digests[version]!, ['kexec', 'active']);
    if (version === '1.0') await images.pipeline.promote({ name: 'compute', from: 'dev', to: 'canary', actor: 'alice' });
  }

  server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 });
  await new Promise((r) => server.once('listening', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await launchChromium();
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.addInitScript(RECORD_CSP);
  mkdirSync(SHOTS, { recursive: true });
});
afterAll(async () => {
  await browser?.close();
  server?.close();
  await sim?.stop();
  await db?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** Console errors, page errors and dialogs of one page, plus the CSP violations seen so far on its document. */
function watch(page: Page) {
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('dialog', (d) => {
    problems.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()} ${r.url()}`);
  });
  return {
    problems,
    /** nothing wrong on the document now shown */
    async clean(where: string) {
      const csp = await page.evaluate(CSP_SEEN);
      expect(csp, `CSP violations on ${where}`).toEqual([]);
      expect(problems, where).toEqual([]);
      // the page never gains script or foreign images from data
      expect(await page.locator('script').count(), where).toBe(0);
      expect(await page.locator('img').count(), where).toBe(0);
      // every style comes from the served stylesheet: it loaded and applied (nav is a flex row)
      expect(await page.evaluate("getComputedStyle(document.querySelector('nav')).display"), where).toBe('flex');
    },
  };
}

const shot = (page: Page, name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });

it('filter → node → power on to PXE → promote and roll back an image, with no console error or CSP violation', async () => {
  const page = await context.newPage();
  const w = watch(page);

  await page.goto(`${base}/ui/login`);
  await page.fill('input[name=token]', TOKENS.operator);
  await page.click('button');
  await page.waitForURL(`${base}/ui`);
  await w.clean('fleet');
  expect(await page.locator('#degraded').innerText()).toContain('Fleet degraded: automatic repair is stopped');
  expect(await page.locator('#total').innerText()).toBe('43 nodes');
  expect(await page.locator('#counts [data-state="maintenance"]').innerText()).toBe('maintenance 8');
  expect(await page.locator('#counts [data-state="active"]').innerText()).toBe('active 3');
  // the bar: one rectangle per state present, widths in proportion to the counts
  const rects = await page.locator('svg.bar rect').evaluateAll((els) => els.map((e) => [e.getAttribute('data-state'), e.getBoundingClientRect().width]));
  const width = (s: string) => rects.find((r) => r[0] === s)![1] as number;
  expect(width('maintenance') / width('active')).toBeCloseTo(8 / 3, 1);
  await shot(page, 'fleet');

  // filter: active hypervisors (state and label, applied by the server)
  await page.selectOption('select[name=state]', 'active');
  await page.fill('input[name=label]', 'role=hv');
  await page.click('#filters button[type=submit]');
  await page.waitForURL(/state=active&label=role%3Dhv/);
  await w.clean('fleet, filtered');
  const rows = page.locator('#nodes tbody tr');
  expect(await rows.evaluateAll((trs) => trs.map((t) => [t.getAttribute('data-uuid'), t.getAttribute('data-state')]))).toEqual([[A, 'active']]);
  expect(await page.locator('#matching').innerText()).toBe('1 matching · 1 on this page');
  // the hostile label is text in the table
  expect(await rows.first().locator('td').last().innerText()).toContain(`note=${HOSTILE_LABEL}`);
  await shot(page, 'fleet-filtered');

  // the node
  await page.click(`a[href="/ui/nodes/${A}"]`);
  await page.waitForURL(`${base}/ui/nodes/${A}`);
  await w.clean('node');
  expect(await page.locator('#summary').innerText()).toContain(`QEMU ${HOSTILE_PRODUCT}`);
  expect(await page.locator('#hardware').innerText()).toContain(`QEMU ${HOSTILE_PRODUCT}`);
  expect(await page.locator('#labels').innerText()).toContain(HOSTILE_LABEL);
  const nic = await page.locator('#nics tr[data-mac="52:54:00:12:34:56"]').innerText();
  expect(nic).toContain('virtio_net');
  expect(nic).toContain('tor-1');
  expect(nic).toContain('swp7 · rack1 port 7');
  expect(await page.locator('#firmware').innerText()).toContain('SeaBIOS 1.16.2-debian-1.16.2-1 (04/01/2014)');
  expect(await page.locator('#firmware-state').innerText()).toMatch(/^outdated baseline qemu v1 \(report\)/);
  expect(await page.locator('#firmware-components tr[data-component="bios"]').innerText()).toMatch(/1\.16\.2-debian-1\.16\.2-1 → ≥ 1\.17\s+outdated/);
  expect(await page.locator('#console').innerText()).toBe('no console captured');
  const kinds = async () => page.locator('#timeline tbody tr').evaluateAll((trs) => trs.map((t) => [t.getAttribute('data-kind'), t.querySelectorAll('td')[4]?.textContent ?? '']));
  const before = await kinds();
  // newest first: the labels change (last API call) is above the first boot request
  expect(before.at(-1)).toEqual(['transition', 'first boot request']);
  const ids = await page.locator('#timeline tbody tr').evaluateAll((trs) => trs.map((t) => Number(t.getAttribute('data-id'))));
  expect(ids).toEqual([...ids].sort((a, b) => b - a));

  // power on, next boot from the network, through the BMC simulator
  expect(await sim.power()).toBe(0);
  await page.selectOption('#power select[name=action]', 'on');
  await page.selectOption('#power select[name=bootdev]', 'pxe');
  await page.click('#power button[type=submit]');
  await page.waitForURL(`${base}/ui/nodes/${A}?done=power-on`);
  await w.clean('node after power on');
  expect(await page.locator('#flash-ok').innerText()).toBe('Power on sent to the BMC.');
  expect(await sim.power()).toBe(1);
  expect(await sim.boot()).toBe('pxe');
  const top = await kinds();
  expect(top[0]![0]).toBe('bmc');
  expect(top[0]![1]).toMatch(/^power on \(next boot pxe\) via 127\.0\.0\.1/);
  expect(await page.locator('#timeline tbody tr').first().innerText()).toContain('ui:operator');
  await shot(page, 'node');

  // images: promote dev (1.1) to canary, then roll canary back to 1.0
  await page.click('nav a[href="/ui/images"]');
  await page.waitForURL(`${base}/ui/images`);
  await w.clean('images');
  const version = (ch: string) => page.locator(`section[data-image="compute"] tr[data-channel="${ch}"] .version`).innerText();
  expect([await version('dev'), await version('canary'), await version('prod')]).toEqual(['1.1', '1.0', '—']);
  await page.click('section[data-image="compute"] tr[data-channel="dev"] form.promote button');
  await page.waitForURL(`${base}/ui/images?done=promoted`);
  await w.clean('images after promote');
  expect(await page.locator('#flash-ok').innerText()).toBe('Promoted.');
  expect(await version('canary')).toBe('1.1');
  await page.click('section[data-image="compute"] tr[data-channel="canary"] form.rollback button');
  await page.waitForURL(`${base}/ui/images?done=rolled-back`);
  await w.clean('images after rollback');
  expect(await version('canary')).toBe('1.0');
  const history = await page.locator('section[data-image="compute"] table.history tbody tr').evaluateAll((trs) => trs.slice(0, 2).map((t) => [...t.querySelectorAll('td')].slice(1, 5).map((td) => td.textContent)));
  expect(history).toEqual([
    ['canary', 'rollback', '1.1 → 1.0', 'ui:operator'],
    ['canary', 'promote', '1.0 → 1.1', 'ui:operator'],
  ]);
  await shot(page, 'images');

  // control: the detector does see a violation — an inline style attribute is refused by this CSP
  await page.evaluate(`document.body.insertAdjacentHTML('beforeend', '<div id="inline" style="color:red">inline</div>')`);
  await expect.poll(() => page.evaluate(CSP_SEEN)).toEqual([expect.stringMatching(/^style-src-attr/)]);
  expect(await page.evaluate("getComputedStyle(document.getElementById('inline')).color")).not.toBe('rgb(255, 0, 0)');
});

it('a viewer sees the pages without forms, and the firmware page loads clean too', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await ctx.addInitScript(RECORD_CSP);
  const page = await ctx.newPage();
  const w = watch(page);
  await page.goto(`${base}/ui/login`);
  await page.fill('input[name=token]', TOKENS.viewer);
  await page.click('button');
  await page.waitForURL(`${base}/ui`);
  await page.goto(`${base}/ui/nodes/${A}`);
  await w.clean('node as viewer');
  expect(await page.locator('form[method=post]').count()).toBe(0);
  expect(await page.locator('#actions-readonly').innerText()).toContain('operator role');
  await page.goto(`${base}/ui/images`);
  await w.clean('images as viewer');
  expect(await page.locator('form').count()).toBe(0);
  await page.goto(`${base}/ui/firmware`);
  await w.clean('firmware');
  expect(await page.title()).toBe('Firmware compliance · bootfarm');
  expect(await page.locator('#fleet-total').innerText()).toBe('43');
  await shot(page, 'firmware');
  await ctx.close();
});
