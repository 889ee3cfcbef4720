// `bootfarm tokens create|list|revoke`: API tokens in the database (server/store/tokens.ts) over a running
// server's admin API (admin token). A new token is printed once; the server keeps only its sha256.
import type { Command } from 'commander';
import { runArea, type CliContext, type ContextOptions } from './context.ts';

interface TokenView {
  id: number;
  name: string;
  role: string;
  createdAt: string;
  createdBy: string;
  lastUsedAt: string | null;
  expiresAt: string | null;
  revokedAt: string | null;
  revokedBy: string | null;
  bootstrap: boolean;
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 7 * 86_400 };

/** "90m", "12h", "30d", "2w" or plain seconds → seconds; null if it is none of these. */
export function parseDuration(text: string): number | null {
  const m = /^(\d{1,9})([smhdw]?)$/.exec(text.trim());
  return m ? Number(m[1]) * UNITS[m[2] || 's']! : null;
}

export function register(program: Command, ctx: CliContext): void {
  const tokens = program.command('tokens').description('API tokens stored in the database (admin)');
  tokens
    .command('create')
    .description('create a token and print it once (only its sha256 is stored)')
    .requiredOption('--name <name>', 'what it is for (shown in lists and the audit log)')
    .requiredOption('--role <role>', 'viewer | operator | admin')
    .option('--expires-in <duration>', 'lifetime: seconds or 90m, 12h, 30d, 2w (default: until revoked)')
    .action(async (o: { name: string; role: string; expiresIn?: string }) => {
      let expiresInSeconds: number | undefined;
      if (o.expiresIn !== undefined) {
        const s = parseDuration(o.expiresIn);
        if (s === null) throw ctx.fail(`--expires-in ${o.expiresIn}: give seconds or a number with s, m, h, d or w (e.g. 30d)`);
        expiresInSeconds = s;
      }
      const t = (await ctx.api().post('/api/v1/tokens', { name: o.name, role: o.role, ...(expiresInSeconds ? { expiresInSeconds } : {}) })) as TokenView & { token: string };
      if (ctx.globals().json) return ctx.out(JSON.stringify(t, null, 2));
      ctx.out(t.token);
      ctx.progress.write(`token ${t.id} "${t.name}" (${t.role}${t.expiresAt ? `, expires ${t.expiresAt}` : ''}): shown only now; store it safely\n`);
    });
  tokens
    .command('list')
    .description('tokens (never their values): id, name, role, created, last used, expiry, revocation')
    .action(async () => {
      const res = (await ctx.api().get('/api/v1/tokens')) as { tokens: TokenView[]; configured: { name: string; role: string }[] };
      if (ctx.globals().json) return ctx.out(JSON.stringify(res, null, 2));
      const pad = (v: unknown, n: number) => String(v ?? '-').padEnd(n);
      ctx.out(`${pad('ID', 6)}${pad('NAME', 20)}${pad('ROLE', 10)}${pad('STATE', 10)}${pad('CREATED', 26)}${pad('BY', 20)}${pad('LAST USED', 26)}EXPIRES`);
      for (const t of res.tokens) {
        const state = t.revokedAt ? 'revoked' : t.expiresAt && Date.parse(t.expiresAt) <= Date.now() ? 'expired' : 'valid';
        ctx.out(`${pad(t.id, 6)}${pad(t.name + (t.bootstrap ? '*' : ''), 20)}${pad(t.role, 10)}${pad(state, 10)}${pad(t.createdAt, 26)}${pad(t.createdBy, 20)}${pad(t.lastUsedAt, 26)}${t.expiresAt ?? '-'}`);
      }
      for (const t of res.configured) ctx.out(`${pad('-', 6)}${pad(t.name, 20)}${pad(t.role, 10)}${pad('config', 10)}(from the server's configuration; not revocable here)`);
      if (res.tokens.some((t) => t.bootstrap)) ctx.out('* the bootstrap admin token (admin.token in the data directory)');
    });
  tokens
    .command('revoke')
    .description('revoke a token: refused on every replica from its next request; its dashboard sessions end')
    .argument('<id>', 'token id (from `tokens list`)')
    .action(async (id: string) => {
      if (!/^[1-9]\d{0,8}$/.test(id)) throw ctx.fail(`tokens revoke: "${id}" is not a token id (a positive integer from \`bootfarm tokens list\`)`);
      const t = (await ctx.api().delete(`/api/v1/tokens/${id}`)) as TokenView;
      ctx.out(ctx.globals().json ? JSON.stringify(t, null, 2) : `token ${t.id} "${t.name}" revoked at ${t.revokedAt}`);
    });
}

/** `bootfarm tokens ARGS…` with an injected client (tests). */
export const runTokens = (args: string[], o: ContextOptions) => runArea(register, ['tokens', ...args], o);
