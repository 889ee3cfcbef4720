// `bootfarm secrets status|rotate`: the shared keyring (server/store/keyring.ts) over a running server's admin
// API (admin token). No key material crosses the API: a new KEK comes from the replicas' configuration.
import type { Command } from 'commander';
import { runArea, type CliContext, type ContextOptions } from './context.ts';

interface Status {
  kekCheck: string;
  keys: { id: number; active: boolean; legacy: boolean; kekCheck: string; createdAt: string; retiredAt: string | null }[];
}

export function register(program: Command, ctx: CliContext): void {
  const secrets = program.command('secrets').description('data keys that seal BMC passwords, and their rotation (admin)');
  secrets
    .command('status')
    .description("data keys (no key material) and the server's KEK check value")
    .action(async () => {
      const { out } = ctx;
      const s = (await ctx.api().get('/api/v1/secrets')) as Status;
      if (ctx.globals().json) return out(JSON.stringify(s, null, 2));
      out(`KEK check (this server): ${s.kekCheck}`);
      out(`${'KEY'.padEnd(6)}${'STATE'.padEnd(10)}${'KEK CHECK'.padEnd(20)}CREATED`);
      for (const k of s.keys) out(`${String(k.id).padEnd(6)}${(k.active ? 'active' : k.legacy ? 'legacy' : 'retired').padEnd(10)}${(k.kekCheck + (k.kekCheck === s.kekCheck ? '' : ' *')).padEnd(20)}${k.createdAt}`);
      if (s.keys.some((k) => k.kekCheck !== s.kekCheck)) out('* wrapped by another KEK: run `bootfarm secrets rotate --rewrap-kek` once every replica has the new KEK');
    });
  secrets
    .command('rotate')
    .description('new data key; every BMC password re-encrypted under it (one transaction, audited)')
    .option('--rewrap-kek', "also re-wrap every data key under the server's current KEK (rolling to a new KEK, docs/security-model.md)")
    .action(async (o: { rewrapKek?: boolean }) => {
      const r = (await ctx.api().post('/api/v1/secrets/rotate', o.rewrapKek ? { rewrapKek: true } : {})) as { keyId: number; previousKeyId: number | null; reencrypted: number; rewrapped: number };
      if (ctx.globals().json) return ctx.out(JSON.stringify(r, null, 2));
      ctx.out(`data key ${r.keyId} active (was ${r.previousKeyId ?? '-'}); ${r.reencrypted} BMC password(s) re-encrypted${o.rewrapKek ? `; ${r.rewrapped} data key(s) re-wrapped under the current KEK` : ''}`);
    });
}

/** `bootfarm secrets ARGS…` with an injected client (tests). */
export const runSecrets = (args: string[], o: ContextOptions) => runArea(register, ['secrets', ...args], o);
