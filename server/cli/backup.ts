// `bootfarm backup --out FILE` and `bootfarm restore --in FILE [--force] [--check]` (issue 17 item 6). Unlike the
// other commands these do not talk to a server: they open the configured database themselves (BOOTFARM_CONFIG and
// BOOTFARM_* as `serve` reads them: DATABASE_URL, else the PGlite cluster in the data directory). The archive and
// what it holds: server/store/backup-format.ts, server/store/backup.ts; operations: README "Backup and restore".
import { createReadStream, createWriteStream, type WriteStream, existsSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { httpsFetch } from './http.ts';
import { runArea, type CliContext, type ContextOptions } from './context.ts';
import { loadConfig, parseSection, type Config } from '../config.ts';
import { FleetConfig } from '../fleet/index.ts';
import { createDb, type DbHandle } from '../db/index.ts';
import { parseKey } from '../secrets.ts';
import { BackupError, checkBackup, restoreBackup, writeBackup } from '../store/backup.ts';

const pgliteDir = (config: Config) => join(config.dataDir, 'pglite');

/** The configured KEK (secrets.kek, secrets.kekFile, else DATA_DIR/kek when present) and secrets.previousKeks.
 * Unlike the server, never generates one: a restore needs the backed-up installation's KEK. */
export function configuredKeks(config: Config): Buffer[] {
  const s = config.secrets;
  const out = (s.previousKeks ?? []).map((k, i) => parseKey(k, `secrets.previousKeks[${i}]`));
  if (s.kek) out.unshift(parseKey(s.kek, 'secrets.kek'));
  else if (s.kekFile) out.unshift(parseKey(readFileSync(s.kekFile, 'utf8'), `the KEK in ${s.kekFile}`));
  else if (existsSync(join(config.dataDir, 'kek'))) out.unshift(parseKey(readFileSync(join(config.dataDir, 'kek'), 'utf8'), `the KEK in ${join(config.dataDir, 'kek')}`));
  return out;
}

/** PGlite lives inside one process: a cluster a running server has open must not be opened by a second one. */
function assertPgliteFree(config: Config, force: boolean, fail: (m: string) => Error): void {
  const pid = join(pgliteDir(config), 'postmaster.pid');
  if (existsSync(pid) && !force)
    throw fail(`the PGlite database in ${pgliteDir(config)} is open in another process (${pid} exists): stop \`bootfarm serve\` first (PGlite is embedded in one process; on a running server use \`bootfarm backup --from-server\`). If no server runs (it was killed), pass --force.`);
}

const describeDb = (config: Config) => (config.databaseUrl ? `PostgreSQL ${redact(config.databaseUrl)}` : `PGlite in ${pgliteDir(config)}`);

function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'DATABASE_URL';
  }
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('backup')
    .description('write the database to a backup archive (opens the configured database directly: DATABASE_URL or the PGlite data directory)')
    .requiredOption('--out <file>', 'archive to write (gzip; mode 0600); written to FILE.partial, renamed when complete')
    .option('--from-server', 'ask the running server instead (GET /api/v1/backup; --url, admin token): a PGlite server while it serves')
    .option('--force', 'open a PGlite data directory even though it looks in use (a server that was killed)')
    .action(async (o: { out: string; force?: boolean; fromServer?: boolean }) => {
      const started = Date.now();
      const partial = `${o.out}.partial`;
      const file = createWriteStream(partial, { mode: 0o600 });
      let summary: { tables: number; rows: number; schema: string; source: string };
      try {
        if (o.fromServer) {
          summary = await fromServer(ctx, file, partial, o.out);
        } else {
          const config = loadConfig(ctx.env);
          if (!config.databaseUrl) assertPgliteFree(config, !!o.force, ctx.fail);
          const handle = await open(config, ctx);
          try {
            const s = await writeBackup(handle, file, { now: new Date() });
            summary = { tables: s.tables.length, rows: s.rows, schema: s.header.schema.version, source: describeDb(config) };
          } finally {
            await handle.close();
          }
        }
      } catch (e) {
        file.destroy();
        rmSync(partial, { force: true });
        if (e instanceof BackupError) throw ctx.fail(e.message);
        throw e;
      }
      renameSync(partial, o.out);
      const bytes = statSync(o.out).size;
      const seconds = (Date.now() - started) / 1000;
      if (ctx.globals().json) return ctx.out(JSON.stringify({ file: o.out, bytes, seconds, ...summary }));
      ctx.out(`backup of ${summary.source} written to ${o.out}: ${summary.tables} tables, ${summary.rows} rows, schema ${summary.schema}, ${bytes} bytes, ${seconds.toFixed(1)} s`);
      ctx.out('it holds no KEK: keep the KEK (BOOTFARM_KEK, secrets.kekFile or DATA_DIR/kek) apart from it; image blobs stay in the image store');
    });

  program
    .command('restore')
    .description('restore a backup archive into the configured database, which must be empty (server stopped)')
    .requiredOption('--in <file>', 'archive written by `bootfarm backup`')
    .option('--force', 'replace the rows of a database that is not empty, even with replicas reporting to it')
    .option('--check', 'only read the archive and check it (format, digests, schema, that the configured KEK opens its data keys); touch no database')
    .action(async (o: { in: string; force?: boolean; check?: boolean }) => {
      if (!existsSync(o.in)) throw ctx.fail(`${o.in}: no such file`);
      const config = loadConfig(ctx.env);
      const keks = configuredKeks(config);
      const started = Date.now();
      const stream = () => createReadStream(o.in);
      try {
        if (o.check) {
          const c = await checkBackup(stream(), { keks, name: o.in });
          if (ctx.globals().json) return ctx.out(JSON.stringify({ ok: true, createdAt: c.header.createdAt, schema: c.header.schema.version, tables: c.tables.length, rows: c.rows, dataKeys: c.dataKeys }));
          return ctx.out(`${o.in}: a complete backup of ${c.header.createdAt} (${c.header.source.engine}), schema ${c.header.schema.version}, ${c.tables.length} tables, ${c.rows} rows; the configured KEK opens its ${c.dataKeys} data key(s)`);
        }
        const fresh = !config.databaseUrl && !existsSync(pgliteDir(config));
        if (!config.databaseUrl) assertPgliteFree(config, !!o.force, ctx.fail);
        // the archive is checked before the database is opened: a bad file never creates a data directory
        await checkBackup(stream(), { keks, name: o.in });
        let handle: DbHandle | undefined;
        try {
          handle = await open(config, ctx);
          // a replica counts as running as the cluster view counts it: until missedTicks × tickSeconds after its
          // last report (docs/ha.md "Cluster view"); PGlite has one process, guarded by postmaster.pid above
          const fleet = parseSection('fleet', FleetConfig, config.fleet);
          const liveSeconds = config.databaseUrl ? fleet.replicas.missedTicks * fleet.tickSeconds : 0;
          const r = await restoreBackup(handle, stream, { keks, force: !!o.force, name: o.in, liveSeconds });
          const seconds = (Date.now() - started) / 1000;
          if (ctx.globals().json) return ctx.out(JSON.stringify({ ok: true, target: describeDb(config), schema: r.header.schema.version, migratedAfter: r.migratedAfter, tables: r.tables.length, rows: r.rows, replaced: r.replaced, seconds }));
          ctx.out(`restored ${o.in} (${r.header.createdAt}, ${r.header.source.engine}) into ${describeDb(config)}: ${r.tables.length} tables, ${r.rows} rows, every table verified${r.replaced ? `; ${r.replaced} rows replaced` : ''}; schema ${r.header.schema.version}${r.migratedAfter.length ? `, then migrated to ${r.migratedAfter.at(-1)}` : ''}; ${seconds.toFixed(1)} s`);
          if (!config.auth.tokens.length && !existsSync(join(config.dataDir, 'admin.token'))) ctx.out(`no ${join(config.dataDir, 'admin.token')}: copy the backed-up installation's file here (its hash is in the database), or use a token made with \`bootfarm tokens create\``);
        } catch (e) {
          await handle?.close();
          handle = undefined;
          // a new data directory that did not get the restore is removed again: nothing half-made is left
          if (fresh) rmSync(pgliteDir(config), { recursive: true, force: true });
          throw e;
        } finally {
          await handle?.close();
        }
      } catch (e) {
        if (e instanceof BackupError) throw ctx.fail(e.message);
        throw e;
      }
    });
}

/** The archive from a running server's admin API, streamed to the file, then read back and checked whole. */
async function fromServer(ctx: CliContext, file: WriteStream, partial: string, name: string) {
  const g = ctx.globals();
  const doFetch = g.url.startsWith('https:') ? httpsFetch(g.ca, (m) => ctx.fail(m)) : fetch;
  let res: Response;
  try {
    res = await doFetch(`${g.url.replace(/\/+$/, '')}/api/v1/backup`, { headers: g.token ? { authorization: `Bearer ${g.token}` } : {} });
  } catch (e) {
    throw ctx.fail(`cannot reach ${g.url}: ${(e as Error).message}`);
  }
  if (res.status !== 200 || !res.body) {
    const text = await res.text();
    let message = text;
    try {
      const err = (JSON.parse(text) as { error?: { code?: string; message?: string } }).error;
      if (err) message = `${err.code}: ${err.message}`;
    } catch {}
    throw ctx.fail(`${res.status} ${message}`);
  }
  await pipeline(Readable.fromWeb(res.body as never), file);
  // the server cannot report a failure after the first byte: a complete archive is the proof
  const checked = await checkBackup(createReadStream(partial), { keks: [], name, skipKeks: true });
  return { tables: checked.tables.length, rows: checked.rows, schema: checked.header.schema.version, source: `the server at ${g.url}` };
}

async function open(config: Config, ctx: CliContext): Promise<DbHandle> {
  try {
    return await createDb({ url: config.databaseUrl, dataDir: pgliteDir(config), maxConnections: 2, migrate: false });
  } catch (e) {
    throw ctx.fail(`cannot open ${describeDb(config)}: ${(e as Error).message}`);
  }
}

/** `bootfarm backup|restore ARGS…` with an injected environment (tests). */
export const runBackup = (args: string[], o: ContextOptions) => runArea(register, args, o);
