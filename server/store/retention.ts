// Retention (issue 17 item 5): the deletes that keep the tables that grow with time bounded. Each call deletes at
// most `limit` rows of one table in one statement (`DELETE … WHERE key IN (SELECT key … LIMIT n)`), so a run over
// a large backlog is many short statements and never one long lock (server/fleet/retention.ts drives them, each
// in its own transaction under the leader epoch).
//
// What is never deleted, whatever its age (the live system reads it):
//   - events: a node's latest `transition` event (it explains the node's current state; the heartbeat handler
//     reads the transition into `failed` of a failed node, store/fleet.ts lastFailure), and an event still
//     repeating (coalesced: its last_at is recent);
//   - facts: a node's newest `factsKeep` rows (at least one: the latest facts, which registration compares hashes
//     against and firmware compliance is computed from);
//   - DHCP leases: any lease not expired for the whole retention period;
//   - boot attempts: open, unexpired ones, and any attempt a node's credential or a BMC setup names;
//   - webhook deliveries still pending (neither delivered nor given up);
//   - rebuilds and firmware attempts: a running rebuild or open attempt, and each node's latest of either (the
//     fleet controller's backoff and the firmware report read them: store/fleet.ts rebuildRecords, firmware.ts);
//   - data keys: the active key, legacy keys, and any key a sealed value still names (store/keyring.ts
//     purgeRetiredKeys, which also writes an audit row per purged key).
// console_chunks are bounded in bytes per node when written (store/console.ts); here old output of nodes that
// stopped printing goes by age.
import { eq, sql, type SQL } from 'drizzle-orm';
import type { Db } from '../db/index.ts';
import { auditLog, bootAttempts, consoleChunks, dhcpLeases, events, facts, firmwareAttempts, fleetControl, fleetEvents, fleetRebuilds, fleetWebhookDeliveries } from '../db/schema/index.ts';
import { purgeRetiredKeys } from './keyring.ts';

export const RETENTION_TABLES = ['events', 'facts', 'dhcp_leases', 'boot_attempts', 'fleet_webhook_deliveries', 'fleet_rebuilds', 'firmware_attempts', 'fleet_events', 'audit_log', 'data_keys', 'console_chunks'] as const;
export type RetentionTable = (typeof RETENTION_TABLES)[number];

/** Per table: rows older than `before` may go (null: keep this table forever). */
export interface RetentionCutoffs {
  events: Date | null;
  facts: Date | null;
  /** facts rows kept per node whatever their age (≥ 1) */
  factsKeep: number;
  dhcp_leases: Date | null;
  boot_attempts: Date | null;
  fleet_webhook_deliveries: Date | null;
  fleet_rebuilds: Date | null;
  firmware_attempts: Date | null;
  fleet_events: Date | null;
  audit_log: Date | null;
  /** data keys retired before this and named by no sealed value go */
  data_keys: Date | null;
  console_chunks: Date | null;
  /** the run's time: the audit rows of purged data keys carry it */
  now: Date;
}

/** What the last run did (fleet_control.retention_run). */
export interface RetentionRun {
  at: string;
  finishedAt: string;
  durationMs: number;
  epoch: number;
  holder: string;
  pruned: Partial<Record<RetentionTable, number>>;
  /** tables that still had rows past their cutoff when the run's batch budget ran out */
  backlog: RetentionTable[];
  error?: string;
}

const CONTROL_ID = 'fleet';

export function createRetentionStore(db: Db) {
  const ids = async (q: Promise<{ k: unknown }[]>) => (await q).length;

  /** The statement that deletes up to `limit` rows of `table` past its cutoff; null when the table is kept forever. */
  function deleteBatch(table: RetentionTable, c: RetentionCutoffs, limit: number): Promise<number> | null {
    const before = c[table];
    if (!before) return null;
    const at = (d: Date) => sql`${d.toISOString()}::timestamptz`;
    switch (table) {
      case 'events': {
        // keep the node's latest transition (max id: ids grow with time, and lastFailure orders by id too)
        const pick: SQL = sql`select e.id from events e
          where coalesce(e.last_at, e.at) < ${at(before)}
            and not (e.kind = 'transition' and e.id = (select max(t.id) from events t where t.node_uuid = e.node_uuid and t.kind = 'transition'))
          limit ${limit}`;
        return ids(db.delete(events).where(sql`${events.id} in (${pick})`).returning({ k: events.id }));
      }
      case 'facts': {
        // the node's newest factsKeep rows in latestFacts' order (collected_at desc, id desc) stay
        const pick: SQL = sql`select f.id from facts f
          where f.collected_at < ${at(before)}
            and f.id not in (select g.id from facts g where g.node_uuid = f.node_uuid order by g.collected_at desc, g.id desc limit ${Math.max(1, c.factsKeep)})
          limit ${limit}`;
        return ids(db.delete(facts).where(sql`${facts.id} in (${pick})`).returning({ k: facts.id }));
      }
      case 'dhcp_leases': {
        const pick: SQL = sql`select l.ip from dhcp_leases l where l.expires_at < ${at(before)} and l.updated_at < ${at(before)} limit ${limit}`;
        return ids(db.delete(dhcpLeases).where(sql`${dhcpLeases.ip} in (${pick})`).returning({ k: dhcpLeases.ip }));
      }
      case 'boot_attempts': {
        const pick: SQL = sql`select a.id from boot_attempts a
          where (a.closed_at < ${at(before)} or (a.closed_at is null and a.expires_at < ${at(before)}))
            and not exists (select 1 from nodes n where n.credential_attempt_id = a.id)
            and not exists (select 1 from bmc_setups s where s.delivered_attempt_id = a.id)
          limit ${limit}`;
        return ids(db.delete(bootAttempts).where(sql`${bootAttempts.id} in (${pick})`).returning({ k: bootAttempts.id }));
      }
      case 'fleet_webhook_deliveries': {
        const pick: SQL = sql`select w.id from fleet_webhook_deliveries w where coalesce(w.delivered_at, w.gave_up_at) < ${at(before)} limit ${limit}`;
        return ids(db.delete(fleetWebhookDeliveries).where(sql`${fleetWebhookDeliveries.id} in (${pick})`).returning({ k: fleetWebhookDeliveries.id }));
      }
      case 'fleet_rebuilds': {
        const pick: SQL = sql`select r.id from fleet_rebuilds r
          where r.outcome <> 'running' and coalesce(r.finished_at, r.started_at) < ${at(before)}
            and r.id <> (select max(x.id) from fleet_rebuilds x where x.node_uuid = r.node_uuid)
          limit ${limit}`;
        return ids(db.delete(fleetRebuilds).where(sql`${fleetRebuilds.id} in (${pick})`).returning({ k: fleetRebuilds.id }));
      }
      case 'firmware_attempts': {
        const pick: SQL = sql`select a.id from firmware_attempts a
          where a.outcome <> 'open' and coalesce(a.closed_at, a.reported_at, a.created_at) < ${at(before)}
            and a.id <> (select max(x.id) from firmware_attempts x where x.node_uuid = a.node_uuid)
          limit ${limit}`;
        return ids(db.delete(firmwareAttempts).where(sql`${firmwareAttempts.id} in (${pick})`).returning({ k: firmwareAttempts.id }));
      }
      case 'fleet_events': {
        const pick: SQL = sql`select x.id from fleet_events x where x.at < ${at(before)} limit ${limit}`;
        return ids(db.delete(fleetEvents).where(sql`${fleetEvents.id} in (${pick})`).returning({ k: fleetEvents.id }));
      }
      case 'audit_log': {
        const pick: SQL = sql`select x.id from audit_log x where x.at < ${at(before)} limit ${limit}`;
        return ids(db.delete(auditLog).where(sql`${auditLog.id} in (${pick})`).returning({ k: auditLog.id }));
      }
      case 'data_keys':
        return purgeRetiredKeys(db, { retiredBefore: before, limit, at: c.now });
      case 'console_chunks': {
        const pick: SQL = sql`select x.id from console_chunks x where x.at < ${at(before)} limit ${limit}`;
        return ids(db.delete(consoleChunks).where(sql`${consoleChunks.id} in (${pick})`).returning({ k: consoleChunks.id }));
      }
    }
  }

  return {
    /** Deletes up to `limit` rows of `table` older than its cutoff (one statement); the number deleted. */
    async pruneBatch(table: RetentionTable, cutoffs: RetentionCutoffs, limit: number): Promise<number> {
      return (await deleteBatch(table, cutoffs, limit)) ?? 0;
    },
    async lastRun(): Promise<RetentionRun | null> {
      const [row] = await db.select({ run: fleetControl.retentionRun }).from(fleetControl).where(eq(fleetControl.id, CONTROL_ID));
      return (row?.run as RetentionRun | null | undefined) ?? null;
    },
    async recordRun(run: RetentionRun): Promise<void> {
      await db.insert(fleetControl).values({ id: CONTROL_ID, retentionRun: run as unknown as Record<string, unknown> }).onConflictDoUpdate({ target: fleetControl.id, set: { retentionRun: run as unknown as Record<string, unknown> } });
    },
  };
}

export type RetentionStore = ReturnType<typeof createRetentionStore>;
