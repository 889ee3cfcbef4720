// The firmware report's views (split out of the routes in issue 18): CSV (RFC 4180) and the Prometheus gauges
// (the /ui/firmware page is JSX: server/api/views/firmware.tsx). Each takes data the domain computed (server/domain/firmware-report.ts) and renders it;
// none reads the store or the request.
import { Gauge, type Registry } from 'prom-client';
import { NODE_FIRMWARE_STATES } from '../contract/firmware.ts';
import type { ReportRow } from '../domain/firmware.ts';
import type { FirmwareReportData } from '../domain/firmware-report.ts';

// ---- CSV (RFC 4180) ---------------------------------------------------------------------------------------

const CSV_HEADER = ['uuid', 'hostname', 'model', 'node_state', 'firmware_state', 'baseline', 'baseline_version', 'policy', 'component', 'devices', 'current', 'required', 'status', 'detail', 'facts_at', 'secure_boot', 'cabling_state', 'cabling_policy', 'cabling_detail'];

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
    // cabling beside firmware (issue 16 item 5): compliant | failed | unplanned, the policy, what is wrong
    // secure_boot: firmware.secureBoot from the latest facts (issue 19); empty when the agent did not report it
    const tail = [r.factsAt?.toISOString(), r.secureBoot, r.cabling?.status ?? 'unplanned', r.cabling?.policy, r.cabling?.reason?.replace(/^cabling: /, '')];
    if (r.compliance.components.length === 0) lines.push([...base, '', '', '', '', r.compliance.state, r.compliance.state === 'unmanaged' ? 'no baseline matches' : '', ...tail].map(csvCell).join(','));
    for (const c of r.compliance.components) lines.push([...base, c.component, c.devices.join(' '), c.current, c.required, c.status, c.detail, ...tail].map(csvCell).join(','));
  }
  return `${lines.join('\r\n')}\r\n`;
}

// ---- metrics ----------------------------------------------------------------------------------------------

/**
 * Gauges computed at scrape time from the same rows as the report (so they cannot disagree with it):
 *   bootfarm_firmware_nodes{model,state}                 nodes per firmware state
 *   bootfarm_firmware_components{model,component,status} nodes per component status
 */
export function registerFirmwareMetrics(registry: Registry, rows: () => Promise<ReportRow[]>, { timeoutMs = 2000 }: { timeoutMs?: number } = {}): void {
  // A scrape must answer while the database is slow or away (a replica whose pool waits on locks, an outage):
  // that is when the operator looks at /metrics. So the report rows get timeoutMs; after that, or on an error,
  // the gauges keep the last good rows and bootfarm_firmware_report_stale says so. One computation serves both
  // gauges in a scrape.
  let last: ReportRow[] = [];
  let stale = 0;
  let pending: Promise<ReportRow[]> | null = null;
  const fresh = async (): Promise<ReportRow[]> => {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), timeoutMs)));
    try {
      const got = await Promise.race([rows().then((l) => (last = l)), late]);
      stale = got ? 0 : 1;
    } catch {
      stale = 1;
    } finally {
      clearTimeout(timer);
    }
    return last;
  };
  const once = () => (pending ??= fresh().finally(() => setTimeout(() => (pending = null), 0)));
  new Gauge({
    name: 'bootfarm_firmware_report_stale',
    help: 'Whether the last scrape served the previous firmware rows because the database did not answer in time (1) or fresh ones (0)',
    registers: [registry],
    async collect() {
      await once();
      this.set(stale);
    },
  });
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
