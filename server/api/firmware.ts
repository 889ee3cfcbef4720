// Firmware compliance over HTTP (issue 7): baselines in the admin API, the agent's plan and report, the fleet
// report as JSON / CSV, the /ui/firmware page, and Prometheus gauges. Mounted by createApp through `extra`:
//   createApp(deps, { extra: [firmwareMount({ nodes, firmware, clock })] })
// and the gate goes in as deps.inspection = createFirmwareGate({ store: firmware }).
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { Gauge, type Registry } from 'prom-client';
import { z } from 'zod';
import { SmbiosUuid } from '../contract/common.ts';
import { Facts } from '../contract/facts.ts';
import { FirmwarePlan, FirmwareReport, NodeFirmwareState, NODE_FIRMWARE_STATES, type FirmwareReportResponse } from '../contract/firmware.ts';
import { BaselineDocumentError, formatIssue, MAX_DOCUMENT_BYTES, parseBaselineDocument } from '../domain/firmware-baseline.ts';
import { evaluateCompliance, identityFromFacts, modelOf, selectBaseline, summarize, type ReportRow, type SummaryBucket } from '../domain/firmware.ts';
import { AppError, notFound } from '../errors.ts';
import type { Clock } from '../clock.ts';
import type { FirmwareStore, FleetNode } from '../store/firmware.ts';
import type { NodeStore } from '../store/nodes.ts';
import { agentNode, principalOf } from './auth.ts';
import { LabelFilter } from './admin.ts';
import type { Mount } from './app.ts';
import type { RouteDoc } from './openapi.ts';
import { jsonBody, parseWith } from './validate.ts';

export interface FirmwareApiDeps {
  nodes: Pick<NodeStore, 'get'>;
  firmware: FirmwareStore;
  clock: Clock;
  /** the app's prom-client registry: the firmware gauges are registered on it */
  metrics?: Registry;
}

type RequireRole = (role: 'viewer' | 'operator' | 'admin') => MiddlewareHandler;

// ---- the fleet report -------------------------------------------------------------------------------------

export const ReportQuery = z.strictObject({
  /** firmware state(s), comma separated: compliant,outdated,unknown,updating,failed,unmanaged */
  state: z
    .string()
    .transform((s) => s.split(',').filter(Boolean))
    .pipe(z.array(NodeFirmwareState))
    .optional(),
  /** label=key=value[,key=value] */
  label: LabelFilter
    .optional(),
  /** model as reports name it: "<manufacturer> <product>" (case-insensitive) */
  model: z.string().max(512).optional(),
  /** component id: bios, bmc, nic:<driver>, nic:<vendor:device> */
  component: z.string().max(128).optional(),
  format: z.enum(['json', 'csv']).default('json'),
});
export type ReportQuery = z.infer<typeof ReportQuery>;

export interface FirmwareReportData {
  generatedAt: string;
  filters: Omit<ReportQuery, 'format'>;
  /** over the nodes that pass the label, model and component filters (not the state filter), so the bars show the slice */
  summary: ReturnType<typeof summarize>;
  nodes: ReportRow[];
}

const normModel = (s: string) => s.trim().replace(/\s+/g, ' ').toLowerCase();

/** Compliance rows for the whole fleet, from each node's latest facts. */
export async function fleetRows(firmware: FirmwareStore, only?: { uuid: string }): Promise<ReportRow[]> {
  const [fleet, baselines] = await Promise.all([firmware.fleet(only), firmware.listBaselines()]);
  return fleet.map((n) => rowOf(n, baselines));
}

function rowOf(n: FleetNode, baselines: Awaited<ReturnType<FirmwareStore['listBaselines']>>): ReportRow {
  // facts were validated at registration; a document written by an older agent may still not parse today
  const parsed = n.facts ? Facts.safeParse(n.facts) : null;
  const facts = parsed?.success ? parsed.data : null;
  const id = facts ? identityFromFacts(facts) : { manufacturer: n.manufacturer, product: n.product };
  const baseline = selectBaseline(baselines, id);
  const attempt = baseline && n.attempt ? n.attempt : null;
  return { uuid: n.uuid, hostname: n.hostname, model: modelOf(id), nodeState: n.state, labels: n.labels, compliance: evaluateCompliance(baseline, facts, attempt), factsAt: n.factsAt };
}

export function filterReport(all: readonly ReportRow[], q: Omit<ReportQuery, 'format'>, now: Date): FirmwareReportData {
  let rows = all.filter((r) => {
    if (q.label && !Object.entries(q.label).every(([k, v]) => r.labels[k] === v)) return false;
    if (q.model && normModel(r.model) !== normModel(q.model)) return false;
    return true;
  });
  if (q.component) {
    const want = q.component.toLowerCase();
    rows = rows.flatMap((r) => {
      const c = r.compliance.components.find((x) => x.component.toLowerCase() === want);
      // the row now speaks about that one component: its state is the component's status
      return c ? [{ ...r, compliance: { ...r.compliance, state: c.status, components: [c] } }] : [];
    });
  }
  const summary = summarize(rows);
  if (q.state) rows = rows.filter((r) => q.state!.includes(r.compliance.state));
  const { format: _f, ...filters } = q as ReportQuery;
  return { generatedAt: now.toISOString(), filters, summary, nodes: rows };
}

// ---- CSV (RFC 4180) ---------------------------------------------------------------------------------------

const CSV_HEADER = ['uuid', 'hostname', 'model', 'node_state', 'firmware_state', 'baseline', 'baseline_version', 'policy', 'component', 'devices', 'current', 'required', 'status', 'detail', 'facts_at'];

/** RFC 4180 §2: fields with a comma, quote or line break are quoted, quotes doubled, lines end in CRLF. Cells
 * that a spreadsheet would run as a formula (=, +, -, @, tab, CR first) get a leading ' — facts come from
 * the machines, so a hostile BIOS string must not become a formula on an operator's desk (OWASP CSV injection). */
export function csvCell(v: unknown): string {
  let s = v === null || v === undefined ? '' : String(v);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

export function reportCsv(report: FirmwareReportData): string {
  const lines = [CSV_HEADER.join(',')];
  for (const r of report.nodes) {
    const b = r.compliance.baseline;
    const base = [r.uuid, r.hostname, r.model, r.nodeState, r.compliance.state, b?.name, b?.version, b?.policy];
    const tail = [r.factsAt?.toISOString()];
    if (r.compliance.components.length === 0) lines.push([...base, '', '', '', '', r.compliance.state, r.compliance.state === 'unmanaged' ? 'no baseline matches' : '', ...tail].map(csvCell).join(','));
    for (const c of r.compliance.components) lines.push([...base, c.component, c.devices.join(' '), c.current, c.required, c.status, c.detail, ...tail].map(csvCell).join(','));
  }
  return `${lines.join('\r\n')}\r\n`;
}

// ---- the page ---------------------------------------------------------------------------------------------

/** Everything that reaches the page from the database or the query string goes through here. */
export function esc(v: unknown): string {
  return String(v ?? '').replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!);
}

const STATE_ORDER = ['compliant', 'updating', 'outdated', 'failed', 'unknown', 'unmanaged'] as const;
const STATE_COLOR: Record<(typeof STATE_ORDER)[number], string> = { compliant: '#2e7d32', updating: '#1565c0', outdated: '#ef6c00', failed: '#c62828', unknown: '#757575', unmanaged: '#b0bec5' };

function bar(b: SummaryBucket, kind: 'model' | 'component'): string {
  const segs = STATE_ORDER.filter((s) => b.counts[s] > 0)
    .map((s) => `<span class="seg" data-state="${s}" style="width:${((b.counts[s] / b.total) * 100).toFixed(2)}%;background:${STATE_COLOR[s]}" title="${esc(`${b.counts[s]} ${s}`)}"></span>`)
    .join('');
  const legend = STATE_ORDER.filter((s) => b.counts[s] > 0)
    .map((s) => `${b.counts[s]} ${s}`)
    .join(' · ');
  return `<div class="bar-row" data-${kind}="${esc(b.key)}"><div class="bar-label">${esc(b.key)}</div><div class="bar" role="img" aria-label="${esc(`${b.percentCompliant}% compliant`)}">${segs}</div><div class="bar-text">${esc(`${b.percentCompliant}% compliant (${b.counts.compliant} of ${b.total})`)} <span class="legend">${esc(legend)}</span></div></div>`;
}

function queryString(filters: FirmwareReportData['filters'], extra: Record<string, string> = {}): string {
  const p = new URLSearchParams();
  if (filters.state?.length) p.set('state', filters.state.join(','));
  if (filters.label && Object.keys(filters.label).length) p.set('label', Object.entries(filters.label).map(([k, v]) => `${k}=${v}`).join(','));
  if (filters.model) p.set('model', filters.model);
  if (filters.component) p.set('component', filters.component);
  for (const [k, v] of Object.entries(extra)) p.set(k, v);
  const s = p.toString();
  return s ? `?${s}` : '';
}

export function renderPage(report: FirmwareReportData, options: { models: string[]; components: string[] }): string {
  const s = report.summary;
  const f = report.filters;
  const bad = report.nodes.filter((r) => r.compliance.state !== 'compliant');
  const rows = bad.flatMap((r) => {
    const name = r.hostname ?? r.uuid;
    const links = `<a class="facts" href="/api/v1/nodes/${esc(encodeURIComponent(r.uuid))}">facts</a> · <a class="timeline" href="/api/v1/nodes/${esc(encodeURIComponent(r.uuid))}/events">timeline</a>`;
    const head = `<td class="node" title="${esc(r.uuid)}">${esc(name)}</td><td>${esc(r.model)}</td><td>${esc(r.nodeState)}</td><td>${r.compliance.baseline ? esc(`${r.compliance.baseline.name} v${r.compliance.baseline.version} (${r.compliance.baseline.policy})`) : '—'}</td>`;
    if (r.compliance.state === 'unmanaged') return [`<tr data-uuid="${esc(r.uuid)}" data-state="unmanaged">${head}<td>—</td><td class="note">no baseline matches this model</td><td><span class="pill" style="background:${STATE_COLOR.unmanaged}">unmanaged</span></td><td>${links}</td></tr>`];
    return r.compliance.components
      .filter((c) => c.status !== 'compliant')
      .map(
        (c) =>
          `<tr data-uuid="${esc(r.uuid)}" data-component="${esc(c.component)}" data-state="${esc(c.status)}">${head}<td>${esc(c.component)}${c.devices.length ? ` <small>${esc(c.devices.join(' '))}</small>` : ''}</td><td class="change"><span class="current">${esc(c.current ?? 'unknown')}</span> → <span class="required">${esc(c.required)}</span>${c.detail ? `<div class="detail">${esc(c.detail)}</div>` : ''}</td><td><span class="pill" style="background:${STATE_COLOR[c.status]}">${esc(c.status)}</span></td><td>${links}</td></tr>`,
      );
  });
  const option = (value: string, current: string | undefined, label = value) => `<option value="${esc(value)}"${current === value ? ' selected' : ''}>${esc(label)}</option>`;
  const stateNow = f.state?.length === 1 ? f.state[0] : undefined;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Firmware compliance · bootfarm</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1200px;padding:0 16px;color:#212121}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px}
.meta{color:#616161}.big{font-size:28px;font-weight:600}
form{display:flex;gap:8px;flex-wrap:wrap;align-items:end;margin:16px 0;padding:12px;background:#f5f5f5;border-radius:6px}
label{display:flex;flex-direction:column;font-size:12px;color:#555}select{max-width:260px}
.bar-row{display:grid;grid-template-columns:260px 1fr 340px;gap:12px;align-items:center;margin:6px 0}
.bar-label{font-weight:600;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.bar{display:flex;height:18px;background:#eceff1;border-radius:3px;overflow:hidden}
.seg{display:block;height:100%}.legend{color:#757575;font-size:12px}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #e0e0e0;vertical-align:top}
th{background:#fafafa;font-weight:600}.change{font-family:ui-monospace,monospace;white-space:nowrap}.node{font-family:ui-monospace,monospace;font-size:12px;white-space:nowrap}.required{color:#2e7d32}.current{color:#c62828}
.detail,.note{color:#757575;font-family:system-ui,sans-serif;font-size:12px;white-space:normal}
.pill{color:#fff;border-radius:10px;padding:1px 8px;font-size:12px}.keys span{display:inline-block;margin-right:12px}
.keys i{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
</style></head><body>
<h1>Firmware compliance</h1>
<div class="meta">Generated ${esc(report.generatedAt)} · <a href="/api/v1/reports/firmware${esc(queryString(f))}">JSON</a> · <a id="csv" href="/api/v1/reports/firmware${esc(queryString(f, { format: 'csv' }))}">CSV</a></div>
<p><span class="big" id="fleet-percent">${esc(s.percentCompliant)}%</span> of <span id="fleet-total">${esc(s.total)}</span> nodes compliant</p>
<div class="keys">${STATE_ORDER.map((st) => `<span><i style="background:${STATE_COLOR[st]}"></i>${esc(st)} ${esc(s.counts[st])}</span>`).join('')}</div>
<form method="get" action="/ui/firmware">
<label>State<select name="state"><option value="">any</option>${NODE_FIRMWARE_STATES.map((st) => option(st, stateNow)).join('')}</select></label>
<label>Model<select name="model"><option value="">any</option>${options.models.map((m) => option(m, f.model)).join('')}</select></label>
<label>Component<select name="component"><option value="">any</option>${options.components.map((c) => option(c, f.component)).join('')}</select></label>
<label>Labels (k=v,…)<input name="label" value="${esc(f.label ? Object.entries(f.label).map(([k, v]) => `${k}=${v}`).join(',') : '')}"></label>
<button type="submit">Filter</button> <a href="/ui/firmware">reset</a>
</form>
<h2>By model</h2>
<section id="by-model">${s.byModel.map((b) => bar(b, 'model')).join('\n') || '<p class="meta">No nodes.</p>'}</section>
<h2>By component</h2>
<section id="by-component">${s.byComponent.map((b) => bar(b, 'component')).join('\n') || '<p class="meta">No managed components.</p>'}</section>
<h2>Not compliant <span class="meta">(${esc(bad.length)} node${bad.length === 1 ? '' : 's'})</span></h2>
${
  rows.length
    ? `<table id="noncompliant"><thead><tr><th>Node</th><th>Model</th><th>Node state</th><th>Baseline</th><th>Component</th><th>Current → required</th><th>Status</th><th>Links</th></tr></thead><tbody>
${rows.join('\n')}
</tbody></table>`
    : '<p id="all-good">Every node shown is compliant.</p>'
}
</body></html>`;
}

// ---- metrics ----------------------------------------------------------------------------------------------

/**
 * Gauges computed at scrape time from the same rows as the report (so they cannot disagree with it):
 *   bootfarm_firmware_nodes{model,state}                 nodes per firmware state
 *   bootfarm_firmware_components{model,component,status} nodes per component status
 */
export function registerFirmwareMetrics(registry: Registry, rows: () => Promise<ReportRow[]>): void {
  // one computation serves both gauges in a scrape
  let pending: Promise<ReportRow[]> | null = null;
  const once = () => (pending ??= rows().finally(() => setTimeout(() => (pending = null), 0)));
  new Gauge({
    name: 'bootfarm_firmware_nodes',
    help: 'Nodes by firmware compliance state, per model',
    labelNames: ['model', 'state'] as const,
    registers: [registry],
    async collect() {
      const list = await once();
      this.reset();
      const byModel = new Map<string, Map<string, number>>();
      for (const r of list) {
        const m = byModel.get(r.model) ?? new Map<string, number>();
        byModel.set(r.model, m);
        m.set(r.compliance.state, (m.get(r.compliance.state) ?? 0) + 1);
      }
      for (const [model, m] of byModel) for (const state of NODE_FIRMWARE_STATES) this.set({ model, state }, m.get(state) ?? 0);
    },
  });
  new Gauge({
    name: 'bootfarm_firmware_components',
    help: 'Nodes by firmware component status, per model and component',
    labelNames: ['model', 'component', 'status'] as const,
    registers: [registry],
    async collect() {
      const list = await once();
      this.reset();
      const counts = new Map<string, { model: string; component: string; status: string; n: number }>();
      for (const r of list) {
        for (const c of r.compliance.components) {
          const k = JSON.stringify([r.model, c.component, c.status]);
          const e = counts.get(k) ?? { model: r.model, component: c.component, status: c.status, n: 0 };
          e.n++;
          counts.set(k, e);
        }
      }
      for (const e of counts.values()) this.set({ model: e.model, component: e.component, status: e.status }, e.n);
    },
  });
}

// ---- routes -----------------------------------------------------------------------------------------------

const BaselineListItem = z.object({ name: z.string(), version: z.number(), policy: z.string(), selector: z.record(z.string(), z.string()), components: z.number(), updatedAt: z.string(), updatedBy: z.string() });

export const FIRMWARE_ROUTES: RouteDoc[] = [
  { method: 'get', path: '/api/v1/firmware/baselines', summary: 'List firmware baselines', tag: 'firmware', auth: 'viewer', response: z.object({ baselines: z.array(BaselineListItem) }) },
  { method: 'post', path: '/api/v1/firmware/baselines', summary: 'Apply baselines (YAML or JSON body; same document the CLI takes); unchanged documents keep their version', tag: 'firmware', auth: 'admin' },
  { method: 'get', path: '/api/v1/firmware/baselines/{name}', summary: 'One baseline with its change history', tag: 'firmware', auth: 'viewer' },
  { method: 'delete', path: '/api/v1/firmware/baselines/{name}', summary: 'Delete a baseline (kept in history)', tag: 'firmware', auth: 'admin' },
  { method: 'get', path: '/api/v1/firmware/nodes/{uuid}', summary: "One node's firmware compliance from its latest facts", tag: 'firmware', auth: 'viewer' },
  { method: 'get', path: '/api/v1/agent/{uuid}/firmware', summary: 'Firmware plan for stage-1 (steps to run, empty when nothing to do)', tag: 'agent', auth: 'boot-token', response: FirmwarePlan },
  { method: 'post', path: '/api/v1/agent/{uuid}/firmware', summary: "The agent's report of each update command (exit code, output); compliance changes only with fresh facts", tag: 'agent', auth: 'boot-token', request: FirmwareReport },
  { method: 'get', path: '/api/v1/reports/firmware', summary: 'Fleet firmware report (filters: state, label=k=v, model, component; format=json|csv)', tag: 'reports', auth: 'viewer' },
  { method: 'get', path: '/ui/firmware', summary: 'Firmware compliance page', tag: 'ui', auth: 'viewer', produces: 'text/html' },
];

const CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

export function firmwareRoutes(deps: FirmwareApiDeps, requireRole: RequireRole): Hono {
  const app = new Hono();
  const { firmware, nodes, clock } = deps;
  const actorOf = (c: Context) => `api:${principalOf(c).name}`;
  const uuidParam = (c: Context) => parseWith(SmbiosUuid, c.req.param('uuid'));

  const agentNodeOf = (c: Context) => agentNode(c, nodes, uuidParam(c));

  async function report(c: Context) {
    const q = parseWith(ReportQuery, c.req.query());
    return { q, all: await fleetRows(firmware) };
  }

  app.get('/api/v1/firmware/baselines', requireRole('viewer'), async (c) => {
    const list = await firmware.listBaselines();
    return c.json({
      baselines: list.map((b) => ({ name: b.spec.name, version: b.version, policy: b.spec.policy, selector: b.spec.selector, components: b.spec.components.length, updatedAt: b.updatedAt.toISOString(), updatedBy: b.updatedBy })),
    });
  });

  app.post('/api/v1/firmware/baselines', requireRole('admin'), async (c) => {
    const type = (c.req.header('content-type') ?? '').toLowerCase();
    if (type && !/^(application\/(json|yaml|x-yaml)|text\/(yaml|x-yaml|plain))\b/.test(type)) {
      throw new AppError(415, 'unsupported_media_type', `send the baseline as application/json or application/yaml, not ${type}`);
    }
    const text = await c.req.text();
    if (Buffer.byteLength(text) > MAX_DOCUMENT_BYTES) throw new AppError(413, 'payload_too_large', `a baseline document may be at most ${MAX_DOCUMENT_BYTES} bytes`);
    const source = c.req.query('source')?.slice(0, 256) || 'request body';
    let specs;
    try {
      specs = parseBaselineDocument(text, source);
    } catch (e) {
      if (e instanceof BaselineDocumentError) {
        throw new AppError(422, 'validation_failed', e.issues.map((i) => formatIssue(source, i)).join('; '), { issues: e.issues });
      }
      throw e;
    }
    const results = [];
    for (const spec of specs) results.push(await firmware.applyBaseline(spec, { actor: actorOf(c), source }));
    return c.json({ results }, results.some((r) => r.action === 'created') ? 201 : 200);
  });

  app.get('/api/v1/firmware/baselines/:name', requireRole('viewer'), async (c) => {
    const name = c.req.param('name');
    const b = await firmware.getBaseline(name);
    if (!b) throw notFound(`baseline ${name}`, { name });
    return c.json({ baseline: b.spec, version: b.version, source: b.source, createdAt: b.createdAt, updatedAt: b.updatedAt, updatedBy: b.updatedBy, history: await firmware.history(name) });
  });

  app.delete('/api/v1/firmware/baselines/:name', requireRole('admin'), async (c) => {
    await firmware.deleteBaseline(c.req.param('name'), actorOf(c));
    return c.body(null, 204);
  });

  app.get('/api/v1/firmware/nodes/:uuid', requireRole('viewer'), async (c) => {
    const uuid = uuidParam(c);
    const [row] = await fleetRows(firmware, { uuid });
    if (!row) throw notFound(`node ${uuid}`, { uuid });
    return c.json(row);
  });

  app.get('/api/v1/agent/:uuid/firmware', async (c) => {
    const node = await agentNodeOf(c);
    const open = await firmware.openAttempts(node.uuid);
    const current = open.at(-1);
    let plan: FirmwarePlan;
    if (current) {
      const b = await firmware.getBaseline(current.baselineName);
      plan = {
        uuid: node.uuid,
        baseline: { name: current.baselineName, version: current.baselineVersion, policy: b?.spec.policy ?? 'enforce' },
        attempt: current.number,
        steps: current.steps,
        reboot: current.steps.some((s) => s.reboot),
      };
    } else {
      // nothing to run: still say which baseline the node falls under, for the agent's log
      const [row] = await fleetRows(firmware, { uuid: node.uuid });
      plan = { uuid: node.uuid, baseline: row?.compliance.baseline ?? null, attempt: null, steps: [], reboot: false };
    }
    return c.json(plan);
  });

  app.post('/api/v1/agent/:uuid/firmware', async (c) => {
    const node = await agentNodeOf(c);
    const body = await jsonBody(c, FirmwareReport);
    const attempt = await firmware.recordReport(node.uuid, body.attempt, body.results, 'agent');
    const res: FirmwareReportResponse = { attempt: attempt.number, ok: attempt.ok === true, next: attempt.ok && attempt.steps.some((s) => s.reboot) ? 'reboot' : 'register' };
    return c.json(res);
  });

  app.get('/api/v1/reports/firmware', requireRole('viewer'), async (c) => {
    const { q, all } = await report(c);
    const data = filterReport(all, q, clock.now());
    if (q.format === 'csv') {
      return c.body(reportCsv(data), 200, { 'content-type': 'text/csv; charset=utf-8; header=present', 'content-disposition': 'attachment; filename="firmware-report.csv"' });
    }
    return c.json(data);
  });

  app.get('/ui/firmware', requireRole('viewer'), async (c) => {
    // a form submits empty fields for "any", and links pick up stray parameters: keep only the filters we know
    const known = new Set(['state', 'label', 'model', 'component']);
    const raw = Object.fromEntries(Object.entries(c.req.query()).filter(([k, v]) => v !== '' && known.has(k)));
    const q = parseWith(ReportQuery, raw);
    const all = await fleetRows(firmware);
    const data = filterReport(all, q, clock.now());
    const models = [...new Set(all.map((r) => r.model))].sort();
    const components = [...new Set(all.flatMap((r) => r.compliance.components.map((x) => x.component)))].sort();
    c.header('content-security-policy', CSP);
    c.header('x-content-type-options', 'nosniff');
    return c.html(renderPage(data, { models, components }));
  });

  return app;
}

/** For createApp's `extra`: mounts the firmware routes at the root (their paths are absolute). */
export function firmwareMount(deps: FirmwareApiDeps): (requireRole: RequireRole) => Mount {
  if (deps.metrics) registerFirmwareMetrics(deps.metrics, () => fleetRows(deps.firmware));
  return (requireRole) => ({ at: '/', app: firmwareRoutes(deps, requireRole), docs: FIRMWARE_ROUTES });
}
