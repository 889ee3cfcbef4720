// The retention fixture (server/fleet/retention.test.ts, server/store/retention.pg.test.ts): for each table the
// retention job prunes, rows past their period and rows that must stay, relative to NOW (T0 + 200 days). With
// eventsDays 90, factsDays 90 + factsKeep 3, leasesDays 7, bootAttemptsDays 30, webhooksDays 30, repairsDays 90, auditDays 365 a
// run prunes RETENTION_FIXTURE.pruned. It holds no data keys (a real keyring needs them to unwrap): the data key
// purge has its own scenario, test/fakes/keyring.ts.
import { sql } from 'drizzle-orm';
import type { Db } from '../../server/db/index.ts';
import { auditLog, bootAttempts, consoleChunks, dhcpLeases, events, facts, firmwareAttempts, fleetEvents, fleetRebuilds, fleetWebhookDeliveries, nodes } from '../../server/db/schema/index.ts';

export const DAY = 86_400_000;
export const T0 = new Date('2026-01-01T00:00:00Z');
export const NOW = new Date(T0.getTime() + 200 * DAY);
export const A = 'e7000000-0000-4000-8000-00000000000a';
export const B = 'e7000000-0000-4000-8000-00000000000b';
export const C = 'e7000000-0000-4000-8000-00000000000c';
export const at = (days: number, minutes = 0) => new Date(T0.getTime() + days * DAY + minutes * 60_000);

export const RETENTION_FIXTURE = {
  DAY,
  T0,
  NOW,
  A,
  B,
  C,
  /** the retention settings the counts below are for */
  settings: { eventsDays: 90, factsDays: 90, factsKeep: 3, leasesDays: 7, bootAttemptsDays: 30, webhooksDays: 30, repairsDays: 90, auditDays: 365, consoleDays: 30 },
  /** rows per table before a run */
  rows: { events: 18, facts: 21 },
  /** what one run at NOW prunes with the settings above */
  pruned: { events: 12, facts: 14, dhcp_leases: 2, boot_attempts: 2, fleet_webhook_deliveries: 2, fleet_rebuilds: 2, firmware_attempts: 2, fleet_events: 1, audit_log: 1, data_keys: 0, console_chunks: 1 },
};

/** The fixture: for each table, rows past their period and rows that must stay. */
export async function seedRetention(db: Db): Promise<void> {
  await db.execute(sql`truncate nodes, events, facts, dhcp_leases, audit_log, fleet_events, fleet_webhook_deliveries, fleet_rebuilds, firmware_attempts, boot_attempts, console_chunks, fleet_control cascade`);
  await db.insert(nodes).values([A, B, C].map((uuid) => ({ uuid, state: 'active', stateSince: at(0), createdAt: at(0), updatedAt: at(0) })));
  // events: A has 10 old phase events, its only (old) transition, 3 recent ones, and an old event still repeating
  await db.insert(events).values([
    { nodeUuid: A, at: at(0), kind: 'transition', fromState: null, toState: 'discovered', actor: 't' },
    ...Array.from({ length: 10 }, (_, i) => ({ nodeUuid: A, at: at(1, i), kind: 'phase', actor: 't', reason: `old ${i}` })),
    { nodeUuid: A, at: at(2), kind: 'phase', actor: 't', reason: 'polling', count: 500, lastAt: at(199) },
    ...Array.from({ length: 3 }, (_, i) => ({ nodeUuid: A, at: at(195, i), kind: 'phase', actor: 't', reason: `recent ${i}` })),
    // B: two old transitions (into failed last): the older one goes, the one that explains its state stays
    { nodeUuid: B, at: at(3), kind: 'transition', fromState: 'discovered', toState: 'active', actor: 't' },
    { nodeUuid: B, at: at(4), kind: 'transition', fromState: 'active', toState: 'failed', actor: 'fleet', data: { cause: 'heartbeat' } },
    { nodeUuid: B, at: at(5), kind: 'bmc', actor: 'fleet', reason: 'old bmc error' },
  ]);
  // facts (keep 3 per node): A 15 old rows; B one old row (its latest); C 3 old + 2 recent
  await db.insert(facts).values([
    ...Array.from({ length: 15 }, (_, i) => ({ nodeUuid: A, collectedAt: at(1, i), facts: { i } })),
    { nodeUuid: B, collectedAt: at(1), facts: { only: true } },
    ...Array.from({ length: 3 }, (_, i) => ({ nodeUuid: C, collectedAt: at(1, i), facts: { old: i } })),
    ...Array.from({ length: 2 }, (_, i) => ({ nodeUuid: C, collectedAt: at(190, i), facts: { recent: i } })),
  ]);
  await db.insert(dhcpLeases).values([
    { ip: '10.0.0.1', mac: '52:54:00:00:00:01', state: 'bound', expiresAt: at(10), pool: 'p', updatedAt: at(9) },
    { ip: '10.0.0.2', mac: '52:54:00:00:00:02', state: 'released', expiresAt: at(20), pool: 'p', updatedAt: at(20) },
    { ip: '10.0.0.3', mac: '52:54:00:00:00:03', state: 'bound', expiresAt: at(201), pool: 'p', updatedAt: at(200) },
    { ip: '10.0.0.4', mac: '52:54:00:00:00:04', state: 'bound', expiresAt: at(198), pool: 'p', updatedAt: at(197) },
  ]);
  await db.insert(auditLog).values([
    { at: new Date(NOW.getTime() - 400 * DAY), actor: 'api:admin', action: 'token.create' },
    { at: new Date(NOW.getTime() - 300 * DAY), actor: 'api:admin', action: 'token.revoke' },
  ]);
  await db.insert(fleetEvents).values([
    { at: new Date(NOW.getTime() - 400 * DAY), kind: 'leader', reason: 'old', actor: 'fleet' },
    { at: at(100), kind: 'gap', reason: 'recent', actor: 'fleet' },
  ]);
  const attempts = await db
    .insert(bootAttempts)
    .values([
      { nodeUuid: A, tokenHash: 'h1', reason: 'expected', openedAt: at(1), expiresAt: at(1), closedAt: at(1), closeReason: 'installed' },
      { nodeUuid: A, tokenHash: 'h2', reason: 'expected', openedAt: at(2), expiresAt: at(2) },
      { nodeUuid: B, tokenHash: 'h3', reason: 'expected', openedAt: at(3), expiresAt: at(3), closedAt: at(3) },
      { nodeUuid: C, tokenHash: 'h4', reason: 'expected', openedAt: at(199), expiresAt: at(201) },
    ])
    .returning({ id: bootAttempts.id });
  // B's running boot holds the credential its (old, closed) attempt was handed
  await db.execute(sql`update nodes set credential_attempt_id = ${attempts[2]!.id} where uuid = ${B}`);
  // rebuilds: A's two older finished ones go (its latest stays); B's running one and C's only one stay
  await db.insert(fleetRebuilds).values([
    ...[1, 2, 3].map((d) => ({ nodeUuid: A, attempt: d, failedAt: at(d), startedAt: at(d), finishedAt: at(d, 30), outcome: 'failed', reason: `old ${d}` })),
    { nodeUuid: B, attempt: 1, failedAt: at(1), startedAt: at(1), outcome: 'running' },
    { nodeUuid: C, attempt: 1, failedAt: at(1), startedAt: at(1), finishedAt: at(1, 30), outcome: 'succeeded' },
  ]);
  // firmware attempts: A's two closed ones go (its latest is open); B's only one (closed) stays
  await db.insert(firmwareAttempts).values([
    { nodeUuid: A, number: 1, baselineName: 'b', baselineVersion: 1, steps: [], createdAt: at(1), outcome: 'gave-up', closedAt: at(1, 30) },
    { nodeUuid: A, number: 1, baselineName: 'b', baselineVersion: 1, steps: [], createdAt: at(2), outcome: 'compliant', closedAt: at(2, 30) },
    { nodeUuid: A, number: 1, baselineName: 'b', baselineVersion: 2, steps: [], createdAt: at(3) },
    { nodeUuid: B, number: 1, baselineName: 'b', baselineVersion: 1, steps: [], createdAt: at(1), outcome: 'compliant', closedAt: at(1, 30) },
  ]);
  // console output: A's old boot goes, its recent one stays
  await db.insert(consoleChunks).values([
    { nodeUuid: A, bootAt: at(1), at: at(1), bytes: 4, data: 'old\n' },
    { nodeUuid: A, bootAt: at(199), at: at(199), bytes: 4, data: 'new\n' },
  ]);
  await db.insert(fleetWebhookDeliveries).values([
    { event: 'failed', url: 'http://x', body: '{}', nextAttemptAt: at(1), deliveredAt: at(1), createdAt: at(1) },
    { event: 'failed', url: 'http://x', body: '{}', nextAttemptAt: at(1), gaveUpAt: at(2), createdAt: at(1) },
    { event: 'failed', url: 'http://x', body: '{}', nextAttemptAt: at(1), createdAt: at(1) },
  ]);
}

