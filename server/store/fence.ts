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
      return db.transaction(async (tx) => {
        await tx.insert(fleetControl).values({ id: CONTROL_ID }).onConflictDoNothing();
        const holds = lockKey === undefined ? undefined : sql`exists (select 1 from pg_locks where locktype = 'advisory' and granted and objsubid = 1 and pid = pg_backend_pid() and ((classid::bigint << 32) | objid::bigint) = ${lockKey}::bigint)`;
        const [row] = await tx
          .update(fleetControl)
          .set({ leaderEpoch: sql`${fleetControl.leaderEpoch} + 1`, epochHolder: holder, epochAt: now })
          .where(and(eq(fleetControl.id, CONTROL_ID), holds))
          .returning({ epoch: fleetControl.leaderEpoch });
        return row?.epoch ?? null;
      });
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
      return !!rowsOf<{ ok: boolean }>(await db.execute(sql`select pg_try_advisory_lock(${key}::bigint) as ok`))[0]?.ok;
    },
    /** Does this session (its current backend) hold the lock, and is `fence` still the current epoch? */
    async verify(key: number, fence: Fence | null): Promise<{ held: boolean; current: boolean }> {
      const [row] = rowsOf<{ held: boolean; epoch: string | number | null; holder: string | null }>(
        await db.execute(sql`
          select exists (select 1 from pg_locks where locktype = 'advisory' and granted and objsubid = 1
                   and pid = pg_backend_pid() and ((classid::bigint << 32) | objid::bigint) = ${key}::bigint) as held,
                 (select leader_epoch from fleet_control where id = ${CONTROL_ID}) as epoch,
                 (select epoch_holder from fleet_control where id = ${CONTROL_ID}) as holder`),
      );
      return { held: !!row?.held, current: !!fence && Number(row?.epoch) === fence.epoch && row?.holder === fence.holder };
    },
    async unlock(key: number): Promise<void> {
      await db.execute(sql`select pg_advisory_unlock(${key}::bigint)`);
    },
  };
  return store;
}

export type FenceStore = ReturnType<typeof createFenceStore>;
