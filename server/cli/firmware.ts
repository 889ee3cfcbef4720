// `bootfarm firmware …`: baselines and the compliance report, over a running server's admin API (like the
// other CLI commands). `baseline apply` validates the file locally first, so mistakes are reported against the
// file's own lines ("r650.yaml:14:18: components[1].minimum: …") before anything is sent.
import { basename } from 'node:path';
import { stringify } from 'yaml';
import type { Command } from 'commander';
import { runArea, type CliContext, type ContextOptions } from './context.ts';
import { loadDocument, readUtf8, type ReadFile } from './document.ts';
import { BaselineDocumentError, parseBaselineDocument } from '../domain/firmware-baseline.ts';

const pad = (s: unknown, n: number) => String(s ?? '-').padEnd(n);

interface BaselineList {
  baselines: { name: string; version: number; policy: string; selector: Record<string, string>; components: number; secureBoot?: 'required' | null; updatedAt: string; updatedBy: string }[];
}

export function register(program: Command, ctx: CliContext, readFile: ReadFile = readUtf8): void {
  const firmware = program.command('firmware').description('firmware baselines and the compliance report');
  const baseline = firmware.command('baseline').description('firmware baselines');
  const json = () => ctx.globals().json;
  const { out } = ctx;

  baseline
    .command('apply')
    .description('create or change baselines from a YAML/JSON file (validated locally first)')
    .argument('<file>', 'FILE.yaml or FILE.json')
    .action(async (file: string) => {
      const { doc: specs } = loadDocument(ctx, {
        file,
        readFile,
        parse: (t) => parseBaselineDocument(t, file),
        explain: (e) => (e instanceof BaselineDocumentError ? e.message : undefined),
      });
      const res = (await ctx.api().post(`/api/v1/firmware/baselines?source=${encodeURIComponent(basename(file))}`, specs)) as { results: { name: string; version: number; action: string }[] };
      if (json()) return out(JSON.stringify(res.results, null, 2));
      for (const r of res.results) out(`${r.name}: ${r.action} (version ${r.version})`);
    });

  baseline
    .command('list')
    .description('all baselines')
    .action(async () => {
      const res = (await ctx.api().get('/api/v1/firmware/baselines')) as BaselineList;
      if (json()) return out(JSON.stringify(res.baselines, null, 2));
      out(`${pad('NAME', 24)}${pad('VERSION', 9)}${pad('POLICY', 9)}${pad('SELECTOR', 48)}${pad('COMPONENTS', 12)}${pad('SECUREBOOT', 12)}UPDATED`);
      // a server older than the secureBoot column sends none: shown as "-" like a baseline without the requirement
      for (const b of res.baselines) out(`${pad(b.name, 24)}${pad(b.version, 9)}${pad(b.policy, 9)}${pad(Object.values(b.selector).join(' / '), 48)}${pad(b.components, 12)}${pad(b.secureBoot ?? '-', 12)}${b.updatedAt} by ${b.updatedBy}`);
    });

  baseline
    .command('show')
    .description('a baseline and its change history')
    .argument('<name>', 'baseline name')
    .action(async (name: string) => {
      const res = (await ctx.api().get(`/api/v1/firmware/baselines/${encodeURIComponent(name)}`)) as { baseline: unknown; version: number; history: { version: number; action: string; changedAt: string; actor: string; source: string | null }[] };
      if (json()) return out(JSON.stringify(res, null, 2));
      out(`# version ${res.version}`);
      out(stringify(res.baseline).trimEnd());
      out('# history');
      for (const h of res.history) out(`#   v${h.version} ${pad(h.action, 7)} ${h.changedAt} by ${h.actor}${h.source ? ` from ${h.source}` : ''}`);
    });

  firmware
    .command('report')
    .description('fleet firmware compliance')
    .argument('[filters...]', 'key=value: state, model, component, label (label=k=v)')
    .action(async (filters: string[]) => {
      const qs = new URLSearchParams();
      for (const a of filters) {
        const at = a.indexOf('=');
        if (at < 1) throw ctx.fail(`firmware report: filters are key=value (state, model, component, label), not "${a}"`);
        qs.append(a.slice(0, at), a.slice(at + 1));
      }
      const res = (await ctx.api().get(`/api/v1/reports/firmware${qs.size ? `?${qs}` : ''}`)) as {
        summary: { total: number; percentCompliant: number; byModel: { key: string; total: number; percentCompliant: number }[]; byComponent: { key: string; total: number; percentCompliant: number }[] };
        nodes: { uuid: string; hostname: string | null; model: string; compliance: { state: string; components: { component: string; current: string | null; required: string; status: string }[] } }[];
      };
      if (json()) return out(JSON.stringify(res, null, 2));
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
    });
}

/** `bootfarm firmware ARGS…` with an injected client (tests). */
export const runFirmware = (args: string[], o: ContextOptions & { readFile?: ReadFile }) => runArea((p, c) => register(p, c, o.readFile), ['firmware', ...args], o);
