// createDb(config): embedded PGlite in a data directory by default, postgres.js when a DATABASE_URL is
// given. The handle is passed down to the store; nothing here is a module-level singleton.
import { fileURLToPath } from 'node:url';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { sql } from 'drizzle-orm';
import * as schema from './schema/index.ts';
import { restrictTree } from '../secrets.ts';

export { schema };
export type Schema = typeof schema;
// Both drivers' databases are PgDatabase; the query-result type differs and nothing of ours depends on it.
export type Db = PgDatabase<PgQueryResultHKT, Schema>;

export const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations', import.meta.url));

/**
 * Key of the session-level advisory lock every replica takes around migrating a PostgreSQL database, so two
 * replicas starting together do not both apply the same migration. A constant: "bfmigr" in ASCII.
 * (The leader lock in server/fleet/leader.ts uses its own key.)
 */
export const MIGRATION_LOCK_KEY = 0x62666d696772;

/** Thrown when the database was migrated by a newer build than this one; the replica must not start on it. */
export class SchemaTooNewError extends Error {
  override name = 'SchemaTooNewError';
}

interface JournalEntry {
  tag: string;
  when: number;
}

/**
 * Refuse a database whose drizzle.__drizzle_migrations holds a migration this build's journal does not have
 * (a newer build migrated it): the drizzle migrator would skip them silently and this build would then run
 * against columns and constraints it does not know. Matching is on the (hash, created_at) pair the migrator
 * writes; a missing table is a fresh database.
 */
export async function assertSchemaNotNewer(db: Db, migrationsDir = MIGRATIONS_DIR): Promise<void> {
  const journal = (JSON.parse(readFileSync(join(migrationsDir, 'meta', '_journal.json'), 'utf8')) as { entries: JournalEntry[] }).entries;
  const { readMigrationFiles } = await import('drizzle-orm/migrator');
  const files = readMigrationFiles({ migrationsFolder: migrationsDir });
  const known = new Set(files.map((f) => `${f.hash}@${f.folderMillis}`));
  const exists = (await db.execute(sql`select to_regclass('drizzle.__drizzle_migrations') is not null as present`)) as unknown;
  const present = rowsOf<{ present: boolean }>(exists)[0]?.present;
  if (!present) return;
  const rows = rowsOf<{ hash: string; created_at: string | number | null }>(
    (await db.execute(sql`select hash, created_at from drizzle.__drizzle_migrations order by created_at, id`)) as unknown,
  );
  const unknown = rows.filter((r) => !known.has(`${r.hash}@${Number(r.created_at)}`));
  if (unknown.length === 0 && rows.length <= files.length) return;
  const last = rows[rows.length - 1]!;
  const buildLatest = journal[journal.length - 1];
  const dbVersion = `${rows.length} migrations, latest created_at ${Number(last.created_at)} (hash ${last.hash.slice(0, 12)})`;
  const buildVersion = `${journal.length} migrations, latest ${buildLatest ? `${buildLatest.tag} (created_at ${buildLatest.when})` : 'none'}`;
  const firstUnknown = unknown[0];
  throw new SchemaTooNewError(
    `database schema is newer than this build: the database has ${dbVersion}; this build knows ${buildVersion}` +
      (firstUnknown ? `; migration created_at ${Number(firstUnknown.created_at)} (hash ${firstUnknown.hash.slice(0, 12)}) is not in this build's journal` : '') +
      '. Refusing to start: run the newer bootfarm build on this database (or restore a backup taken before it migrated).',
  );
}

/** The latest migration this build knows (its journal tag, e.g. "0012_replicas"): the build's schema version. */
export function buildSchemaVersion(migrationsDir = MIGRATIONS_DIR): string {
  const journal = (JSON.parse(readFileSync(join(migrationsDir, 'meta', '_journal.json'), 'utf8')) as { entries: JournalEntry[] }).entries;
  return journal.at(-1)?.tag ?? 'none';
}

/** postgres.js returns the rows as the result; PGlite wraps them in { rows } */
export function rowsOf<T>(result: unknown): T[] {
  if (Array.isArray(result)) return result as T[];
  return ((result as { rows?: T[] }).rows ?? []) as T[];
}

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
  /** called with the text of every statement drizzle sends (tests count queries per request with it) */
  onQuery?: (sql: string) => void;
  /** postgres only: overrides of POOL_SESSION_SETTINGS for this pool (e.g. statement_timeout: 0 for a backup) */
  sessionSettings?: Record<string, string | number>;
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
  /**
   * LISTEN on a channel: onNotify for every notification; onListen each time listening (re)starts — after a
   * reconnect, notifications sent meanwhile are lost, so the caller re-reads. Resolves to an unlisten function.
   */
  listen(channel: string, onNotify: (payload: string) => void, onListen?: () => void): Promise<() => Promise<void>>;
}

/**
 * Server settings on every pooled PostgreSQL connection (sent in the startup packet). Without them one replica that
 * stops between two statements of a transaction — SIGSTOP, a VM pause, a cut network — keeps its row locks for as
 * long as the server believes the session alive (TCP keepalive: hours), every other replica's writers queue behind
 * it until their pools are full, and the whole cluster hangs (the HA rack found this: a follower paused for 60 s
 * and a leader cut off held node and fleet_control rows, and the one healthy replica stopped answering).
 *   idle_in_transaction_session_timeout  the server ends a session idle inside a transaction, releasing its locks
 *   lock_timeout                         a writer waiting on a row lock gives up (503 to the client, who retries)
 *   statement_timeout                    no request-path statement runs unbounded
 *   tcp_keepalives_* / tcp_user_timeout  the server's side of a cut network. A replica cut off (iptables DROP, a
 *       dead switch) cannot tell PostgreSQL it is gone: its FIN never arrives. A backend waiting for that client
 *       outside the states the timeouts above cover (mid-protocol, or blocked sending a result) would keep its
 *       transaction and row locks until the kernel's defaults give up (keepalive 2 h, retransmission ~15 min); the
 *       HA rack saw a node's row locked for 8 minutes after its leader was cut off. Probes after 10 s idle, 3 s
 *       apart, 3 lost = gone (~19 s); unacknowledged data for 30 s = gone. The leader's lock session has its own,
 *       tighter values (server/fleet/leader.ts).
 * Long maintenance work (backup, restore, migrations) runs on its own session with its own settings.
 */
export const POOL_SESSION_SETTINGS = {
  idle_in_transaction_session_timeout: 15_000,
  lock_timeout: 10_000,
  statement_timeout: 60_000,
  tcp_keepalives_idle: 10,
  tcp_keepalives_interval: 3,
  tcp_keepalives_count: 3,
  tcp_user_timeout: 30_000,
} as const;

export async function createDb({ url, dataDir = 'memory://', maxConnections = 10, migrate = true, loadDataDir, onQuery, sessionSettings = {} }: DbOptions = {}): Promise<DbHandle> {
  const logger = onQuery ? { logQuery: (q: string) => onQuery(q) } : undefined;
  if (url) {
    const { default: postgres } = await import('postgres');
    const { drizzle } = await import('drizzle-orm/postgres-js');
    const client = postgres(url, {
      max: maxConnections,
      onnotice: () => {},
      connect_timeout: 5,
      idle_timeout: 60,
      keep_alive: 10,
      connection: { ...POOL_SESSION_SETTINGS, ...sessionSettings },
    });
    const db = drizzle(client, { schema, logger }) as unknown as Db;
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
      // postgres.js keeps one extra connection for LISTEN and re-listens after a reconnect (calling onListen)
      listen: async (channel, onNotify, onListen) => {
        const { unlisten } = await client.listen(channel, (p) => onNotify(p), onListen);
        return unlisten;
      },
    };
    if (migrate) {
      try {
        await migratePostgres(postgres, drizzle, url);
      } catch (err) {
        await client.end({ timeout: 5 });
        throw err;
      }
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
  const db = drizzle(client, { schema, logger }) as unknown as Db;
  // PGlite is embedded: one process owns the data directory, so there is no other replica to lock out
  if (migrate) {
    try {
      await assertSchemaNotNewer(db);
      const { migrate: run } = await import('drizzle-orm/pglite/migrator');
      await run(db as never, { migrationsFolder: MIGRATIONS_DIR });
    } catch (err) {
      await client.close();
      throw err;
    }
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
    listen: async (channel, onNotify, onListen) => {
      const off = await client.listen(channel, (p) => onNotify(p));
      onListen?.();
      return off;
    },
  };
}

export interface SessionOptions {
  /** server settings for this session, sent in the startup packet (e.g. statement_timeout: '5000') */
  settings?: Record<string, string | number>;
  /** TCP keepalive on the client socket: first probe after this many seconds of silence */
  keepAliveSeconds?: number;
  connectTimeoutSeconds?: number;
}

/**
 * One dedicated PostgreSQL session (postgres.js, max 1, never recycled while in use) for session-level state such
 * as an advisory lock. postgres.js reconnects silently after a lost connection: whoever holds session state must
 * check that it is still there (server/store/fence.ts verify). end() closes it, releasing what the session held;
 * destroy() drops the socket at once (a connection that no longer answers).
 */
export async function openSession(url: string, { settings = {}, keepAliveSeconds = 5, connectTimeoutSeconds = 5 }: SessionOptions = {}): Promise<{ db: Db; end(): Promise<void>; destroy(): Promise<void> }> {
  const { default: postgres } = await import('postgres');
  const { drizzle } = await import('drizzle-orm/postgres-js');
  const client = postgres(url, { max: 1, idle_timeout: 0, max_lifetime: 0, connect_timeout: connectTimeoutSeconds, keep_alive: keepAliveSeconds, onnotice: () => {}, connection: settings });
  return {
    db: drizzle(client, { schema }) as unknown as Db,
    end: () => client.end({ timeout: 5 }),
    destroy: () => client.end({ timeout: 0 }),
  };
}

/**
 * Check and migrate on one dedicated connection holding MIGRATION_LOCK_KEY: the advisory lock is per session,
 * so the lock, the newer-schema check and the migrator's transaction must all run on that same connection. A
 * second replica waits on the lock, then finds every migration applied and does nothing. The lock goes with
 * the session if this process dies mid-migration (the migrator's transaction rolls back with it).
 */
async function migratePostgres(
  postgres: typeof import('postgres'),
  drizzle: typeof import('drizzle-orm/postgres-js').drizzle,
  url: string,
): Promise<void> {
  const conn = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 5 });
  try {
    const db = drizzle(conn, { schema }) as unknown as Db;
    await db.execute(sql`select pg_advisory_lock(${MIGRATION_LOCK_KEY}::bigint)`);
    try {
      await assertSchemaNotNewer(db);
      const { migrate: run } = await import('drizzle-orm/postgres-js/migrator');
      await run(db as never, { migrationsFolder: MIGRATIONS_DIR });
    } finally {
      await db.execute(sql`select pg_advisory_unlock(${MIGRATION_LOCK_KEY}::bigint)`);
    }
  } finally {
    await conn.end({ timeout: 5 });
  }
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
