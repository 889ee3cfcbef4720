// The Grafana dashboard (packaging/grafana/bootfarm.json, issue 17 item 6) against the product's own /metrics: the
// server is started as an operator runs it (startServer: PGlite, TFTP and DHCP on loopback), exercised (a DHCP
// DISCOVER, a TFTP request, boot and image HTTP requests), then every metric name in every panel's expr must be in
// its /metrics output — a renamed or dropped metric fails here, not on an operator's empty panel.
import dgram from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { encodePacket, MessageType } from '../../boot/dhcp/packet.ts';
import { parseConfig } from '../../server/config.ts';
import { silentLogger } from '../../server/log.ts';
import { startServer, type Running } from '../../server/main.ts';
import { request } from '../support/dhcp/fakes.ts';
import { until } from '../harness/wait.ts';

interface Panel { title: string; type: string; targets?: { expr: string }[]; datasource?: { type: string; uid: string } }
const dashboard = JSON.parse(readFileSync(new URL('../../packaging/grafana/bootfarm.json', import.meta.url), 'utf8')) as {
  uid: string; schemaVersion: number; panels: Panel[]; templating: { list: { name: string; type: string; query: unknown }[] };
};
const ADMIN = 'dashboard-admin-token-0123456789abcdef';
let dir: string;
let server: Running;
let text: string;

/** metric names in a PromQL expression: ours and the Node.js runtime's (prom-client's default metrics) */
const metricNames = (expr: string) => [...expr.replace(/\{[^}]*\}/g, '').matchAll(/\b(?:bootfarm|nodejs|process)_[a-z0-9_]+/g)].map((m) => m[0]);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bf-dashboard-'));
  writeFileSync(join(dir, 'undionly.kpxe'), Buffer.alloc(2000, 1));
  const port = 20000 + Math.floor(Math.random() * 20000);
  const config = parseConfig({
    dataDir: dir,
    http: { host: '127.0.0.1', port: 0 },
    auth: { tokens: [{ name: 'admin', role: 'admin', token: ADMIN }] },
    fleet: { enabled: false },
    tftp: { address: '127.0.0.1', port: 0, root: dir, ipxeDefaults: false },
    dhcp: { mode: 'full', interface: 'lo', serverIp: '127.0.0.1', httpBase: 'http://127.0.0.1:8080', port, proxyPort: port + 1, clientPort: port + 2, pools: [{ subnet: '127.0.0.0/24', range: { start: '127.0.0.10', end: '127.0.0.20' } }] },
  });
  server = await startServer(config, { log: silentLogger() });
  // exercise the boot path: a DISCOVER, HTTP boot and image requests, then read /metrics
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind({ address: '127.0.0.1', port: 0 }, () => r()));
  s.send(encodePacket(request({ type: MessageType.DISCOVER, mac: '02:00:00:00:00:01', ciaddr: '127.0.0.1' })), port, '127.0.0.1');
  await fetch(`${server.url}/boot.ipxe`);
  await fetch(`${server.url}/images/${'0'.repeat(64)}`);
  await until('the DISCOVER to be handled', async () => /^bootfarm_dhcp_handle_duration_seconds_count\S* [1-9]/m.test(await (await fetch(`${server.url}/metrics`)).text()));
  s.close();
  text = await (await fetch(`${server.url}/metrics`)).text();
}, 120_000);
afterAll(async () => {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

it('is a Grafana dashboard with a Prometheus data-source variable and a replica variable', () => {
  expect(dashboard.uid).toBe('bootfarm-overview');
  expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(39);
  const vars = Object.fromEntries(dashboard.templating.list.map((v) => [v.name, v]));
  expect(vars.datasource).toMatchObject({ type: 'datasource', query: 'prometheus' });
  expect(vars.replica).toMatchObject({ type: 'query' });
  expect(JSON.stringify(vars.replica!.query)).toContain('replica');
  const graphs = dashboard.panels.filter((p) => p.type !== 'row');
  expect(graphs.length).toBeGreaterThan(20);
  for (const p of graphs) {
    expect(['timeseries', 'stat'], p.title).toContain(p.type);
    expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
    expect(p.targets?.length, p.title).toBeGreaterThan(0);
    for (const t of p.targets!) expect(t.expr, p.title).toContain('replica=~"$replica"');
  }
});

it("every metric a panel queries is in the server's /metrics", () => {
  const exported = new Set([...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]!));
  // a labelled histogram nothing observed yet (a BMC call) declares its type only: its series names are still its own
  for (const m of text.matchAll(/^# TYPE (\S+) histogram$/gm)) for (const suffix of ['_bucket', '_count', '_sum']) exported.add(m[1]! + suffix);
  for (const line of text.split('\n')) if (line && !line.startsWith('#')) exported.add(line.split(/[{ ]/)[0]!);
  const missing: string[] = [];
  let used = 0;
  for (const p of dashboard.panels)
    for (const t of p.targets ?? []) {
      const names = metricNames(t.expr);
      expect(names.length, `${p.title}: ${t.expr}`).toBeGreaterThan(0);
      for (const n of names) {
        used++;
        if (!exported.has(n)) missing.push(`${p.title}: ${n}`);
      }
    }
  expect(missing).toEqual([]);
  expect(used).toBeGreaterThan(50);
  // and the exercised series moved: the DISCOVER was counted, HTTP requests by route class
  expect(text).toMatch(/^bootfarm_dhcp_requests_total\{[^}]*via="direct"[^}]*type="discover"[^}]*\} 1$/m);
  expect(text).toMatch(/^bootfarm_http_requests_total\{[^}]*route="images"[^}]*status="4xx"[^}]*\} 1$/m);
  expect(text).toMatch(/^bootfarm_http_requests_total\{[^}]*route="ipxe"[^}]*\} 1$/m);
});
