// `bootfarm audit`: the audit log of admin and operator changes, newest first, from a running server's admin API
// (GET /api/v1/audit, admin token). --all follows nextCursor to the end.
import { InvalidArgumentError, type Command } from 'commander';
import type { CliContext } from './context.ts';
import type { ApiClient } from './http.ts';

type Out = (line: string) => void;

export interface AuditEntry {
  id: number;
  at: string;
  actor: string;
  role: string;
  action: string;
  target: string | null;
  before: unknown;
  after: unknown;
  requestId: string | null;
  source: string | null;
}

export interface AuditCliOptions {
  api: ApiClient;
  out: Out;
  json?: boolean;
  actor?: string;
  action?: string;
  target?: string;
  since?: string;
  limit?: number;
  /** follow the cursor through every page */
  all?: boolean;
}

const brief = (v: unknown) => {
  const s = v === null || v === undefined ? '∅' : JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
};

export async function runAudit(opts: AuditCliOptions): Promise<void> {
  const { api, out } = opts;
  const qs = new URLSearchParams();
  for (const k of ['actor', 'action', 'target', 'since'] as const) if (opts[k]) qs.set(k, opts[k]!);
  qs.set('limit', String(opts.limit ?? 50));
  const entries: AuditEntry[] = [];
  let cursor: string | null = null;
  do {
    const q = new URLSearchParams(qs);
    if (cursor) q.set('before', cursor);
    const page = (await api.get(`/api/v1/audit?${q}`)) as { entries: AuditEntry[]; nextCursor: string | null };
    entries.push(...page.entries);
    cursor = opts.all ? page.nextCursor : null;
  } while (cursor);
  if (opts.json) return out(JSON.stringify(entries, null, 2));
  const col = (s: string, n: number) => `${s.padEnd(n - 1)} `;
  out(`${col('AT', 25)}${col('ACTOR', 22)}${col('ACTION', 28)}${col('TARGET', 46)}CHANGE`);
  for (const e of entries) out(`${col(e.at, 25)}${col(`${e.actor} (${e.role})`, 22)}${col(e.action, 28)}${col(e.target ?? '-', 46)}${brief(e.before)} → ${brief(e.after)}`);
}

const limitArg = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new InvalidArgumentError('a whole number from 1 to 1000');
  return n;
};

export function register(program: Command, ctx: CliContext): void {
  program
    .command('audit')
    .description('who changed what: the audit log of admin and operator actions, newest first (admin)')
    .option('--actor <name>', 'only this principal (API token name)')
    .option('--action <action>', 'an action (node.labels) or a prefix (node.*)')
    .option('--target <kind:id>', 'one target, e.g. node:4c4c4544-… or image:compute')
    .option('--since <iso>', 'only entries at or after this time (ISO 8601 with offset)')
    .option('--limit <n>', 'entries per page (default 50)', limitArg)
    .option('--all', 'follow the cursor through every page')
    .action(async (o: Omit<AuditCliOptions, 'api' | 'out' | 'json'>) => {
      await runAudit({ ...o, api: ctx.api(), out: ctx.out, json: ctx.globals().json });
    });
}
