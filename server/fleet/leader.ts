// Leader election and the leader epoch (docs/ha.md "Leadership and fencing"): the fleet controllers run on one
// replica only, and a replica that lost leadership without knowing it yet can write nothing.
//
// PostgreSQL: a session-level advisory lock, pg_try_advisory_lock(key), held by one dedicated session
// (db/index.ts openSession; closing the session releases the lock). On taking the lock the replica increments
// fleet_control.leader_epoch on that same session, only while the session holds the lock (store/fence.ts
// takeEpoch), and keeps the number: its fence. Every controller write checks the fence in its own transaction.
//
// How a dead or silent leader loses the lock, bounded (checkSeconds = c, default 5 s):
//   - the process dies: the kernel closes the socket, the server ends the session at once;
//   - the process is paused (SIGSTOP) or its event loop stalls: the session is idle, and the server ends it after
//     idle_session_timeout = 3c (a live replica checks every c);
//   - the network is cut: the server's TCP keepalives (tcp_keepalives_idle/interval/count = c, 1, 3) and
//     tcp_user_timeout (3c) end the session. On this side a check that does not answer within c counts as a loss:
//     the replica stops leading at once and drops the socket (postgres.js reconnects on the next check).
// statement_timeout and idle_in_transaction_session_timeout bound everything else on the session. The session's
// statements carry no bind parameters (store/fence.ts "lockSql"): none is ever half-sent, which would leave the
// backend "active" and out of reach of every one of those timeouts while a paused leader keeps the lock.
// The old leader's own writes take the epoch row FOR SHARE: a transaction of a paused old leader that holds it
// past the new holder's lock_timeout is ended by the new holder (fence.ts endStaleWriters) before it takes the epoch.
//
// A leader proves on every check that its *current* backend holds the lock (postgres.js reconnects silently, so a
// flag is not enough) and that the epoch is still its own; otherwise it steps down and tries again like a follower.
// A paused leader that wakes up finds either a dead session or a newer epoch: its writes are refused (FencedError).
//
// PGlite is embedded in one process: that process leads (it still takes an epoch, so fencing is the same code).
import type { Logger } from 'pino';
import { openSession, pgErrorCode, type Db } from '../db/index.ts';
import { createFenceStore, type Fence, type FenceStore } from '../store/fence.ts';
import { systemClock, type Clock } from '../clock.ts';

export interface LeaderElector {
  /** updates leadership (take / verify the lock and the epoch) and returns it */
  check(): Promise<boolean>;
  isLeader(): boolean;
  /** the epoch this replica took, while it leads */
  fence(): Fence | null;
  /** stop leading now (a write was fenced): the next check starts over */
  stepDown(why: string): void;
  /** releases the lock and closes the dedicated connection */
  stop(): Promise<void>;
}

/** Server settings of the lock session, derived from the check interval (seconds). */
export function lockSessionSettings(checkSeconds: number): Record<string, string> {
  const c = Math.max(1, Math.round(checkSeconds));
  const ms = (s: number) => String(Math.round(s * 1000));
  return {
    application_name: 'bootfarm-leader',
    statement_timeout: ms(c),
    // below the check's own bound (c): a wait for the epoch row ends with PostgreSQL's 55P03, not our timeout
    lock_timeout: ms(c / 2),
    idle_in_transaction_session_timeout: ms(c),
    // a replica checks every c seconds: a session idle for 3c belongs to a paused or stalled process
    idle_session_timeout: ms(3 * c),
    tcp_keepalives_idle: String(c),
    tcp_keepalives_interval: '1',
    tcp_keepalives_count: '3',
    tcp_user_timeout: ms(3 * c),
  };
}

/** Embedded database (PGlite): this process leads; it takes an epoch once (again if something else took one). */
export function localLeader({ db, holder, clock = systemClock }: { db: Db; holder: string; clock?: Clock }): LeaderElector {
  const fences = createFenceStore(db);
  let fence: Fence | null = null;
  return {
    async check() {
      const cur = await fences.current();
      if (!fence || cur.epoch !== fence.epoch || cur.holder !== holder) fence = { epoch: (await fences.takeEpoch(holder, clock.now()))!, holder };
      return true;
    },
    isLeader: () => fence !== null,
    fence: () => fence,
    stepDown: () => (fence = null),
    stop: async () => {
      fence = null;
    },
  };
}

export interface PgLeaderOptions {
  url: string;
  lockKey: number;
  /** this replica's id: the epoch's holder */
  holder: string;
  checkSeconds?: number;
  clock?: Clock;
  logger?: Pick<Logger, 'info' | 'warn'>;
  onChange?: (leader: boolean, fence: Fence | null) => void;
}

export async function createPgLeaderElector({ url, lockKey, holder, checkSeconds = 5, clock = systemClock, logger, onChange }: PgLeaderOptions): Promise<LeaderElector> {
  const settings = lockSessionSettings(checkSeconds);
  const open = () => openSession(url, { settings, keepAliveSeconds: Math.max(1, Math.round(checkSeconds)), connectTimeoutSeconds: Math.max(2, Math.round(checkSeconds)) });
  let session = await open();
  let fences: FenceStore = createFenceStore(session.db);
  let fence: Fence | null = null;
  let stopped = false;
  let checking: Promise<boolean> | null = null;
  let lastError = '';
  const set = (next: Fence | null, why: string) => {
    if (next?.epoch === fence?.epoch) return;
    const was = fence;
    fence = next;
    logger?.[next ? 'info' : 'warn']({ lockKey, epoch: next?.epoch ?? was?.epoch, why }, next ? 'fleet leadership acquired' : 'fleet leadership lost');
    onChange?.(!!next, next);
  };
  /** a session that does not answer within the check interval is dropped (the next check reconnects) */
  const timeoutMs = Math.max(1000, checkSeconds * 1000);
  async function bounded<T>(p: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the lock session did not answer within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      return await Promise.race([p, late]);
    } finally {
      clearTimeout(timer);
    }
  }
  async function reopen() {
    const old = session;
    session = await open();
    fences = createFenceStore(session.db);
    void old.destroy().catch(() => undefined);
  }

  /** the epoch increment; when the old leader's open transaction holds the epoch row, its session is ended first */
  async function takeEpoch(): Promise<number | null> {
    try {
      return await bounded(fences.takeEpoch(holder, clock.now(), { lockKey }));
    } catch (e) {
      if (pgErrorCode(e) !== '55P03') throw e;
      const ended = await bounded(fences.endStaleWriters());
      logger?.warn({ lockKey, ended }, "the epoch row was held by a transaction of the old leader: ended its session, taking the epoch again");
      return await bounded(fences.takeEpoch(holder, clock.now(), { lockKey }));
    }
  }

  async function once(): Promise<boolean> {
    if (stopped) return false;
    const previousError = lastError;
    lastError = '';
    try {
      if (fence) {
        const v = await bounded(fences.verify(lockKey, fence));
        if (v.held && v.current) return true;
        set(null, v.held ? 'the leader epoch moved on' : 'the lock is not held by this session any more (connection lost and re-opened)');
        if (v.held) {
          // still our lock (an earlier epoch increment failed part-way): take a new epoch
          const epoch = await takeEpoch();
          if (epoch !== null) set({ epoch, holder }, 'new epoch on the lock this session holds');
          return !!fence;
        }
      }
      if (!(await bounded(fences.tryLock(lockKey)))) {
        set(null, 'another replica holds the lock');
        return false;
      }
      const epoch = await takeEpoch();
      set(epoch === null ? null : { epoch, holder }, epoch === null ? 'lost the lock before taking an epoch' : 'pg_try_advisory_lock succeeded; epoch taken');
    } catch (e) {
      // a follower's failing checks must be visible too (set() logs only a change of leadership); once per new message
      const message = (e as Error).message;
      if (message !== previousError) logger?.warn({ lockKey, err: message }, 'fleet leader lock check failed');
      lastError = message;
      set(null, `lock session error: ${message}`);
      // a session that timed out may be stuck on a dead socket: start a fresh one (the old one's lock, if the
      // server still has it, goes with the server-side timeouts)
      if (/did not answer/.test((e as Error).message)) await reopen().catch(() => undefined);
    }
    return !!fence;
  }

  return {
    check() {
      // one check at a time on the single connection
      checking ??= once().finally(() => (checking = null));
      return checking;
    },
    isLeader: () => !!fence,
    fence: () => fence,
    stepDown(why: string) {
      set(null, why);
    },
    async stop() {
      stopped = true;
      await checking?.catch(() => undefined);
      const held = fence;
      fence = null;
      if (held) await fences.unlock(lockKey).catch(() => undefined);
      await session.end().catch(() => undefined);
    },
  };
}
