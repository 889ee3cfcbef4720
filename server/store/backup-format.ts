// The backup archive (issue 17 item 6): gzip of JSON lines, engine-neutral, read and written as a stream.
//
//   {"@backup": {format, version, createdAt, source, schema: {version, migrations}, kekChecks, tables}}
//   {"@table": "nodes", "columns": ["uuid", …]}
//   {"uuid": "…", …}                       one line per row: PostgreSQL's own row_to_json text, never re-encoded
//   {"@end": "nodes", "rows": 12, "digest": "…"}
//   … every table, parents before children (foreign keys)
//   {"@sequences": {"events_id_seq": {"value": 40, "called": true}, …}}
//   {"@trailer": {"tables": 21, "rows": 1234}}
//
// Why rows as JSON and not pg_dump or PGlite's dumpDataDir: the same file restores into PGlite or PostgreSQL
// (15 on Debian, 18 inside PGlite) in either direction, needs no pg_dump binary of the right major version,
// carries no DDL (the restoring build recreates the schema from its own migrations, up to the backup's version),
// and PostgreSQL itself both writes (row_to_json) and reads (json_populate_recordset) every value, so bigint,
// timestamptz and jsonb come back exactly, without a round trip through JavaScript numbers or dates.
//
// A row line never starts with `{"@`: every control line does (no column name starts with "@"). A table's digest
// is the sum, modulo 2^256, of the sha256 of each row line: independent of row order, so a restore compares what
// it reads back from the database (in whatever order and collation that engine sorts text) with the archive.
// gzip's CRC and length catch a damaged or truncated file; the trailer catches one cut at a gzip member boundary.
import { createHash } from 'node:crypto';
import { StringDecoder } from 'node:string_decoder';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { AppliedMigration } from '../db/migration-steps.ts';

export const BACKUP_FORMAT = 'bootfarm-backup';
/** Bumped when a reader of the previous version could misread the new one. */
export const BACKUP_FORMAT_VERSION = 1;

/** The archive cannot be used: damaged, truncated, another format or version, a schema this build does not know,
 * a KEK that does not open its data keys, a database that is not empty. Nothing was written. */
export class BackupError extends Error {
  override name = 'BackupError';
}

export interface BackupHeader {
  format: typeof BACKUP_FORMAT;
  version: number;
  createdAt: string;
  source: { engine: 'pglite' | 'postgres'; server: string };
  /** the latest migration (journal tag) the source database had, and every applied migration as recorded */
  schema: { version: string; migrations: AppliedMigration[] };
  /** check values (server/secrets.ts kekCheck) of the KEK(s) that wrapped the data keys; never the KEK */
  kekChecks: string[];
  /** in the order they follow: parents before children */
  tables: string[];
}

export interface TableEnd {
  table: string;
  rows: number;
  digest: string;
}

export interface SequenceValue {
  value: string;
  called: boolean;
}

export type ArchiveItem =
  | { kind: 'header'; header: BackupHeader }
  | { kind: 'table'; table: string; columns: string[] }
  | { kind: 'rows'; table: string; lines: string[] }
  | { kind: 'end'; end: TableEnd }
  | { kind: 'sequences'; sequences: Record<string, SequenceValue> }
  | { kind: 'trailer'; tables: number; rows: number };

const MOD = 1n << 256n;

/** The order-independent digest of a table's row lines. */
export class RowDigest {
  private sum = 0n;
  rows = 0;
  add(line: string): void {
    this.sum = (this.sum + BigInt('0x' + createHash('sha256').update(line).digest('hex'))) % MOD;
    this.rows++;
  }
  hex(): string {
    return this.sum.toString(16).padStart(64, '0');
  }
}

/** Lines of a gunzipped stream, with backpressure (the stream is read as the caller asks for more). */
async function* lines(input: Readable, name: string): AsyncGenerator<string> {
  const gunzip = createGunzip();
  input.on('error', (e) => gunzip.destroy(e));
  input.pipe(gunzip);
  const decoder = new StringDecoder('utf8');
  let rest = '';
  try {
    for await (const chunk of gunzip) {
      const text = rest + decoder.write(chunk as Buffer);
      const parts = text.split('\n');
      rest = parts.pop()!;
      for (const p of parts) yield p;
    }
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'Z_BUF_ERROR' || /unexpected end/i.test(err.message)) throw new BackupError(`${name} is truncated (the gzip stream ends early): ${err.message}`);
    if (err.code?.startsWith('Z_')) throw new BackupError(`${name} is not a bootfarm backup or is damaged (gzip: ${err.message})`);
    throw e;
  } finally {
    input.unpipe(gunzip);
    input.destroy();
  }
  rest += decoder.end();
  if (rest !== '') throw new BackupError(`${name} is truncated: its last line has no end`);
}

function control(line: string, n: number, name: string): Record<string, unknown> {
  try {
    const v = JSON.parse(line) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new BackupError(`${name} line ${n}: not a JSON object (damaged archive)`);
}

export function checkHeader(h: unknown, name: string): BackupHeader {
  const header = (h ?? {}) as Partial<BackupHeader>;
  if (header.format !== BACKUP_FORMAT) throw new BackupError(`${name} is not a bootfarm backup (format ${JSON.stringify(header.format)})`);
  if (header.version !== BACKUP_FORMAT_VERSION)
    throw new BackupError(`${name} is backup format version ${JSON.stringify(header.version)}; this build reads version ${BACKUP_FORMAT_VERSION}${typeof header.version === 'number' && header.version > BACKUP_FORMAT_VERSION ? ': restore it with the newer bootfarm build that wrote it' : ''}`);
  if (!header.schema || !Array.isArray(header.schema.migrations) || !Array.isArray(header.tables) || !Array.isArray(header.kekChecks) || typeof header.createdAt !== 'string')
    throw new BackupError(`${name}: the header lacks schema, tables, kekChecks or createdAt (damaged archive)`);
  return header as BackupHeader;
}

/**
 * Reads an archive and checks its framing as it goes: the header first, rows only inside a table, each table's
 * row count and digest against its end line, the tables the header announced, and the trailer last. Rows come in
 * batches of up to `batchRows` lines or about `batchBytes`. Throws BackupError at the first problem.
 */
export async function* readArchive(input: Readable, { name = 'the archive', batchRows = 500, batchBytes = 2 << 20 }: { name?: string; batchRows?: number; batchBytes?: number } = {}): AsyncGenerator<ArchiveItem> {
  let n = 0;
  let header: BackupHeader | undefined;
  let table: { name: string; digest: RowDigest } | undefined;
  let batch: string[] = [];
  let bytes = 0;
  let total = 0;
  const done: string[] = [];
  let trailer = false;
  for await (const line of lines(input, name)) {
    n++;
    if (trailer) throw new BackupError(`${name} line ${n}: data after the trailer (damaged archive)`);
    if (!header) {
      const first = line.startsWith('{"@backup"') ? control(line, n, name) : undefined;
      if (!first) throw new BackupError(`${name} is not a bootfarm backup (no header line)`);
      header = checkHeader(first['@backup'], name);
      yield { kind: 'header', header };
      continue;
    }
    if (!line.startsWith('{"@')) {
      if (!table) throw new BackupError(`${name} line ${n}: a row outside a table (damaged archive)`);
      table.digest.add(line);
      batch.push(line);
      bytes += line.length;
      if (batch.length >= batchRows || bytes >= batchBytes) {
        yield { kind: 'rows', table: table.name, lines: batch };
        batch = [];
        bytes = 0;
      }
      continue;
    }
    const c = control(line, n, name);
    if (typeof c['@table'] === 'string') {
      if (table) throw new BackupError(`${name} line ${n}: table ${c['@table']} starts before ${table.name} ended (damaged archive)`);
      const expected = header.tables[done.length];
      if (c['@table'] !== expected) throw new BackupError(`${name} line ${n}: table ${c['@table']} where the header announced ${expected ?? 'no more tables'} (damaged archive)`);
      if (!Array.isArray(c.columns) || !c.columns.every((x) => typeof x === 'string')) throw new BackupError(`${name} line ${n}: table ${c['@table']} has no column list (damaged archive)`);
      table = { name: c['@table'], digest: new RowDigest() };
      yield { kind: 'table', table: table.name, columns: c.columns as string[] };
    } else if (typeof c['@end'] === 'string') {
      if (!table || c['@end'] !== table.name) throw new BackupError(`${name} line ${n}: end of table ${c['@end']} that did not start (damaged archive)`);
      if (batch.length) yield { kind: 'rows', table: table.name, lines: batch };
      batch = [];
      bytes = 0;
      if (c.rows !== table.digest.rows || c.digest !== table.digest.hex())
        throw new BackupError(`${name}: table ${table.name} is damaged: ${table.digest.rows} rows read with digest ${table.digest.hex().slice(0, 16)}…, the archive recorded ${String(c.rows)} rows with digest ${String(c.digest).slice(0, 16)}…`);
      total += table.digest.rows;
      done.push(table.name);
      yield { kind: 'end', end: { table: table.name, rows: table.digest.rows, digest: table.digest.hex() } };
      table = undefined;
    } else if (c['@sequences'] && typeof c['@sequences'] === 'object') {
      if (table) throw new BackupError(`${name} line ${n}: sequences inside table ${table.name} (damaged archive)`);
      yield { kind: 'sequences', sequences: c['@sequences'] as Record<string, SequenceValue> };
    } else if (c['@trailer'] && typeof c['@trailer'] === 'object') {
      const t = c['@trailer'] as { tables?: unknown; rows?: unknown };
      if (table) throw new BackupError(`${name} is damaged: the trailer comes inside table ${table.name}`);
      if (done.length !== header.tables.length || t.tables !== done.length || t.rows !== total)
        throw new BackupError(`${name} is damaged: the trailer records ${String(t.tables)} tables and ${String(t.rows)} rows, the archive holds ${done.length} of the header's ${header.tables.length} tables and ${total} rows`);
      trailer = true;
      yield { kind: 'trailer', tables: done.length, rows: total };
    } else {
      throw new BackupError(`${name} line ${n}: unknown control line ${line.slice(0, 40)} (damaged archive)`);
    }
  }
  if (!header) throw new BackupError(`${name} is empty`);
  if (!trailer) throw new BackupError(`${name} is truncated: it ends ${table ? `inside table ${table.name}` : `after ${done.length} of ${header.tables.length} tables`}, without its trailer`);
}
