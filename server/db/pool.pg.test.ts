// The pooled PostgreSQL connections' server settings (server/db/index.ts POOL_SESSION_SETTINGS) on a real Debian
// PostgreSQL (test/harness/postgres.ts): a replica that stops inside a transaction (SIGSTOP, a cut network) must
// not keep its row locks and hang every other replica (the HA rack, issue 14).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { type PgCluster, startPostgres } from '../../test/harness/postgres.ts';
import { POOL_SESSION_SETTINGS, createDb } from './index.ts';

let pg: PgCluster;
beforeAll(async () => {
  pg = await startPostgres();
}, 120_000);
afterAll(() => pg?.stop());

const rowsOf = <T>(r: unknown): T[] => (Array.isArray(r) ? (r as T[]) : (((r as { rows?: T[] }).rows ?? []) as T[]));

describe('pooled PostgreSQL sessions', () => {
  it('every pooled connection carries the idle-in-transaction, lock and statement timeouts, and server-side TCP keepalives', async () => {
    const url = await pg.createDatabase('poolset');
    const h = await createDb({ url, maxConnections: 3 });
    try {
      // several connections at once, so more than the first one is checked
      const shows = await Promise.all(
        [0, 1, 2].map(() => h.db.execute(sql`select current_setting('idle_in_transaction_session_timeout') as idle, current_setting('lock_timeout') as lock, current_setting('statement_timeout') as stmt, current_setting('tcp_keepalives_idle') as ka_idle, current_setting('tcp_keepalives_interval') as ka_int, current_setting('tcp_keepalives_count') as ka_count, current_setting('tcp_user_timeout') as user_timeout, inet_client_addr() is not null as tcp, pg_backend_pid() as pid, pg_sleep(0.2)`)),
      );
      const rows = shows.map((r) => rowsOf<{ idle: string; lock: string; stmt: string; ka_idle: string; ka_int: string; ka_count: string; user_timeout: string; tcp: boolean; pid: number }>(r)[0]!);
      expect(new Set(rows.map((r) => r.pid)).size).toBe(3);
      for (const r of rows) expect([r.idle, r.lock, r.stmt]).toEqual(['15s', '10s', '1min']);
      // the server's side of a cut network: over TCP (on a Unix socket PostgreSQL reads these as 0)
      for (const r of rows) expect([r.tcp, r.ka_idle, r.ka_int, r.ka_count, r.user_timeout]).toEqual([true, '10', '3', '3', '30000']);
      expect(POOL_SESSION_SETTINGS.idle_in_transaction_session_timeout).toBe(15_000);
    } finally {
      await h.close();
    }
  });

  it('a replica stalled inside a transaction loses its session and its row lock; another replica then writes the row', async () => {
    const url = await pg.createDatabase('poolstall');
    // a short idle timeout so the test is quick; the writer's lock_timeout stays at the default 10 s, so without
    // the idle timeout the writer's update fails with "canceling statement due to lock timeout"
    const stalled = await createDb({ url, maxConnections: 1, sessionSettings: { idle_in_transaction_session_timeout: 1000 } });
    const writer = await createDb({ url, maxConnections: 1, migrate: false });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    try {
      await writer.db.execute(sql`create table stall_probe (id int primary key, v int not null)`);
      await writer.db.execute(sql`insert into stall_probe values (1, 0)`);
      let locked!: () => void;
      const holding = new Promise<void>((r) => (locked = r));
      // the stalled replica: takes the row lock, then sends nothing (as if SIGSTOPped between two statements)
      const stalledTx = stalled.db
        .transaction(async (tx) => {
          await tx.execute(sql`update stall_probe set v = 1 where id = 1`);
          locked();
          await gate;
          await tx.execute(sql`update stall_probe set v = 2 where id = 1`);
        })
        .then(
          () => 'committed',
          (e: Error) => `failed: ${e.message}`,
        );
      await holding;
      await writer.db.execute(sql`update stall_probe set v = 10 where id = 1`);
      const [row] = rowsOf<{ v: number }>(await writer.db.execute(sql`select v from stall_probe where id = 1`));
      expect(row!.v).toBe(10);
      // the stalled replica wakes up: its next statement is refused (the server ended the session) and its
      // transaction did not commit. Unpatched, postgres.js 3.4.9 crashed this process here instead (a write to a
      // connection the server had ended, porsager/postgres #1208; packaging/patches/apply.cjs).
      release();
      expect(await stalledTx).toMatch(/^failed: .*(CONNECTION_CLOSED|terminat)/i);
      const [after] = rowsOf<{ v: number }>(await writer.db.execute(sql`select v from stall_probe where id = 1`));
      expect(after!.v).toBe(10);
    } finally {
      release();
      await stalled.close().catch(() => {});
      await writer.close();
    }
  }, 60_000);
});
