// A fleet leader task (controller.ts leaderTasks): once per tick, end the PostgreSQL sessions of a stalled client
// that hold locks other sessions wait for (store/stalled-sessions.ts says which and why). Nothing to do on PGlite
// (one process, one connection). The pids, peers and statements ended are logged and counted.
import { Counter, type Registry } from 'prom-client';
import type { DbHandle } from '../db/index.ts';
import type { Logger } from '../log.ts';
import { endStalledLockHolders, type EndedSession } from '../store/stalled-sessions.ts';

/** Longer than any statement's pause between its two round trips on a healthy replica, shorter than lock_timeout × 3. */
export const STALLED_SESSION_SECONDS = 20;

export function createStalledSessionReaper({ db, metrics: registry, logger, stalledSeconds = STALLED_SESSION_SECONDS }: { db: DbHandle; metrics?: Registry; logger?: Pick<Logger, 'warn'>; stalledSeconds?: number }) {
  const ended = new Counter({ name: 'bootfarm_db_stalled_sessions_ended_total', help: 'PostgreSQL sessions ended by the fleet leader: waiting for their client in a transaction while blocking other sessions', registers: registry ? [registry] : [] });
  async function run(): Promise<EndedSession[]> {
    if (db.kind !== 'postgres') return [];
    const done = await endStalledLockHolders(db.db, { stalledSeconds });
    if (done.length) {
      ended.inc(done.length);
      logger?.warn({ sessions: done }, `ended ${done.length} PostgreSQL session(s) stalled in a transaction while blocking others (a paused or cut-off client)`);
    }
    return done;
  }
  return { run, task: { name: 'stalled-sessions', run: () => run() } };
}
