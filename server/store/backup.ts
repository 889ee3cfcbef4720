// `bootfarm backup` / `bootfarm restore` (issue 17 item 6): the database's rows to an engine-neutral archive
// (server/store/backup-format.ts) and back, for PGlite and PostgreSQL in any direction.
//
// Backup: one REPEATABLE READ, READ ONLY transaction (one consistent snapshot, however long the dump takes and
// whatever the replicas write meanwhile), every table of schema `public` but `replicas` (which processes are up
// right now is not state to bring back) read through a cursor in batches, parents before children; then the
// sequences. Only what the database holds: the KEK is configuration and never in it (data keys are stored wrapped
// by it); image blobs stay in the image store (README "Backup and restore").
//
// Restore, into a database that is empty (or with force, whose rows are replaced):
// 1. the whole archive is read once and checked (framing, digests, trailer, schema known to this build, the
//    configured KEK opens every data key) before the database is touched;
// 2. then in ONE transaction: the schema is created by this build's migrations up to the backup's version, the
//    rows are inserted (PostgreSQL parses each batch with json_populate_recordset), every table is read back and
//    its digest compared with the archive's, the sequences are set, and the later migrations are applied. Any
//    failure rolls all of it back: the database is as it was.
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { sql } from 'drizzle-orm';
import { MIGRATION_LOCK_KEY, type Db, type DbHandle } from '../db/index.ts';
import { appliedMigrations, applySteps, migrationSteps, prefixLength, rows, type MigrationStep } from '../db/migration-steps.ts';
import { gcmOpen, kekCheck } from '../secrets.ts';
import { BACKUP_FORMAT, BACKUP_FORMAT_VERSION, BackupError, readArchive, RowDigest, type BackupHeader, type SequenceValue, type TableEnd } from './backup-format.ts';

export { BackupError };

/** Tables a backup leaves out: the live cluster membership (each running process's row). */
export const NOT_BACKED_UP = ['replicas'];

type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

export interface BackupSummary {
  header: BackupHeader;
  tables: TableEnd[];
  rows: number;
}

const q = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** Settings under which row_to_json writes the same text on every engine and version. */
async function canonicalSession(tx: Tx): Promise<void> {
  await tx.execute(sql`set local timezone = 'UTC'`);
  await tx.execute(sql`set local extra_float_digits = 1`);
  await tx.execute(sql`set local bytea_output = 'hex'`);
  await tx.execute(sql`set local intervalstyle = 'iso_8601'`);
}

interface Catalog {
  /** public tables in foreign-key order (parents first), name-ordered among equals */
  tables: string[];
  columns: Map<string, string[]>;
  primaryKeys: Map<string, string[]>;
  sequences: string[];
}

async function catalog(tx: Tx): Promise<Catalog> {
  const tableRows = rows<{ name: string }>(await tx.execute(sql`select c.relname as name from pg_class c where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p') and not c.relispartition order by 1`));
  const cols = rows<{ t: string; c: string }>(
    await tx.execute(sql`select c.relname as t, a.attname as c from pg_attribute a join pg_class c on c.oid = a.attrelid
      where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p') and a.attnum > 0 and not a.attisdropped and a.attgenerated = '' order by c.relname, a.attnum`),
  );
  const pks = rows<{ t: string; c: string }>(
    await tx.execute(sql`select c.relname as t, a.attname as c from pg_constraint k join pg_class c on c.oid = k.conrelid
      cross join lateral unnest(k.conkey) with ordinality as u(attnum, ord) join pg_attribute a on a.attrelid = c.oid and a.attnum = u.attnum
      where k.contype = 'p' and c.relnamespace = 'public'::regnamespace order by c.relname, u.ord`),
  );
  const fks = rows<{ child: string; parent: string }>(
    await tx.execute(sql`select c.relname as child, p.relname as parent from pg_constraint k join pg_class c on c.oid = k.conrelid join pg_class p on p.oid = k.confrelid
      where k.contype = 'f' and c.relnamespace = 'public'::regnamespace and c.oid <> p.oid`),
  );
  const seqs = rows<{ name: string }>(await tx.execute(sql`select relname as name from pg_class where relnamespace = 'public'::regnamespace and relkind = 'S' order by 1`));
  const group = (list: { t: string; c: string }[]) => {
    const m = new Map<string, string[]>();
    for (const r of list) m.set(r.t, [...(m.get(r.t) ?? []), r.c]);
    return m;
  };
  // Kahn's algorithm, alphabetical among tables that are ready: a stable order for the same schema
  const names = tableRows.map((r) => r.name);
  const parents = new Map(names.map((n) => [n, new Set(fks.filter((f) => f.child === n && names.includes(f.parent)).map((f) => f.parent))]));
  const ordered: string[] = [];
  while (ordered.length < names.length) {
    const next = names.find((n) => !ordered.includes(n) && [...parents.get(n)!].every((p) => ordered.includes(p)));
    if (!next) throw new Error(`foreign keys form a cycle among ${names.filter((n) => !ordered.includes(n)).join(', ')}`);
    ordered.push(next);
  }
  return { tables: ordered, columns: group(cols), primaryKeys: group(pks), sequences: seqs.map((s) => s.name) };
}

/** Lines of one table through a cursor, `batch` at a time, in primary-key order (a stable file for a stable database). */
async function* tableLines(tx: Tx, table: string, orderBy: string[], batch: number): AsyncGenerator<string[]> {
  const order = orderBy.length ? ` order by ${orderBy.map(q).join(', ')}` : '';
  await tx.execute(sql.raw(`declare bf_backup no scroll cursor for select row_to_json(t)::text as j from ${q(table)} t${order}`));
  try {
    for (;;) {
      const got = rows<{ j: string }>(await tx.execute(sql.raw(`fetch forward ${batch} from bf_backup`)));
      if (got.length === 0) break;
      yield got.map((r) => r.j);
    }
  } finally {
    await tx.execute(sql.raw('close bf_backup'));
  }
}

/** Writes with backpressure; rejects when the output goes away (a client that hung up), so the dump's
 * transaction ends instead of waiting for a drain that never comes. */
async function write(out: Writable, text: string): Promise<void> {
  if (out.destroyed) throw new BackupError('the backup output closed before the archive was complete');
  if (out.write(text)) return;
  await new Promise<void>((resolve, reject) => {
    const done = (err?: Error) => {
      out.off('drain', onDrain);
      out.off('close', onClose);
      out.off('error', onClose);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = () => done();
    const onClose = () => done(new BackupError('the backup output closed before the archive was complete'));
    out.once('drain', onDrain);
    out.once('close', onClose);
    out.once('error', onClose);
  });
}

export interface BackupOptions {
  /** when the backup was taken (the header's createdAt) */
  now: Date;
  /** rows per cursor fetch */
  batchRows?: number;
  migrationsDir?: string;
}

/**
 * Writes the archive (gzip) of the database to `out` and ends it. Reads only: the database is never migrated or
 * changed. Refuses a database migrated by a newer build (its schema could not be restored by this one).
 */
export async function writeBackup(handle: DbHandle, out: Writable, { now, batchRows = 1000, migrationsDir }: BackupOptions): Promise<BackupSummary> {
  const gzip = createGzip();
  const piped = pipeline(gzip, out);
  // a failed write on the output (a full disk) surfaces through the pipeline: stop dumping then
  piped.catch(() => undefined);
  try {
    const summary = await handle.db.transaction(
      async (tx) => {
        await canonicalSession(tx);
        const steps = migrationSteps(migrationsDir);
        const applied = await appliedMigrations(tx);
        const known = prefixLength(applied, steps);
        if (known === null || known === 0) throw new BackupError(known === 0 ? 'the database has no schema (never migrated): nothing to back up' : `the database was migrated by a build this one does not know (${applied.length} migrations, this build has ${steps.length} that do not match them): back it up with that newer build`);
        const cat = await catalog(tx);
        const tables = cat.tables.filter((t) => !NOT_BACKED_UP.includes(t));
        const keyChecks = (await tx.execute(sql`select to_regclass('public.data_keys') is not null as present`)) as unknown;
        const kekChecks = rows<{ present: boolean }>(keyChecks)[0]?.present ? rows<{ kek_check: string }>(await tx.execute(sql`select distinct kek_check from data_keys order by 1`)).map((r) => r.kek_check) : [];
        const version = rows<{ v: string }>(await tx.execute(sql`select version() as v`))[0]!.v;
        const header: BackupHeader = {
          format: BACKUP_FORMAT,
          version: BACKUP_FORMAT_VERSION,
          createdAt: now.toISOString(),
          source: { engine: handle.kind, server: version },
          schema: { version: steps[known - 1]!.tag, migrations: applied },
          kekChecks,
          tables,
        };
        await write(gzip, JSON.stringify({ '@backup': header }) + '\n');
        const ends: TableEnd[] = [];
        let total = 0;
        for (const table of tables) {
          await write(gzip, JSON.stringify({ '@table': table, columns: cat.columns.get(table) ?? [] }) + '\n');
          const digest = new RowDigest();
          for await (const lines of tableLines(tx, table, cat.primaryKeys.get(table) ?? [], batchRows)) {
            for (const l of lines) digest.add(l);
            await write(gzip, lines.join('\n') + '\n');
          }
          const end = { table, rows: digest.rows, digest: digest.hex() };
          await write(gzip, JSON.stringify({ '@end': table, rows: end.rows, digest: end.digest }) + '\n');
          ends.push(end);
          total += end.rows;
        }
        const sequences: Record<string, SequenceValue> = {};
        for (const s of cat.sequences) {
          const [r] = rows<{ v: string; called: boolean }>(await tx.execute(sql.raw(`select last_value::text as v, is_called as called from ${q(s)}`)));
          sequences[s] = { value: r!.v, called: r!.called };
        }
        await write(gzip, JSON.stringify({ '@sequences': sequences }) + '\n');
        await write(gzip, JSON.stringify({ '@trailer': { tables: tables.length, rows: total } }) + '\n');
        return { header, tables: ends, rows: total };
      },
      { isolationLevel: 'repeatable read', accessMode: 'read only' },
    );
    gzip.end();
    await piped;
    return summary;
  } catch (e) {
    gzip.destroy(e as Error);
    await piped.catch(() => undefined);
    throw e;
  }
}

export interface CheckedBackup {
  header: BackupHeader;
  tables: TableEnd[];
  rows: number;
  /** how many of this build's migrations the backup's schema is */
  schemaSteps: number;
  /** data keys in the archive, all opened by the given KEKs (0 with skipKeks: the reader has no KEK) */
  dataKeys: number;
}

/**
 * Reads the whole archive and checks it without a database: framing and digests, a schema this build knows
 * (exactly a prefix of its migrations), and that one of `keks` unwraps every data key in it.
 */
export async function checkBackup(input: Readable, { keks, name = 'the archive', migrationsDir, skipKeks = false }: { keks: Buffer[]; name?: string; migrationsDir?: string; skipKeks?: boolean }): Promise<CheckedBackup> {
  const steps = migrationSteps(migrationsDir);
  const byCheck = new Map(keks.map((k) => [kekCheck(k), k]));
  let header: BackupHeader | undefined;
  let schemaSteps = 0;
  let dataKeys = 0;
  const tables: TableEnd[] = [];
  let total = 0;
  for await (const item of readArchive(input, { name })) {
    if (item.kind === 'header') {
      header = item.header;
      const known = prefixLength(header.schema.migrations, steps);
      if (known === null || known === 0) {
        const last = header.schema.migrations.at(-1);
        throw new BackupError(
          `${name} was taken from a database at schema ${header.schema.version} (${header.schema.migrations.length} migrations${last ? `, latest created_at ${last.createdAt}` : ''}), which this build does not know: it knows ${steps.length} migrations up to ${steps.at(-1)?.tag}. Restore it with the bootfarm build that took it, or a newer one.`,
        );
      }
      schemaSteps = known;
      const unknown = skipKeks ? [] : header.kekChecks.filter((c) => !byCheck.has(c));
      if (unknown.length)
        throw new BackupError(
          `the configured KEK cannot open this backup's data keys: they were wrapped by the KEK with check value ${unknown.join(', ')}; ` +
            `configured: ${[...byCheck.keys()].join(', ') || 'no KEK'}. The backup does not contain the KEK: configure the one the backed-up installation used ` +
            '(BOOTFARM_KEK, secrets.kekFile, or its data directory\'s `kek` file; an older one in secrets.previousKeks). Nothing was restored.',
        );
    } else if (item.kind === 'rows' && item.table === 'data_keys' && !skipKeks) {
      for (const line of item.lines) {
        const k = JSON.parse(line) as { id: number; wrapped_key: string; kek_check: string };
        const kek = byCheck.get(k.kek_check);
        try {
          if (!kek) throw new Error('no KEK with that check value');
          gcmOpen(kek, k.wrapped_key);
        } catch {
          throw new BackupError(`data key ${k.id} in ${name} does not unwrap under the configured KEK (check value ${k.kek_check}): the archive's key is damaged, or another KEK has the same check value. Nothing was restored.`);
        }
        dataKeys++;
      }
    } else if (item.kind === 'end') {
      tables.push(item.end);
      total += item.end.rows;
    }
  }
  return { header: header!, tables, rows: total, schemaSteps, dataKeys };
}

export interface RestoreOptions {
  /** the configured KEK and any previous ones: every data key in the archive must open with one of them */
  keks: Buffer[];
  /** replace the rows of a database that is not empty (or that replicas reported to within `liveSeconds`) */
  force?: boolean;
  /** a replica whose last report is this recent counts as running (default 60 s, by the database's clock; 0: do
   * not ask — PGlite, where the data directory's postmaster.pid is the guard) */
  liveSeconds?: number;
  name?: string;
  batchRows?: number;
  migrationsDir?: string;
}

export interface RestoreSummary extends CheckedBackup {
  /** migrations applied after the rows, up to this build's latest */
  migratedAfter: string[];
  /** the rows the database held before (force) */
  replaced: number;
}

/** Tables holding rows, with their counts. */
async function tablesWithRows(tx: Tx, tables: string[]): Promise<{ table: string; rows: number }[]> {
  const out: { table: string; rows: number }[] = [];
  for (const t of tables) {
    const [r] = rows<{ n: number }>(await tx.execute(sql.raw(`select count(*)::int as n from ${q(t)}`)));
    if (r!.n > 0) out.push({ table: t, rows: r!.n });
  }
  return out;
}

/**
 * Restores the archive `open()` yields (called twice: a checking pass, then the restoring pass) into `handle`'s
 * database, which must not be migrated by this module's caller (createDb with migrate: false): the restore
 * creates the schema itself. One transaction; on any error nothing is changed.
 */
export async function restoreBackup(handle: DbHandle, open: () => Readable, opts: RestoreOptions): Promise<RestoreSummary> {
  const { keks, force = false, liveSeconds = 60, name = 'the archive', batchRows = 500, migrationsDir } = opts;
  const checked = await checkBackup(open(), { keks, name, migrationsDir });
  const steps = migrationSteps(migrationsDir);
  const upTo = checked.schemaSteps;
  return handle.db.transaction(async (tx) => {
    // replicas that start meanwhile wait for the restore instead of migrating under it
    if (handle.kind === 'postgres') await tx.execute(sql`select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY}::bigint)`);
    await canonicalSession(tx);
    const applied = await appliedMigrations(tx);
    const dbSteps = prefixLength(applied, steps);
    if (dbSteps === null) throw new BackupError(`the target database was migrated by a newer or different build (${applied.length} migrations this build does not match): restore into an empty database`);
    if (dbSteps > upTo)
      throw new BackupError(`the target database is at schema ${steps[dbSteps - 1]!.tag}, newer than the backup's ${steps[upTo - 1]!.tag}: a restore cannot take a schema back. Restore into an empty database (a new data directory, or a new PostgreSQL database: createdb).`);
    const existing = dbSteps === 0 ? { tables: [] as string[] } : { tables: (await catalog(tx)).tables };
    const held = await tablesWithRows(tx, existing.tables);
    if (liveSeconds > 0 && existing.tables.includes('replicas') && !force) {
      const live = rows<{ id: string; last_seen: string }>(await tx.execute(sql`select id, last_seen::text from replicas where last_seen > now() - make_interval(secs => ${liveSeconds}) order by id`));
      if (live.length) throw new BackupError(`replicas are running on the target database (${live.map((r) => `${r.id}, last seen ${r.last_seen}`).join('; ')}): stop every \`bootfarm serve\` on it first (restore is an offline operation; a replica counts as running until ${liveSeconds} s after its last report, so one stopped just now needs that long), or pass --force`);
    }
    if (held.length && !force) {
      throw new BackupError(`the target database is not empty (${held.map((h) => `${h.table}: ${h.rows}`).join(', ')}): restore into an empty database (a new data directory, or a new PostgreSQL database), or pass --force to replace its contents`);
    }
    await applySteps(tx, steps.slice(dbSteps, upTo) as MigrationStep[]);
    const target = await catalog(tx);
    const replaced = held.reduce((s, h) => s + h.rows, 0);
    if (held.length) await tx.execute(sql.raw(`truncate ${target.tables.map(q).join(', ')} restart identity cascade`));
    // the rows, as PostgreSQL parses them: no value passes through a JavaScript number or Date
    let columns: string[] = [];
    let sequences: Record<string, SequenceValue> = {};
    for await (const item of readArchive(open(), { name, batchRows })) {
      if (item.kind === 'table') {
        const have = target.columns.get(item.table);
        if (!have) throw new BackupError(`${name} holds table ${item.table}, which the schema at ${steps[upTo - 1]!.tag} does not have (damaged archive?)`);
        const missing = item.columns.filter((c) => !have.includes(c));
        if (missing.length) throw new BackupError(`${name}: table ${item.table} has columns ${missing.join(', ')} that the schema at ${steps[upTo - 1]!.tag} does not have (damaged archive?)`);
        columns = item.columns;
      } else if (item.kind === 'rows') {
        const cols = columns.map(q).join(', ');
        try {
          await tx.execute(sql`insert into ${sql.raw(q(item.table))} (${sql.raw(cols)}) select ${sql.raw(cols)} from json_populate_recordset(null::${sql.raw(q(item.table))}, ${'[' + item.lines.join(',') + ']'}::json)`);
        } catch (e) {
          const cause = (e as { cause?: Error }).cause ?? (e as Error);
          throw new BackupError(`the database refused rows of table ${item.table} from ${name} (${cause.message}); nothing was restored`);
        }
      } else if (item.kind === 'sequences') {
        sequences = item.sequences;
      }
    }
    // read every table back: what the database now holds must be what the archive holds
    for (const end of checked.tables) {
      const digest = new RowDigest();
      for await (const lines of tableLines(tx, end.table, [], 1000)) for (const l of lines) digest.add(l);
      if (digest.rows !== end.rows || digest.hex() !== end.digest)
        throw new BackupError(`verification failed for table ${end.table}: the database holds ${digest.rows} rows with digest ${digest.hex().slice(0, 16)}…, the archive ${end.rows} with ${end.digest.slice(0, 16)}…; nothing was restored`);
    }
    for (const [seq, v] of Object.entries(sequences)) {
      if (!target.sequences.includes(seq)) throw new BackupError(`${name} holds sequence ${seq}, which the schema at ${steps[upTo - 1]!.tag} does not have`);
      await tx.execute(sql`select setval(${q(seq)}::regclass, ${v.value}::bigint, ${v.called})`);
    }
    const later = steps.slice(upTo);
    await applySteps(tx, later);
    return { ...checked, migratedAfter: later.map((s) => s.tag), replaced };
  });
}
