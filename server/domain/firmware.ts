// Firmware compliance as pure rules (issue 7): which baseline a machine falls under, how each of its
// components stands against that baseline, and what the inspection gate does about it. No storage, no time,
// no HTTP: the store supplies baselines and attempts, the API and the gate call these functions.
import type { CablingResult } from './cabling.ts';
import type { Facts, SecureBootState } from '../contract/facts.ts';
import {
  componentId,
  type Baseline,
  type BaselineComponent,
  type BaselineSelector,
  type ComponentStatus,
  type FirmwarePolicy,
  type NodeFirmwareState,
  type PlanStep,
  type StepResult,
} from '../contract/firmware.ts';
import type { InspectionVerdict } from './inspection.ts';
import { checkVersion, describeRule, type RuleVerdict, type VersionRule } from './firmware-version.ts';

// ---- selection --------------------------------------------------------------------------------------------

/** What a selector is matched against, from SMBIOS: type 1 manufacturer/product/SKU, type 2 board product. */
export interface HardwareIdentity {
  manufacturer?: string | null | undefined;
  product?: string | null | undefined;
  board?: string | null | undefined;
  sku?: string | null | undefined;
}

export function identityFromFacts(facts: Facts): HardwareIdentity {
  return { manufacturer: facts.system.manufacturer, product: facts.system.product, board: facts.baseboard?.product, sku: facts.system.sku };
}

const norm = (s: string | null | undefined) => (s ?? '').trim().replace(/\s+/g, ' ').toLowerCase();

export function selectorMatches(sel: BaselineSelector, id: HardwareIdentity): boolean {
  const fields = ['manufacturer', 'product', 'board', 'sku'] as const;
  return fields.every((f) => sel[f] === undefined || (norm(id[f]) !== '' && norm(sel[f]) === norm(id[f])));
}

/** How many fields a selector pins down; manufacturer and product always, board and SKU optionally. */
export const specificity = (sel: BaselineSelector) => 2 + (sel.board !== undefined ? 1 : 0) + (sel.sku !== undefined ? 1 : 0);

/**
 * The baseline for a machine: every matching baseline, most specific first, then by name, and the first wins
 * (the order matchbox's SelectGroup uses). Deterministic whatever order the store returns them in. null when
 * nothing matches: the node is "unmanaged", which is an outcome, not an error.
 */
export function selectBaseline<B extends { spec: Pick<Baseline, 'name' | 'selector'> }>(baselines: readonly B[], id: HardwareIdentity): B | null {
  const matching = baselines.filter((b) => selectorMatches(b.spec.selector, id));
  matching.sort((a, b) => specificity(b.spec.selector) - specificity(a.spec.selector) || (a.spec.name < b.spec.name ? -1 : a.spec.name > b.spec.name ? 1 : 0));
  return matching[0] ?? null;
}

/** The "model" reports group by: manufacturer and product as the machine reports them. */
export function modelOf(id: HardwareIdentity): string {
  const m = [id.manufacturer, id.product].map((s) => (s ?? '').trim().replace(/\s+/g, ' ')).filter(Boolean).join(' ');
  return m || 'unknown';
}

// ---- compliance -------------------------------------------------------------------------------------------

export interface StoredBaseline {
  spec: Baseline;
  version: number;
}

/** The node's most recent firmware attempt, as the store keeps it. */
export interface AttemptSummary {
  number: number;
  /** component ids the plan listed */
  components: string[];
  /** what the agent reported; null until it reports */
  results: StepResult[] | null;
  /** open: waiting for fresh facts; closed: the streak ended (compliant, or no longer enforced); gave-up: quarantined */
  outcome: 'open' | 'closed' | 'gave-up';
}

/** The component id a baseline's `secureBoot: required` adds to each node's compliance. */
export const SECURE_BOOT_COMPONENT = 'secure-boot';

export interface ComponentCompliance {
  component: string;
  type: BaselineComponent['type'] | typeof SECURE_BOOT_COMPONENT;
  /** nic: the interfaces that matched */
  devices: string[];
  current: string | null;
  required: string;
  status: ComponentStatus;
  /** the status from the facts alone, before an attempt's updating/failed is laid over it */
  factStatus: RuleVerdict;
  detail?: string;
  /** the baseline has an update package for it */
  updatable: boolean;
}

export interface NodeCompliance {
  state: NodeFirmwareState;
  baseline: { name: string; version: number; policy: FirmwarePolicy } | null;
  components: ComponentCompliance[];
}

const ruleOf = (c: BaselineComponent): VersionRule =>
  c.exact !== undefined ? { exact: c.exact } : c.minimum !== undefined ? { minimum: c.minimum } : { allowed: c.allowed ?? [] };

/** worst first: a node's state is its worst component's */
const SEVERITY: readonly ComponentStatus[] = ['failed', 'updating', 'outdated', 'unknown', 'compliant'];
const worst = (list: readonly ComponentStatus[]): ComponentStatus => SEVERITY.find((s) => list.includes(s)) ?? 'compliant';

const nicMatches = (c: BaselineComponent, n: Facts['nics'][number]) => (c.driver !== undefined ? norm(n.driver) === norm(c.driver) : norm(n.pciId) === norm(c.pciId));

function evaluateComponent(c: BaselineComponent, facts: Facts | null): Omit<ComponentCompliance, 'status'> {
  const rule = ruleOf(c);
  const base = { component: componentId(c), type: c.type, required: describeRule(rule), updatable: c.update !== undefined };
  if (!facts) return { ...base, devices: [], current: null, factStatus: 'unknown', detail: 'no facts reported yet' };
  if (c.type === 'bios' || c.type === 'bmc') {
    const current = (c.type === 'bios' ? facts.bios?.version : facts.bmc?.firmwareVersion)?.trim() || null;
    const factStatus = checkVersion(current, rule);
    const detail = current === null ? `${c.type === 'bios' ? 'bios.version' : 'bmc.firmwareVersion'} missing from facts` : factStatus === 'unknown' ? `"${current}" cannot be compared with "${describeRule(rule)}"` : undefined;
    return { ...base, devices: [], current, factStatus, ...(detail ? { detail } : {}) };
  }
  const nics = facts.nics.filter((n) => nicMatches(c, n));
  if (nics.length === 0) return { ...base, devices: [], current: null, factStatus: 'unknown', detail: `no NIC with ${c.driver !== undefined ? `driver ${c.driver}` : `PCI id ${c.pciId}`}` };
  const verdicts = nics.map((n) => checkVersion(n.firmwareVersion, rule));
  const versions = [...new Set(nics.map((n) => n.firmwareVersion?.trim()).filter((v): v is string => !!v))];
  const factStatus: RuleVerdict = verdicts.includes('outdated') ? 'outdated' : verdicts.includes('unknown') ? 'unknown' : 'compliant';
  const missing = nics.filter((n) => !n.firmwareVersion?.trim()).map((n) => n.name);
  return {
    ...base,
    devices: nics.map((n) => n.name),
    current: versions.length ? versions.join(', ') : null,
    factStatus,
    ...(missing.length ? { detail: `no firmware version for ${missing.join(', ')}` } : {}),
  };
}

/**
 * `secureBoot: required`: only 'enabled' complies. disabled, setup-mode (no Platform Key: nothing is verified)
 * and not-uefi are `outdated`; a state the agent could not read, or facts from an agent too old to report it,
 * are `unknown`. Both are non-compliant and the detail names what the node said.
 */
function evaluateSecureBoot(facts: Facts | null): Omit<ComponentCompliance, 'status'> {
  const base = { component: SECURE_BOOT_COMPONENT, type: SECURE_BOOT_COMPONENT, devices: [] as string[], required: 'enabled', updatable: false } as const;
  if (!facts) return { ...base, current: null, factStatus: 'unknown', detail: 'no facts reported yet' };
  const state = facts.firmware?.secureBoot;
  if (state === undefined) return { ...base, current: null, factStatus: 'unknown', detail: 'firmware.secureBoot missing from facts (agent too old?); the baseline requires Secure Boot enabled' };
  if (state === 'enabled') return { ...base, current: state, factStatus: 'compliant' };
  return { ...base, current: state, factStatus: state === 'unknown' ? 'unknown' : 'outdated', detail: `Secure Boot is ${state}; the baseline requires it enabled` };
}

/**
 * A node's compliance from its latest facts. The facts alone decide compliant / outdated / unknown; an attempt
 * only adds "updating" (a plan is out) or "failed" (the agent reported a failing command, or the gate gave up)
 * to components that the facts still show as not compliant — the server never takes a version from the agent's
 * word, only from the next registration's facts.
 */
export function evaluateCompliance(baseline: StoredBaseline | null, facts: Facts | null, attempt: AttemptSummary | null = null): NodeCompliance {
  if (!baseline) return { state: 'unmanaged', baseline: null, components: [] };
  const applicable = baseline.spec.components.filter((c) => !(c.optional && facts && !facts.nics.some((n) => nicMatches(c, n))));
  const evaluated = applicable.map((c) => evaluateComponent(c, facts));
  if (baseline.spec.secureBoot === 'required') evaluated.push(evaluateSecureBoot(facts));
  const components = evaluated.map((e): ComponentCompliance => {
    let status: ComponentStatus = e.factStatus;
    if (attempt && e.factStatus !== 'compliant' && attempt.components.includes(e.component)) {
      const result = attempt.results?.find((r) => r.component === e.component);
      const failedRun = result !== undefined && (result.exitCode !== 0 || result.timedOut === true);
      if (attempt.outcome === 'gave-up' || (attempt.outcome === 'open' && failedRun)) status = 'failed';
      else if (attempt.outcome === 'open') status = 'updating';
    }
    return { ...e, status };
  });
  return {
    state: worst(components.map((c) => c.status)),
    baseline: { name: baseline.spec.name, version: baseline.version, policy: baseline.spec.policy },
    components,
  };
}

// ---- the inspection gate ----------------------------------------------------------------------------------

export type GateDecision =
  | { verdict: InspectionVerdict & { action: 'ready' }; steps: [] }
  | { verdict: InspectionVerdict & { action: 'firmware' }; steps: PlanStep[] }
  | { verdict: InspectionVerdict & { action: 'quarantine' }; steps: [] };

const showCurrent = (c: ComponentCompliance) => c.current ?? 'unknown';

/**
 * What the gate does after a registration, from the facts-only compliance and the number of update attempts
 * already made since the node was last compliant:
 *   - no baseline, or policy report → ready (report still shows the node's compliance);
 *   - enforce and compliant → ready;
 *   - enforce and something is unknown or has no update package → quarantine: nothing here can fix it and
 *     flashing firmware over a version we cannot read is not a risk to take unattended;
 *   - enforce, outdated, attempts used up → quarantine, naming what is still wrong;
 *   - otherwise → firmware: stage-1 runs the plan's steps.
 */
export function decideGate(baseline: StoredBaseline | null, compliance: NodeCompliance, attemptsSoFar: number): GateDecision {
  if (!baseline) return { verdict: { action: 'ready', reason: 'firmware: no baseline matches (unmanaged)' }, steps: [] };
  const label = `baseline ${baseline.spec.name} v${baseline.version}`;
  const bad = compliance.components.filter((c) => c.factStatus !== 'compliant');
  const summary = bad.map((c) => (c.factStatus === 'unknown' ? `${c.component} unknown${c.detail ? ` (${c.detail})` : ''}` : `${c.component} ${showCurrent(c)} → ${c.required}`)).join('; ');
  if (bad.length === 0) return { verdict: { action: 'ready', reason: `firmware compliant with ${label}` }, steps: [] };
  if (baseline.spec.policy === 'report') return { verdict: { action: 'ready', reason: `firmware not compliant with ${label} (policy report): ${summary}` }, steps: [] };
  const stuck = bad.filter((c) => c.factStatus === 'unknown' || !c.updatable);
  if (stuck.length) {
    // Secure Boot has no update package by design: its detail says what the node reported and what is required
    const why = stuck.map((c) => (c.component === SECURE_BOOT_COMPONENT ? `${c.component}: ${c.detail}` : c.factStatus === 'unknown' ? `${c.component} version unknown${c.detail ? ` (${c.detail})` : ''}` : `${c.component} ${showCurrent(c)} → ${c.required} has no update package`)).join('; ');
    return { verdict: { action: 'quarantine', reason: `firmware (${label}, enforce): ${why}` }, steps: [] };
  }
  if (attemptsSoFar >= baseline.spec.maxAttempts) {
    return { verdict: { action: 'quarantine', reason: `firmware (${label}, enforce): still ${summary} after ${attemptsSoFar} update attempt${attemptsSoFar === 1 ? '' : 's'}` }, steps: [] };
  }
  return { verdict: { action: 'firmware', reason: `firmware update required (${label}): ${summary}` }, steps: planSteps(baseline.spec, compliance) };
}

/** The steps for every outdated component that has an update package, in baseline order. */
export function planSteps(spec: Baseline, compliance: NodeCompliance): PlanStep[] {
  const steps: PlanStep[] = [];
  for (const c of spec.components) {
    const state = compliance.components.find((x) => x.component === componentId(c));
    if (!state || state.factStatus !== 'outdated' || !c.update) continue;
    steps.push({
      component: state.component,
      devices: state.devices,
      current: state.current,
      required: state.required,
      package: { url: `/images/${c.update.sha256}`, sha256: c.update.sha256 },
      command: c.update.command,
      timeoutSeconds: c.update.timeoutSeconds,
      reboot: c.update.reboot,
    });
  }
  return steps;
}

// ---- fleet summary ----------------------------------------------------------------------------------------

export interface ReportRow {
  uuid: string;
  hostname: string | null;
  model: string;
  nodeState: string;
  labels: Record<string, string>;
  compliance: NodeCompliance;
  /** firmware.secureBoot from the latest facts, shown whether or not a baseline requires it; null: not reported */
  secureBoot: SecureBootState | null;
  factsAt: Date | null;
  /** cabling compliance beside firmware (issue 16 item 5): the node's plan against its latest LLDP facts */
  cabling?: CablingResult;
}

export interface SummaryBucket {
  key: string;
  total: number;
  counts: Record<NodeFirmwareState, number>;
  /** compliant / total × 100, one decimal; unmanaged nodes count in the total (they are not compliant) */
  percentCompliant: number;
}

const emptyCounts = (): Record<NodeFirmwareState, number> => ({ compliant: 0, outdated: 0, unknown: 0, updating: 0, failed: 0, unmanaged: 0 });
const pct = (n: number, d: number) => (d === 0 ? 0 : Math.round((n / d) * 1000) / 10);

/** Percent compliant by model (node state) and by component (component status), sorted by key. */
export function summarize(rows: readonly ReportRow[]): { total: number; percentCompliant: number; counts: Record<NodeFirmwareState, number>; byModel: SummaryBucket[]; byComponent: SummaryBucket[] } {
  const counts = emptyCounts();
  const byModel = new Map<string, SummaryBucket>();
  const byComponent = new Map<string, SummaryBucket>();
  const bucket = (m: Map<string, SummaryBucket>, key: string) => {
    let b = m.get(key);
    if (!b) m.set(key, (b = { key, total: 0, counts: emptyCounts(), percentCompliant: 0 }));
    return b;
  };
  for (const r of rows) {
    counts[r.compliance.state]++;
    const b = bucket(byModel, r.model);
    b.total++;
    b.counts[r.compliance.state]++;
    for (const c of r.compliance.components) {
      const cb = bucket(byComponent, c.component);
      cb.total++;
      cb.counts[c.status]++;
    }
  }
  const done = (m: Map<string, SummaryBucket>) =>
    [...m.values()].map((b) => ({ ...b, percentCompliant: pct(b.counts.compliant, b.total) })).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return { total: rows.length, percentCompliant: pct(counts.compliant, rows.length), counts, byModel: done(byModel), byComponent: done(byComponent) };
}
