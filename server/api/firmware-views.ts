// The firmware report's views (split out of the routes in issue 18): CSV (RFC 4180), the /ui/firmware page, and
// the Prometheus gauges. Each takes data the domain computed (server/domain/firmware-report.ts) and renders it;
// none reads the store or the request.
import { Gauge, type Registry } from 'prom-client';
import { NODE_FIRMWARE_STATES } from '../contract/firmware.ts';
import type { ReportRow, SummaryBucket } from '../domain/firmware.ts';
import type { FirmwareReportData } from '../domain/firmware-report.ts';

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
