// Leader epoch (fencing token) and the leader lock's SQL (docs/ha.md "Leadership and fencing").
//
// The epoch lives in fleet_control.leader_epoch. A replica that has just taken the leader's advisory lock
// increments it in one transaction on the lock's own session (so a session that died cannot bump it), and keeps
// the number. Every write the fleet controller makes runs in run(fence, …): the transaction first reads the
// epoch FOR SHARE and throws FencedError unless it is still the one this replica took. The share lock orders
// the write against the next leader's increment (which needs the row exclusively): a stale leader's write either
// commits before the new epoch exists or is refused — never after.
import { and, eq, sql } from 'drizzle-orm';
import type { Db } from '../db/index.ts';
import { fleetControl } from '../db/schema/index.ts';

const CONTROL_ID = 'fleet';

/*
 * lockSql: the statements of the lock session (tryLock, verify, takeEpoch, unlock) carry no bind parameters; their
 * values are written into the SQL as checked literals. postgres.js sends a statement with parameters that it has not
 * prepared on this connection in two round trips (Parse+Describe+Flush, then Bind+Execute+Sync), and between them
 * the backend is "active" waiting for the client: idle_session_timeout, idle_in_transaction_session_timeout and
 * statement_timeout all leave it alone. A leader paused (SIGSTOP) in that gap — it happens right after a reconnect,
 * when nothing is prepared yet — kept the lock for as long as it stayed paused: the failover test saw it 2 times in
 * 25 (server/fleet/failover.pg.test.ts). A statement without parameters goes out in one write (Parse…Sync), so the
 * server has either all of it or none, and the session is idle (its timeouts apply) whenever it is not executing.
 */
/** a bigint literal from a safe integer (the lock key) */
function bigint(n: number): string {
  if (!Number.isSafeInteger(n)) throw new Error(`lock key ${n} is not an integer`);
  return String(n);
}
/** a standard SQL string literal (standard_conforming_strings is on since PostgreSQL 9.1: only ' is special) */
function literal(v: string): string {
  if (v.includes('\0')) throw new Error('a NUL character cannot be written into SQL');
  return `'${v.replace(/'/g, "''")}'`;
}

/** What a leader holds: the epoch it took, and its replica id. */
export interface Fence {
  epoch: number;
  holder: string;
}

/** The epoch moved on: another replica leads now. The write was not made; the caller stops acting. */
export class FencedError extends Error {
  override name = 'FencedError';
  constructor(
    readonly mine: Fence,
    readonly current: { epoch: number; holder: string | null },
  ) {
    super(`fenced: this replica's leader epoch ${mine.epoch} is stale (the current epoch is ${current.epoch}, taken by ${current.holder ?? 'nobody'}); nothing written`);
  }
}

export interface EpochState {
  epoch: number;
  holder: string | null;
  at: Date | null;
}

/** postgres.js returns the rows as the result; PGlite wraps them in { rows } */
const rowsOf = <T>(r: unknown): T[] => (Array.isArray(r) ? (r as T[]) : (((r as { rows?: T[] }).rows ?? []) as T[]));

export interface GuardOptions {
  lock?: 'share' | 'update';
  idleMs?: number;
  lockTimeoutMs?: number;
}

/** Inside a transaction: bound its idle time and lock waits, then read the epoch row locked; FencedError unless it is `fence`. */
async function guardTx(tx: Db, fence: Fence, { lock = 'share', idleMs = 10_000, lockTimeoutMs = 10_000 }: GuardOptions): Promise<void> {
  await tx.execute(sql`select set_config('idle_in_transaction_session_timeout', ${String(idleMs)}, true), set_config('lock_timeout', ${String(lockTimeoutMs)}, true)`);
  const [row] = await tx.select({ epoch: fleetControl.leaderEpoch, holder: fleetControl.epochHolder }).from(fleetControl).where(eq(fleetControl.id, CONTROL_ID)).for(lock);
  const cur = { epoch: row?.epoch ?? 0, holder: row?.holder ?? null };
  if (cur.epoch !== fence.epoch || cur.holder !== fence.holder) throw new FencedError(fence, cur);
}

export function createFenceStore(db: Db) {
  const store = {
    async current(): Promise<EpochState> {
      const [row] = await db.select({ epoch: fleetControl.leaderEpoch, holder: fleetControl.epochHolder, at: fleetControl.epochAt }).from(fleetControl).where(eq(fleetControl.id, CONTROL_ID));
      return { epoch: row?.epoch ?? 0, holder: row?.holder ?? null, at: row?.at ?? null };
    },

    /**
     * Increment the epoch for `holder` and return it. With `lockKey`, only while this session holds that advisory
     * lock (the lock session calls this right after pg_try_advisory_lock): null when it does not.
     */
    async takeEpoch(holder: string, now: Date, { lockKey }: { lockKey?: number } = {}): Promise<number | null> {
      // Two statements without bind parameters (see lockSql): the row exists (the first leader creates it), then
      // one UPDATE takes the epoch, atomically, only while this session holds the lock.
      await db.execute(sql.raw(`insert into fleet_control (id) values (${literal(CONTROL_ID)}) on conflict do nothing`));
      const holds = lockKey === undefined ? '' : ` and exists (select 1 from pg_locks where locktype = 'advisory' and granted and objsubid = 1 and pid = pg_backend_pid() and ((classid::bigint << 32) | objid::bigint) = ${bigint(lockKey)}::bigint)`;
      const [row] = rowsOf<{ epoch: string | number }>(
        await db.execute(
          sql.raw(
            `update fleet_control set leader_epoch = leader_epoch + 1, epoch_holder = ${literal(holder)}, epoch_at = ${literal(now.toISOString())}::timestamptz where id = ${literal(CONTROL_ID)}${holds} returning leader_epoch as epoch`,
          ),
        ),
      );
      return row ? Number(row.epoch) : null;
    },

    /**
     * The lock session holds the lock but its epoch increment waited out lock_timeout: a transaction of the old
     * leader holds the epoch row (guardTx's FOR SHARE) and is not ending — a paused process that had sent the first
     * half of a statement is "active", so no idle timeout of the server ends it (see lockSql). Only leader writes
     * lock that row (and an operator's breaker switch, for milliseconds), and the old leader has lost the lock: end
   * the sessions that hold it while waiting for their client. Returns the pids ended.
     */
    async endStaleWriters(): Promise<number[]> {
      const rows = rowsOf<{ pid: number }>(
        await db.execute(
          sql.raw(
            // MATERIALIZED: the filter runs first, pg_terminate_backend only on what it kept
            // and only sessions waiting for their client (ClientRead): one that is executing is left to finish
            `with w as materialized (select distinct l.pid from pg_locks l join pg_stat_activity a on a.pid = l.pid where l.locktype = 'relation' and l.relation = 'fleet_control'::regclass and l.mode in ('RowShareLock', 'RowExclusiveLock') and l.granted and l.pid <> pg_backend_pid() and a.wait_event_type = 'Client' and a.wait_event = 'ClientRead') select pid from w where pg_terminate_backend(pid)`,
          ),
        ),
      );
      return rows.map((r) => Number(r.pid));
    },

    /** Throws FencedError unless `fence` is the current epoch (a read: for checks before a side effect outside the database, e.g. a BMC call). */
    async assert(fence: Fence): Promise<void> {
      const cur = await store.current();
      if (cur.epoch !== fence.epoch || cur.holder !== fence.holder) throw new FencedError(fence, cur);
    },

    /**
     * Runs fn in one transaction that first checks the epoch (FOR SHARE, or FOR UPDATE when fn itself updates
     * fleet_control, so the lock is not upgraded). fn gets the transaction as a Db: build stores on it.
     * A transaction left open by a paused process is ended by the server after `idleMs` (its locks go with it),
     * and a wait for the epoch row is bounded by `lockTimeoutMs`.
     */
    async run<T>(fence: Fence, fn: (tx: Db) => Promise<T>, opts: GuardOptions = {}): Promise<T> {
      return db.transaction(async (tx) => {
        await guardTx(tx as unknown as Db, fence, opts);
        return fn(tx as unknown as Db);
      });
    },
    /** the same check as a hook for a store write that opens its own transaction (NodeStore.transition's guard) */
    guard: (fence: Fence, opts: GuardOptions = {}) => (tx: Db) => guardTx(tx, fence, opts),

    // ---- the leader lock, on the lock session (server/fleet/leader.ts) ----

    async tryLock(key: number): Promise<boolean> {
      return !!rowsOf<{ ok: boolean }>(await db.execute(sql.raw(`select pg_try_advisory_lock(${bigint(key)}::bigint) as ok`)))[0]?.ok;
    },
    /** Does this session (its current backend) hold the lock, and is `fence` still the current epoch? */
    async verify(key: number, fence: Fence | null): Promise<{ held: boolean; current: boolean }> {
      const [row] = rowsOf<{ held: boolean; epoch: string | number | null; holder: string | null }>(
        await db.execute(
          sql.raw(`
          select exists (select 1 from pg_locks where locktype = 'advisory' and granted and objsubid = 1
                   and pid = pg_backend_pid() and ((classid::bigint << 32) | objid::bigint) = ${bigint(key)}::bigint) as held,
                 (select leader_epoch from fleet_control where id = ${literal(CONTROL_ID)}) as epoch,
                 (select epoch_holder from fleet_control where id = ${literal(CONTROL_ID)}) as holder`),
        ),
      );
      return { held: !!row?.held, current: !!fence && Number(row?.epoch) === fence.epoch && row?.holder === fence.holder };
    },
    async unlock(key: number): Promise<void> {
      await db.execute(sql.raw(`select pg_advisory_unlock(${bigint(key)}::bigint)`));
    },
  };
  return store;
}

export type FenceStore = ReturnType<typeof createFenceStore>;
