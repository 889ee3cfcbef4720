// Migrations on a real Debian PostgreSQL (test/harness/postgres.ts): replicas starting together serialise on
// the migration advisory lock, and a replica refuses a database migrated by a newer build (issue 14 item 2).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import postgres from 'postgres';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import { type PgCluster, startPostgres } from '../../test/harness/postgres.ts';
import { MIGRATIONS_DIR, SchemaTooNewError, createDb } from './index.ts';

let pg: PgCluster;
beforeAll(async () => {
  pg = await startPostgres();
}, 120_000);
afterAll(() => pg?.stop());

const journal = readMigrationFiles({ migrationsFolder: MIGRATIONS_DIR });

async function migrationRows(url: string) {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    return await sql<{ hash: string; created_at: string }[]>`select hash, created_at from drizzle.__drizzle_migrations order by id`;
  } finally {
    await sql.end();
  }
}

describe('migrations on PostgreSQL', () => {
  it('two replicas migrating one fresh database together both start, and each migration is applied once', async () => {
    const url = await pg.createDatabase('migrace');
    const [a, b] = await Promise.all([createDb({ url, maxConnections: 2 }), createDb({ url, maxConnections: 2 })]);
    try {
      await a.ping();
      await b.ping();
      const rows = await migrationRows(url);
      expect(rows.map((r) => Number(r.created_at))).toEqual(journal.map((m) => m.folderMillis));
      expect(rows.map((r) => r.hash)).toEqual(journal.map((m) => m.hash));
      // the lock is released: nobody holds an advisory lock after start
      const sql = postgres(url, { max: 1, onnotice: () => {} });
      const locks = await sql`select 1 from pg_locks where locktype = 'advisory'`;
      await sql.end();
      expect(locks.length).toBe(0);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('a database with a migration this build does not know makes createDb fail naming both versions', async () => {
    const url = await pg.createDatabase('mignewer');
    const first = await createDb({ url, maxConnections: 1 });
    await first.close();
    const newer = Date.now() + 86_400_000;
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    await sql`insert into drizzle.__drizzle_migrations (hash, created_at) values (${'f'.repeat(64)}, ${newer})`;
    await sql.end();
    const err = await createDb({ url, maxConnections: 1 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(SchemaTooNewError);
    const msg = (err as Error).message;
    const last = journal[journal.length - 1]!;
    expect(msg).toContain('database schema is newer than this build');
    expect(msg).toContain(`the database has ${journal.length + 1} migrations, latest created_at ${newer}`);
    expect(msg).toContain(`this build knows ${journal.length} migrations`);
    expect(msg).toContain(`created_at ${last.folderMillis}`);
    // the refusal left the lock free: a check of the same database fails the same way instead of hanging
    await expect(createDb({ url, maxConnections: 1 })).rejects.toThrow(SchemaTooNewError);
  });

  it('a database with the same count but a different migration is refused too', async () => {
    const url = await pg.createDatabase('migdiff');
    const first = await createDb({ url, maxConnections: 1 });
    await first.close();
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    await sql`update drizzle.__drizzle_migrations set hash = ${'e'.repeat(64)} where id = (select max(id) from drizzle.__drizzle_migrations)`;
    await sql.end();
    await expect(createDb({ url, maxConnections: 1 })).rejects.toThrow(/is not in this build's journal/);
  });
});

describe('migrations on PGlite', () => {
  it('refuses a data directory migrated by a newer build (no lock: one process owns it)', async () => {
    const { PGlite } = await import('@electric-sql/pglite');
    const h = await createDb({ dataDir: 'memory://' });
    const dump = await h.dump!();
    await h.close();
    const raw = await PGlite.create('memory://', { loadDataDir: dump });
    await raw.query(`insert into drizzle.__drizzle_migrations (hash, created_at) values ($1, $2)`, ['d'.repeat(64), Date.now() + 86_400_000]);
    const tampered = (await raw.dumpDataDir('none')) as Blob;
    await raw.close();
    await expect(createDb({ dataDir: 'memory://', loadDataDir: tampered })).rejects.toThrow(SchemaTooNewError);
  });
});
