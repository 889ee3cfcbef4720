// A fingerprint of every table in the public schema: row count and an md5 over the rows' text, in a stable
// order. Two equal fingerprints mean no request wrote anything in between.
import { sql } from 'drizzle-orm';
import type { DbHandle } from '../../server/db/index.ts';

export async function tableFingerprint(db: DbHandle): Promise<Record<string, string>> {
  const tables = (await db.db.execute(sql`select tablename from pg_tables where schemaname = 'public' order by tablename`)) as unknown as { rows?: { tablename: string }[] } | { tablename: string }[];
  const names = (Array.isArray(tables) ? tables : (tables.rows ?? [])).map((r) => r.tablename);
  const out: Record<string, string> = {};
  for (const t of names) {
    const r = (await db.db.execute(sql.raw(`select count(*)::int as n, coalesce(md5(string_agg(x::text, ',' order by x::text)), '') as h from "${t}" x`))) as unknown as { rows?: { n: number; h: string }[] } | { n: number; h: string }[];
    const row = (Array.isArray(r) ? r : (r.rows ?? []))[0]!;
    out[t] = `${row.n}:${row.h}`;
  }
  return out;
}
