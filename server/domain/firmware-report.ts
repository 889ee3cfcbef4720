// The fleet firmware report as pure functions (issue 7, split out of the API in issue 18): one compliance row
// per node from its latest facts and the baselines, and the filtered report with its summary. No storage, no
// HTTP: server/api/firmware.ts reads the store, calls these, and hands the result to a view
// (server/api/firmware-views.ts: JSON, CSV, the page, the gauges).
import { Facts } from '../contract/facts.ts';
import type { NodeFirmwareState } from '../contract/firmware.ts';
import { cablingResult, type StoredCablingPlan } from './cabling.ts';
import { evaluateCompliance, identityFromFacts, modelOf, selectBaseline, summarize, type AttemptSummary, type ReportRow, type StoredBaseline } from './firmware.ts';

/** A node as the report needs it; the firmware store's fleet() returns exactly this. */
export interface ReportNode {
  uuid: string;
  hostname: string | null;
  state: string;
  manufacturer: string | null;
  product: string | null;
  labels: Record<string, string>;
  /** the latest facts document as stored; parsed again here */
  facts: unknown;
  factsAt: Date | null;
  attempt: AttemptSummary | null;
}

/** What a report is narrowed to; every field optional. */
export interface ReportFilters {
  /** firmware states to list (the summary still covers every state of the slice) */
  state?: NodeFirmwareState[] | undefined;
  /** labels that must all match */
  label?: Record<string, string> | undefined;
  /** model as reports name it: "<manufacturer> <product>" (case- and space-insensitive) */
  model?: string | undefined;
  /** component id: bios, bmc, nic:<driver>, nic:<vendor:device> */
  component?: string | undefined;
}

export interface FirmwareReportData {
  generatedAt: string;
  filters: ReportFilters;
  /** over the nodes that pass the label, model and component filters (not the state filter), so the bars show the slice */
  summary: ReturnType<typeof summarize>;
  nodes: ReportRow[];
}

const normModel = (s: string) => s.trim().replace(/\s+/g, ' ').toLowerCase();

/** One compliance row per node: the most specific baseline for its hardware, evaluated against its facts. */
export function complianceRows<B extends StoredBaseline>(fleet: readonly ReportNode[], baselines: readonly B[], cablingPlans: readonly StoredCablingPlan[] = []): ReportRow[] {
  return fleet.map((n) => rowOf(n, baselines, cablingPlans));
}

function rowOf<B extends StoredBaseline>(n: ReportNode, baselines: readonly B[], cablingPlans: readonly StoredCablingPlan[]): ReportRow {
  // facts were validated at registration; a document written by an older agent may still not parse today
  const parsed = n.facts ? Facts.safeParse(n.facts) : null;
  const facts = parsed?.success ? parsed.data : null;
  const id = facts ? identityFromFacts(facts) : { manufacturer: n.manufacturer, product: n.product };
  const baseline = selectBaseline(baselines, id);
  const attempt = baseline && n.attempt ? n.attempt : null;
  return { uuid: n.uuid, hostname: n.hostname, model: modelOf(id), nodeState: n.state, labels: n.labels, compliance: evaluateCompliance(baseline, facts, attempt), secureBoot: facts?.firmware?.secureBoot ?? null, factsAt: n.factsAt, cabling: cablingResult(cablingPlans, n.uuid, n.labels, n.facts) };
}

/** The report for a filter: label and model narrow the slice, component narrows each row to that component,
 * the summary is taken over the slice, then state picks the rows listed. */
export function filterReport(all: readonly ReportRow[], q: ReportFilters, now: Date): FirmwareReportData {
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
  const filters: ReportFilters = {};
  if (q.state) filters.state = q.state;
  if (q.label) filters.label = q.label;
  if (q.model) filters.model = q.model;
  if (q.component) filters.component = q.component;
  return { generatedAt: now.toISOString(), filters, summary, nodes: rows };
}

/** The choices the page offers in its filter form: every model and component in the fleet, sorted. */
export function reportOptions(all: readonly ReportRow[]): { models: string[]; components: string[] } {
  return {
    models: [...new Set(all.map((r) => r.model))].sort(),
    components: [...new Set(all.flatMap((r) => r.compliance.components.map((x) => x.component)))].sort(),
  };
}
