// `bootfarm firmware …`: baselines and the compliance report, over a running server's admin API (like the
// other CLI commands). `baseline apply` validates the file locally first, so mistakes are reported against the
// file's own lines ("r650.yaml:14:18: components[1].minimum: …") before anything is sent.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { stringify } from 'yaml';
import type { ApiClient } from './http.ts';
import { BaselineDocumentError, parseBaselineDocument } from '../domain/firmware-baseline.ts';

export const FIRMWARE_USAGE = `  firmware baseline apply FILE.yaml|FILE.json   create or change baselines (validated locally first)
  firmware baseline list [--json]
  firmware baseline show NAME [--json]             the baseline and its change history
  firmware report [state=S] [model=M] [component=C] [label=k=v] [--json]`;

type Out = (line: string) => void;

export interface FirmwareCliOptions {
  api: ApiClient;
  out: Out;
  json?: boolean;
  readFile?: (path: string) => string;
  /** the CLI's error type: printed without a stack trace */
  fail?: (message: string) => Error;
}

const pad = (s: unknown, n: number) => String(s ?? '-').padEnd(n);

interface BaselineList {
  baselines: { name: string; version: number; policy: string; selector: Record<string, string>; components: number; updatedAt: string; updatedBy: string }[];
}

export async function runFirmware(args: string[], opts: FirmwareCliOptions): Promise<void> {
  const { api, out } = opts;
  const fail = opts.fail ?? ((m: string) => new Error(m));
  const [group, sub, arg] = args;
  if (group === 'baseline' && sub === 'apply') {
    if (!arg) throw fail(`firmware baseline apply: a file is required\n${FIRMWARE_USAGE}`);
    let text: string;
    try {
      text = (opts.readFile ?? ((p) => readFileSync(p, 'utf8')))(arg);
    } catch (e) {
      throw fail(`cannot read ${arg}: ${(e as Error).message}`);
    }
    let specs;
    try {
      specs = parseBaselineDocument(text, arg);
    } catch (e) {
      if (e instanceof BaselineDocumentError) throw fail(e.message);
      throw e;
    }
    const res = (await api.post(`/api/v1/firmware/baselines?source=${encodeURIComponent(basename(arg))}`, specs)) as { results: { name: string; version: number; action: string }[] };
    if (opts.json) return out(JSON.stringify(res.results, null, 2));
    for (const r of res.results) out(`${r.name}: ${r.action} (version ${r.version})`);
    return;
  }
  if (group === 'baseline' && sub === 'list') {
    const res = (await api.get('/api/v1/firmware/baselines')) as BaselineList;
    if (opts.json) return out(JSON.stringify(res.baselines, null, 2));
    out(`${pad('NAME', 24)}${pad('VERSION', 9)}${pad('POLICY', 9)}${pad('SELECTOR', 48)}${pad('COMPONENTS', 12)}UPDATED`);
    for (const b of res.baselines) out(`${pad(b.name, 24)}${pad(b.version, 9)}${pad(b.policy, 9)}${pad(Object.values(b.selector).join(' / '), 48)}${pad(b.components, 12)}${b.updatedAt} by ${b.updatedBy}`);
    return;
  }
  if (group === 'baseline' && sub === 'show') {
    if (!arg) throw fail('firmware baseline show: a baseline name is required');
    const res = (await api.get(`/api/v1/firmware/baselines/${encodeURIComponent(arg)}`)) as { baseline: unknown; version: number; history: { version: number; action: string; changedAt: string; actor: string; source: string | null }[] };
    if (opts.json) return out(JSON.stringify(res, null, 2));
    out(`# version ${res.version}`);
    out(stringify(res.baseline).trimEnd());
    out('# history');
    for (const h of res.history) out(`#   v${h.version} ${pad(h.action, 7)} ${h.changedAt} by ${h.actor}${h.source ? ` from ${h.source}` : ''}`);
    return;
  }
  if (group === 'report') {
    const qs = new URLSearchParams();
    for (const a of args.slice(1)) {
      const at = a.indexOf('=');
      if (at < 1) throw fail(`firmware report: filters are key=value (state, model, component, label), not "${a}"`);
      qs.append(a.slice(0, at), a.slice(at + 1));
    }
    const res = (await api.get(`/api/v1/reports/firmware${qs.size ? `?${qs}` : ''}`)) as {
      summary: { total: number; percentCompliant: number; byModel: { key: string; total: number; percentCompliant: number }[]; byComponent: { key: string; total: number; percentCompliant: number }[] };
      nodes: { uuid: string; hostname: string | null; model: string; compliance: { state: string; components: { component: string; current: string | null; required: string; status: string }[] } }[];
    };
    if (opts.json) return out(JSON.stringify(res, null, 2));
    out(`${res.summary.percentCompliant}% of ${res.summary.total} nodes compliant`);
    for (const b of res.summary.byModel) out(`  model      ${pad(b.key, 40)}${b.percentCompliant}% of ${b.total}`);
    for (const b of res.summary.byComponent) out(`  component  ${pad(b.key, 40)}${b.percentCompliant}% of ${b.total}`);
    const bad = res.nodes.filter((n) => n.compliance.state !== 'compliant');
    if (bad.length) out(`${pad('NODE', 38)}${pad('STATE', 11)}${pad('COMPONENT', 18)}CURRENT → REQUIRED`);
    for (const n of bad) {
      const comps = n.compliance.components.filter((c) => c.status !== 'compliant');
      if (!comps.length) out(`${pad(n.hostname ?? n.uuid, 38)}${pad(n.compliance.state, 11)}${pad('-', 18)}${n.compliance.state === 'unmanaged' ? `no baseline for ${n.model}` : ''}`);
      for (const c of comps) out(`${pad(n.hostname ?? n.uuid, 38)}${pad(c.status, 11)}${pad(c.component, 18)}${c.current ?? 'unknown'} → ${c.required}`);
    }
    return;
  }
  throw fail(`unknown firmware command "${args.join(' ')}"\n${FIRMWARE_USAGE}`);
}
