// Leader election: the fleet controllers run on one replica only (ARCHITECTURE.md "State and scale").
//
// PostgreSQL: a session-level advisory lock, pg_try_advisory_lock(key), held by a dedicated postgres.js
// connection (max: 1, no idle timeout, no max lifetime — closing the session releases the lock). A lost
// connection loses the lock with it, and postgres.js reconnects silently on the next query, so check() does
// not trust a flag: a leader proves on every check that its *current* backend holds the lock (pg_locks,
// pid = pg_backend_pid()); if not — the old backend died, e.g. pg_terminate_backend — it steps down and tries
// to take the lock again on the new connection. A follower tries pg_try_advisory_lock on each check.
// Between a lost connection and the next check the old leader may still act for up to checkSeconds; the
// controllers' transitions lock the node row and re-check the lifecycle, so a late action is refused, not doubled.
//
// PGlite is embedded in one process: that process leads.
import type { Logger } from 'pino';

export interface LeaderElector {
  /** updates leadership (take / verify the lock) and returns it */
  check(): Promise<boolean>;
  isLeader(): boolean;
  /** releases the lock and closes the dedicated connection */
  stop(): Promise<void>;
}

export function alwaysLeader(): LeaderElector {
  return { check: async () => true, isLeader: () => true, stop: async () => {} };
}

export interface PgLeaderOptions {
  url: string;
  lockKey: number;
  logger?: Pick<Logger, 'info' | 'warn'>;
  onChange?: (leader: boolean) => void;
}

export async function createPgLeaderElector({ url, lockKey, logger, onChange }: PgLeaderOptions): Promise<LeaderElector> {
  const { default: postgres } = await import('postgres');
  const sql = postgres(url, { max: 1, idle_timeout: 0, max_lifetime: 0, connect_timeout: 5, onnotice: () => {} });
  let leader = false;
  let stopped = false;
  let checking: Promise<boolean> | null = null;
  const set = (v: boolean, why: string) => {
    if (v === leader) return;
    leader = v;
    logger?.[v ? 'info' : 'warn']({ lockKey, why }, v ? 'fleet leadership acquired' : 'fleet leadership lost');
    onChange?.(v);
  };

  async function once(): Promise<boolean> {
    if (stopped) return false;
    try {
      if (leader) {
        const [row] = await sql<{ held: boolean }[]>`
          select exists (select 1 from pg_locks where locktype = 'advisory' and granted
            and objsubid = 1 and pid = pg_backend_pid() and ((classid::bigint << 32) | objid::bigint) = ${lockKey}::bigint) as held`;
        if (row?.held) return true;
        set(false, 'the lock is not held by this connection any more (connection lost and re-opened)');
      }
      const [row] = await sql<{ ok: boolean }[]>`select pg_try_advisory_lock(${lockKey}::bigint) as ok`;
      set(!!row?.ok, row?.ok ? 'pg_try_advisory_lock succeeded' : 'another replica holds the lock');
    } catch (e) {
      set(false, `database error: ${(e as Error).message}`);
    }
    return leader;
  }

  return {
    check() {
      // one check at a time on the single connection
      checking ??= once().finally(() => (checking = null));
      return checking;
    },
    isLeader: () => leader,
    async stop() {
      stopped = true;
      await checking?.catch(() => undefined);
      if (leader) await sql`select pg_advisory_unlock(${lockKey}::bigint)`.catch(() => undefined);
      leader = false;
      await sql.end({ timeout: 5 });
    },
  };
}
