// `bootfarm cabling …` (issue 16 item 5): load the cabling plan (YAML or CSV; validated locally first, so mistakes
// are reported against the file's own lines before anything is sent) and show it with each node's result.
import { basename } from 'node:path';
import type { Command } from 'commander';
import type { CliContext } from './context.ts';
import { loadDocument, readUtf8, type ReadFile } from './document.ts';
import { CablingDocumentError, formatCablingIssue, parseCablingDocument } from '../domain/cabling-document.ts';

const pad = (s: unknown, n: number) => String(s ?? '-').padEnd(n);

interface PlanView {
  loadedAt: string | null;
  loadedBy: string | null;
  source: string | null;
  plans: { scope: string; key: string; policy: string; links: { nic: string; switch: string; port: string }[] }[];
}
interface NodeView {
  uuid: string;
  hostname: string | null;
  status: string;
  policy: string | null;
  reason?: string;
}

export function register(program: Command, ctx: CliContext, readFile: ReadFile = readUtf8): void {
  const cabling = program.command('cabling').description('the cabling plan (NIC → switch port) and each node against it');
  const { out } = ctx;

  cabling
    .command('load')
    .description('replace the cabling plan with FILE (.csv: header node,rack,nic,switch,port,policy; otherwise YAML "plans:")')
    .argument('<file>', 'FILE.yaml or FILE.csv')
    .action(async (file: string) => {
      const format = /\.csv$/i.test(file) ? 'csv' : 'yaml';
      const { text } = loadDocument(ctx, {
        file,
        readFile,
        parse: (t) => parseCablingDocument(t, format),
        explain: (e) => (e instanceof CablingDocumentError ? e.issues.map((i) => `${file}: ${formatCablingIssue(i)}`).join('\n') : undefined),
      });
      const res = await ctx.http()<{ plans: number; links: number; replaced: number; loadedAt: string }>('PUT', `/api/v1/cabling?source=${encodeURIComponent(basename(file))}`, new TextEncoder().encode(text), { 'content-type': format === 'csv' ? 'text/csv' : 'application/yaml' });
      if (ctx.globals().json) return out(JSON.stringify(res, null, 2));
      out(`loaded ${res.plans} plan${res.plans === 1 ? '' : 's'} (${res.links} link${res.links === 1 ? '' : 's'}) from ${basename(file)}, replacing ${res.replaced}`);
    });

  cabling
    .command('show')
    .description('the loaded plan and every node whose cabling is not compliant')
    .action(async () => {
      const call = ctx.http();
      const [plan, nodes] = await Promise.all([call<PlanView>('GET', '/api/v1/cabling'), call<{ nodes: NodeView[] }>('GET', '/api/v1/cabling/nodes')]);
      if (ctx.globals().json) return out(JSON.stringify({ ...plan, nodes: nodes.nodes }, null, 2));
      if (!plan.plans.length) out('no cabling plan loaded');
      else out(`${plan.plans.length} plan${plan.plans.length === 1 ? '' : 's'} loaded ${plan.loadedAt} by ${plan.loadedBy}${plan.source ? ` (${plan.source})` : ''}`);
      if (plan.plans.length) out(`${pad('SCOPE', 7)}${pad('KEY', 40)}${pad('POLICY', 8)}${pad('NIC', 20)}SWITCH PORT`);
      for (const p of plan.plans) for (const l of p.links) out(`${pad(p.scope, 7)}${pad(p.key, 40)}${pad(p.policy, 8)}${pad(l.nic, 20)}${l.switch} ${l.port}`);
      const count = (s: string) => nodes.nodes.filter((n) => n.status === s).length;
      out(`nodes: ${count('compliant')} compliant, ${count('failed')} failed, ${count('unplanned')} unplanned`);
      for (const n of nodes.nodes.filter((x) => x.status === 'failed')) out(`  ${pad(n.hostname ?? n.uuid, 38)}${pad(n.policy, 7)}${(n.reason ?? '').replace(/^cabling: /, '')}`);
    });
}
