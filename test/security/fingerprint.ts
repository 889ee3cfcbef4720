// A fingerprint of every table in the public schema: row count and an md5 over the rows' text, in a stable
// order. Two equal fingerprints mean no request wrote anything in between. One query for all tables (the
// hostile-input suite takes one after every case).
import { sql } from 'drizzle-orm';
import type { DbHandle } from '../../server/db/index.ts';

const rowsOf = <T>(r: unknown): T[] => (Array.isArray(r) ? r : ((r as { rows?: T[] }).rows ?? []));
const queries = new WeakMap<DbHandle, string>();

/** Columns left out: a valid stage-1 token's sliding expiry is renewed when it is presented (server/store/nodes.ts),
 * also by a request that is then refused for its body; that is the credential's bookkeeping, not the request's write. */
const IGNORED: Record<string, string[]> = { boot_attempts: ['last_used_at', 'expires_at'] };

export async function tableFingerprint(db: DbHandle): Promise<Record<string, string>> {
  let q = queries.get(db);
  if (!q) {
    const names = rowsOf<{ tablename: string }>(await db.db.execute(sql`select tablename from pg_tables where schemaname = 'public' order by tablename`)).map((r) => r.tablename);
    const row = (t: string) => (IGNORED[t] ? `(to_jsonb(x) ${IGNORED[t]!.map((c) => `- '${c}'`).join(' ')})::text` : 'x::text');
    q = names.map((t) => `select '${t}' as t, count(*)::int as n, coalesce(md5(string_agg(${row(t)}, ',' order by ${row(t)})), '') as h from "${t}" x`).join(' union all ');
    queries.set(db, q);
  }
  const out: Record<string, string> = {};
  for (const r of rowsOf<{ t: string; n: number; h: string }>(await db.db.execute(sql.raw(q)))) out[r.t] = `${r.n}:${r.h}`;
  return out;
}
