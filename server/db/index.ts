// createDb(config): embedded PGlite in a data directory by default, postgres.js when a DATABASE_URL is
// given. The handle is passed down to the store; nothing here is a module-level singleton.
import { fileURLToPath } from 'node:url';
import { mkdirSync } from 'node:fs';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { sql } from 'drizzle-orm';
import * as schema from './schema/index.ts';
import { restrictTree } from '../secrets.ts';

export { schema };
export type Schema = typeof schema;
// Both drivers' databases are PgDatabase; the query-result type differs and nothing of ours depends on it.
export type Db = PgDatabase<PgQueryResultHKT, Schema>;

export const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations', import.meta.url));

export interface DbOptions {
  /** postgres://… — selects a real PostgreSQL server */
  url?: string;
  /** PGlite data directory; 'memory://' for an in-memory database */
  dataDir?: string;
  /** postgres.js pool size */
  maxConnections?: number;
  /** apply migrations before returning (default true) */
  migrate?: boolean;
  /** PGlite only: start from a dumpDataDir() tarball instead of an empty cluster (tests use a migrated snapshot) */
  loadDataDir?: Blob;
}

export interface DbHandle {
  db: Db;
  kind: 'pglite' | 'postgres';
  /** SELECT 1 — throws when the database is unreachable */
  ping(): Promise<void>;
  close(): Promise<void>;
  /** only for postgres: a dedicated connection for session-level advisory locks (leader election) */
  url?: string;
  /** only for PGlite: the cluster as a tarball */
  dump?: () => Promise<Blob>;
}

export async function createDb({ url, dataDir = 'memory://', maxConnections = 10, migrate = true, loadDataDir }: DbOptions = {}): Promise<DbHandle> {
  if (url) {
    const { default: postgres } = await import('postgres');
    const { drizzle } = await import('drizzle-orm/postgres-js');
    const client = postgres(url, {
      max: maxConnections,
      onnotice: () => {},
      connect_timeout: 5,
      idle_timeout: 60,
    });
    const db = drizzle(client, { schema }) as unknown as Db;
    const handle: DbHandle = {
      db,
      kind: 'postgres',
      url,
      ping: async () => {
        await db.execute(sql`select 1`);
      },
      close: async () => {
        await client.end({ timeout: 5 });
      },
    };
    if (migrate) {
      const { migrate: run } = await import('drizzle-orm/postgres-js/migrator');
      await run(db as never, { migrationsFolder: MIGRATIONS_DIR });
    }
    return handle;
  }
  const { PGlite } = await import('@electric-sql/pglite');
  const { drizzle } = await import('drizzle-orm/pglite');
  const onDisk = !dataDir.includes('://');
  // the cluster holds every secret we keep (sealed BMC passwords, token hashes, sessions): private to this user
  if (onDisk) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    restrictTree(dataDir);
  }
  const client = await PGlite.create(dataDir, loadDataDir ? { loadDataDir } : {});
  // initdb unpacked a template with 0666 files: close them before anything is written into them
  if (onDisk) restrictTree(dataDir);
  const db = drizzle(client, { schema }) as unknown as Db;
  if (migrate) {
    const { migrate: run } = await import('drizzle-orm/pglite/migrator');
    await run(db as never, { migrationsFolder: MIGRATIONS_DIR });
  }
  return {
    db,
    kind: 'pglite',
    ping: async () => {
      await client.query('select 1');
    },
    close: async () => {
      await client.close();
    },
    dump: async () => (await client.dumpDataDir('none')) as Blob,
  };
}

/** Postgres error codes of interest (see FACTS.md: PGlite wraps them in err.cause). */
export function pgErrorCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let i = 0; i < 4 && e; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** True when an error means "the database is not there right now" rather than "the query is wrong". */
export function isDbUnavailable(err: unknown): boolean {
  let e: unknown = err;
  for (let i = 0; i < 4 && e; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') {
      if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'CONNECTION_ENDED', 'CONNECTION_CLOSED', 'CONNECTION_DESTROYED', 'CONNECT_TIMEOUT'].includes(code)) return true;
      // 08xxx connection exceptions, 57P0x admin shutdown / crash / cannot connect now
      if (/^(08...|57P0.)$/.test(code)) return true;
    }
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}
