// The cabling plan document operators load (issue 16 item 5), as YAML or CSV, parsed to plans keyed by node
// (serial or SMBIOS UUID) or rack. Every bad row is reported (row/path and what is wrong), not just the first:
// a 400-line rack sheet should be fixed in one go.
//
// YAML:  plans: [{ node: SERIAL|UUID|MAC | rack: NAME, policy: warn|block, links: [{ nic, switch, port }] }]
// CSV:   header `node,rack,nic,switch,port,policy` (node or rack per row; policy may be empty: warn)
import { isNode, LineCounter, parseDocument, type Document } from 'yaml';
import { z } from 'zod';
import { MAX_DEPTH, yamlDepth } from '../contract/limits.ts';
import { cablingKey, type CablingPolicy, type PlannedLink } from './cabling.ts';

export interface CablingPlanEntry {
  scope: 'node' | 'rack';
  /** serial or UUID (node), rack name (rack) */
  key: string;
  policy: CablingPolicy;
  links: PlannedLink[];
}

export interface CablingIssue {
  /** "row 3" (CSV, 1 = header) or "plans[0].links.1" (YAML) */
  where: string;
  message: string;
  /** the line in the document (CSV: the row; YAML: where the offending value, or its nearest parent, starts) */
  line?: number;
}

/** "line 7: plans[0].links.1.port: is empty" (YAML) or "row 3.switch: is empty" (CSV, whose rows are lines) */
export const formatCablingIssue = (i: CablingIssue) => `${i.line !== undefined && !i.where.startsWith('row ') ? `line ${i.line}: ` : ''}${i.where}: ${i.message}`;

export class CablingDocumentError extends Error {
  constructor(readonly issues: CablingIssue[]) {
    super(issues.map(formatCablingIssue).join('; '));
  }
}

export const MAX_CABLING_BYTES = 1 << 20;
const MAX_ROWS = 20_000;
// `port: 7` in YAML is a number: a port is text either way
const name = z.preprocess((v) => (typeof v === 'number' ? String(v) : v), z.string().trim().min(1, 'is empty').max(128, 'is longer than 128 characters').regex(/^[^\x00-\x1f\x7f]*$/, 'has control characters'));
const Link = z.strictObject({ nic: name, switch: name, port: name });
const Policy = z.enum(['warn', 'block'], { error: 'must be warn or block' });
const Plan = z
  .strictObject({ node: name.optional(), rack: name.optional(), policy: Policy.default('warn'), links: z.array(Link).min(1, 'needs at least one link').max(256) })
  .refine((p) => (p.node === undefined) !== (p.rack === undefined), { message: 'give exactly one of node or rack' });

const issuesOf = (where: string, e: z.ZodError): CablingIssue[] => e.issues.map((i) => ({ where: [where, ...i.path.map(String)].filter(Boolean).join('.'), message: i.message }));

function merge(entries: CablingPlanEntry[], add: CablingPlanEntry, where: string, issues: CablingIssue[]) {
  // keys compare as the store does: one MAC in two spellings is one node
  const same = entries.find((e) => e.scope === add.scope && cablingKey(e.key) === cablingKey(add.key));
  if (!same) return void entries.push(add);
  if (same.policy !== add.policy) issues.push({ where, message: `${add.scope} ${add.key} has policy ${add.policy} here and ${same.policy} earlier` });
  for (const l of add.links) {
    if (same.links.some((x) => x.nic.toLowerCase() === l.nic.toLowerCase())) issues.push({ where, message: `${add.scope} ${add.key} plans NIC ${l.nic} twice` });
    else same.links.push(l);
  }
}

/** Splits one CSV line (RFC 4180 quoting: "a,b" and "" for a quote). */
function csvFields(line: string): string[] | null {
  const out: string[] = [];
  let cur = '';
  let q = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (q) {
      if (ch === '"' && line[i + 1] === '"') (cur += '"'), i++;
      else if (ch === '"') q = false;
      else cur += ch;
    } else if (ch === '"') q = true;
    else if (ch === ',') out.push(cur), (cur = '');
    else cur += ch;
  }
  if (q) return null;
  out.push(cur);
  return out;
}

export function parseCablingDocument(text: string, format: 'yaml' | 'csv'): CablingPlanEntry[] {
  if (Buffer.byteLength(text) > MAX_CABLING_BYTES) throw new CablingDocumentError([{ where: 'document', message: `is larger than ${MAX_CABLING_BYTES} bytes` }]);
  const entries: CablingPlanEntry[] = [];
  const issues: CablingIssue[] = [];
  if (format === 'csv') {
    const lines = text.split(/\r?\n/);
    const header = csvFields(lines[0] ?? '')?.map((h) => h.trim().toLowerCase()) ?? [];
    const cols = ['node', 'rack', 'nic', 'switch', 'port', 'policy'];
    const missing = ['nic', 'switch', 'port'].filter((c) => !header.includes(c));
    const unknown = header.filter((h) => !cols.includes(h));
    if (missing.length || unknown.length) throw new CablingDocumentError([{ where: 'row 1', message: `header must name node or rack, nic, switch, port and optionally policy${missing.length ? `; missing ${missing.join(', ')}` : ''}${unknown.length ? `; unknown ${unknown.join(', ')}` : ''}` }]);
    if (lines.length > MAX_ROWS) throw new CablingDocumentError([{ where: 'document', message: `has more than ${MAX_ROWS} rows` }]);
    lines.slice(1).forEach((line, i) => {
      const where = `row ${i + 2}`;
      const at = issues.length;
      if (!line.trim()) return;
      const f = csvFields(line);
      if (!f) return void issues.push({ where, message: 'has an unterminated quote' });
      if (f.length !== header.length) return void issues.push({ where, message: `has ${f.length} fields, the header ${header.length}` });
      const row = Object.fromEntries(header.map((h, k) => [h, f[k]!.trim()]).filter(([, v]) => v !== ''));
      const p = Plan.safeParse({ node: row['node'], rack: row['rack'], policy: row['policy'], links: [{ nic: row['nic'] ?? '', switch: row['switch'] ?? '', port: row['port'] ?? '' }] });
      if (!p.success) return void issues.push(...issuesOf(where, p.error).map((x) => ({ ...x, where: x.where.replace(/\.links\.0/, '') })));
      merge(entries, { scope: p.data.node ? 'node' : 'rack', key: (p.data.node ?? p.data.rack)!, policy: p.data.policy, links: p.data.links }, where, issues);
      for (const x of issues.slice(at)) x.line = i + 2;
    });
    for (const x of issues) x.line ??= Number(/^row (\d+)/.exec(x.where)?.[1]);
  } else {
    // a plan is three levels deep; refuse "[[[[…" before the parser recurses into it
    if (yamlDepth(text, MAX_DEPTH) > MAX_DEPTH) throw new CablingDocumentError([{ where: 'document', message: `nests deeper than ${MAX_DEPTH} levels` }]);
    const lineCounter = new LineCounter();
    let yaml: Document;
    try {
      yaml = parseDocument(text, { lineCounter, logLevel: 'error', prettyErrors: false });
    } catch (e) {
      throw new CablingDocumentError([{ where: 'document', message: `is not YAML: ${(e as Error).message.split('\n')[0]}` }]);
    }
    const lineOf = (offset: number | undefined) => (offset === undefined ? undefined : lineCounter.linePos(offset).line);
    const syntax = yaml.errors[0];
    if (syntax) throw new CablingDocumentError([{ where: 'document', message: `is not YAML: ${syntax.message.split('\n')[0]}`, ...(lineOf(syntax.pos[0]) ? { line: lineOf(syntax.pos[0])! } : {}) }]);
    let doc: unknown;
    try {
      doc = yaml.toJS({ maxAliasCount: 10 });
    } catch (e) {
      throw new CablingDocumentError([{ where: 'document', message: `is not YAML: ${(e as Error).message.split('\n')[0]}` }]);
    }
    const plans = doc && typeof doc === 'object' && 'plans' in doc ? (doc as { plans: unknown }).plans : undefined;
    if (!Array.isArray(plans)) throw new CablingDocumentError([{ where: 'document', message: 'needs a top-level "plans:" list' }]);
    if (plans.length > MAX_ROWS) throw new CablingDocumentError([{ where: 'plans', message: `has more than ${MAX_ROWS} entries` }]);
    /** the line of the value at `path`, or of its nearest parent that exists (a missing field: its mapping) */
    const lineAt = (path: (string | number)[]) => {
      for (let n = path.length; n >= 0; n--) {
        const node = yaml.getIn(path.slice(0, n), true);
        if (isNode(node) && node.range) return lineOf(node.range[0]);
      }
      return undefined;
    };
    plans.forEach((raw, i) => {
      const where = `plans[${i}]`;
      const p = Plan.safeParse(raw);
      if (!p.success) {
        for (const iss of p.error.issues) {
          const line = lineAt(['plans', i, ...(iss.path as (string | number)[])]);
          issues.push({ where: [where, ...iss.path.map(String)].join('.'), message: iss.message, ...(line ? { line } : {}) });
        }
        return;
      }
      const at = issues.length;
      merge(entries, { scope: p.data.node ? 'node' : 'rack', key: (p.data.node ?? p.data.rack)!, policy: p.data.policy, links: p.data.links }, where, issues);
      const line = lineAt(['plans', i]);
      if (line) for (const x of issues.slice(at)) x.line = line;
    });
  }
  if (issues.length) throw new CablingDocumentError(issues);
  return entries;
}
