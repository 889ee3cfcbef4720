// Sessions whose client stopped in the middle of a transaction while others wait for its locks (issue 14).
//
// postgres.js sends a statement it has not prepared on a connection in two round trips (Parse+Describe, then
// Bind+Execute+Sync). Between them the backend is "active", waiting for its client (wait event ClientRead), and
// none of PostgreSQL's own limits ends it: statement_timeout counts only execution, idle_in_transaction_session_timeout
// only the idle state, and TCP keepalives (db/index.ts) only a dead path — a replica that is paused (SIGSTOP, a VM
// frozen for migration, a stop-the-world stall) still answers keepalives from its kernel. The HA rack saw such
// sessions of its paused replica hold a node's row for the whole 60 s pause, failing that node's requests on every
// other replica with lock_timeout. The fleet leader ends them (a leader task, server/main.ts): a session of our own
// role, waiting for its client for longer than `stalledSeconds` since its state last changed, that blocks at least
// one other session. A session that is executing, or waits for nothing, or blocks nobody is left alone; so is a
// COPY (a restore streams its rows through ClientRead). What the paused replica finds when it wakes is a closed
// connection: its request fails and is retried, and the transaction it had open was rolled back as a whole.
import { sql } from 'drizzle-orm';
import { rowsOf, type Db } from '../db/index.ts';

/** What an ended session was doing, for the log line. */
export interface EndedSession {
  pid: number;
  client: string | null;
  application: string | null;
  state: string;
  /** seconds since its state last changed (the statement's start, or when it went idle in its transaction) */
  seconds: number;
  blocking: number;
  query: string;
}

export async function endStalledLockHolders(db: Db, { stalledSeconds }: { stalledSeconds: number }): Promise<EndedSession[]> {
  if (!Number.isFinite(stalledSeconds) || stalledSeconds <= 0) throw new Error(`stalledSeconds must be > 0, got ${stalledSeconds}`);
  const result = await db.execute(sql`
    with stalled as materialized (
      select a.pid, a.client_addr::text as client, a.application_name as application, a.state,
             floor(extract(epoch from now() - a.state_change))::int as seconds,
             (select count(*) from pg_stat_activity b where b.pid <> a.pid and a.pid = any(pg_blocking_pids(b.pid)))::int as blocking,
             left(a.query, 160) as query
        from pg_stat_activity a
       where a.datname = current_database() and a.usename = current_user and a.pid <> pg_backend_pid()
         and a.backend_type = 'client backend'
         and a.state in ('active', 'idle in transaction')
         and a.wait_event_type = 'Client' and a.wait_event = 'ClientRead'
         and a.state_change < now() - make_interval(secs => ${stalledSeconds})
         and a.query !~* '^\\s*copy\\s'
    )
    select pid, client, application, state, seconds, blocking, query from stalled where blocking > 0 and pg_terminate_backend(pid)`);
  return rowsOf<EndedSession>(result).map((r) => ({ ...r, pid: Number(r.pid), seconds: Number(r.seconds), blocking: Number(r.blocking) }));
}
