// The retention job (issue 17 item 5) on PGlite with a FakeClock: rows past their period go, recent rows and what
// the live system still reads stay (a node's latest facts and latest transition, an unexpired lease, an attempt a
// credential names, a pending webhook); every DELETE statement removes at most batchSize rows (counted by a
// statement-level trigger in the database, not by the job); a run stops at maxBatchesPerRun and reports the
// backlog; only the leader prunes (a stale epoch deletes nothing, a follower's tick runs no task); the run is
// recorded for every replica (GET /api/v1/retention) and counted in Prometheus metrics.
import { count, sql } from 'drizzle-orm';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../clock.ts';
import { RetentionConfig } from '../config.ts';
import type { DbHandle } from '../db/index.ts';
import { auditLog, bootAttempts, dhcpLeases, events, facts, firmwareAttempts, fleetEvents, fleetRebuilds, fleetWebhookDeliveries } from '../db/schema/index.ts';
import { silentLogger } from '../log.ts';
import { createSecrets } from '../secrets.ts';
import { createBmcStore } from '../store/bmcs.ts';
import { createFenceStore, FencedError } from '../store/fence.ts';
import { createNodeStore } from '../store/nodes.ts';
import { createTestDb } from '../../test/fakes/db.ts';
import { client, TEST_KEY, TOKENS } from '../../test/fakes/app.ts';
import { createFullApp } from '../../test/security/full-app.ts';
import { retentionMount } from '../api/retention.ts';
import { createFleet } from './controller.ts';
import type { LeaderElector } from './leader.ts';
import { createRetention } from './retention.ts';
import { RETENTION_FIXTURE, seedRetention } from '../../test/fakes/retention.ts';

const rowsOf = <T>(r: unknown): T[] => (Array.isArray(r) ? r : ((r as { rows?: T[] }).rows ?? []));

const { NOW, A, B, C } = RETENTION_FIXTURE;
let db: DbHandle;
let clock: FakeClock;

const config = (o: Partial<RetentionConfig> = {}) => RetentionConfig.parse({ ...RETENTION_FIXTURE.settings, batchSize: 4, ...o });
const n = async (table: typeof events | typeof facts | typeof auditLog | typeof fleetEvents | typeof bootAttempts | typeof fleetWebhookDeliveries | typeof dhcpLeases) => (await db.db.select({ n: count() }).from(table))[0]!.n;

/** Rows each DELETE statement on `table` removed, as the database saw it (statement-level trigger). */
async function countStatements(tables: string[]): Promise<void> {
  await db.db.execute(sql.raw(`create table if not exists retention_stmt_log (tbl text, n int)`));
  await db.db.execute(sql.raw(`create or replace function retention_stmt_count() returns trigger language plpgsql as $$ begin insert into retention_stmt_log select TG_TABLE_NAME, count(*) from gone; return null; end $$`));
  for (const t of tables) await db.db.execute(sql.raw(`create or replace trigger retention_stmt_${t} after delete on ${t} referencing old table as gone for each statement execute function retention_stmt_count()`));
}
const statements = async (table: string) => rowsOf<{ n: number }>(await db.db.execute(sql`select n from retention_stmt_log where tbl = ${table}`)).map((r) => Number(r.n));

beforeAll(async () => {
  db = await createTestDb();
  clock = new FakeClock(NOW);
  await countStatements(['events', 'facts']);
}, 120_000);
afterAll(async () => {
  await db?.close();
});
beforeEach(async () => {
  clock.set(NOW);
  await seedRetention(db.db);
  await db.db.execute(sql`delete from retention_stmt_log`);
});

async function leaderFence() {
  const fences = createFenceStore(db.db);
  return { epoch: (await fences.takeEpoch('test-leader', clock.now()))!, holder: 'test-leader' };
}

describe('a retention run', () => {
  it('deletes what is past its period and keeps recent rows and what the live system reads', async () => {
    const registry = new Registry();
    const r = createRetention({ db: db.db, config: config(), clock, metrics: registry });
    const run = await r.run(clock.now(), await leaderFence());
    expect(run!.pruned).toEqual(RETENTION_FIXTURE.pruned);
    expect(run!.backlog).toEqual([]);

    const ev = await db.db.select({ uuid: events.nodeUuid, kind: events.kind, reason: events.reason, toState: events.toState }).from(events).orderBy(events.id);
    expect(ev).toEqual([
      { uuid: A, kind: 'transition', reason: null, toState: 'discovered' },
      { uuid: A, kind: 'phase', reason: 'polling', toState: null },
      ...[0, 1, 2].map((i) => ({ uuid: A, kind: 'phase', reason: `recent ${i}`, toState: null })),
      { uuid: B, kind: 'transition', reason: null, toState: 'failed' },
    ]);
    // every node keeps its latest facts (the one latestFacts answers) and the newest factsKeep rows
    const nodesStore = createNodeStore(db.db, { clock });
    expect((await nodesStore.latestFacts(A))!.facts).toEqual({ i: 14 });
    expect((await nodesStore.latestFacts(B))!.facts).toEqual({ only: true });
    const kept = await db.db.select({ uuid: facts.nodeUuid, f: facts.facts }).from(facts).orderBy(facts.id);
    expect(kept).toEqual([...[12, 13, 14].map((i) => ({ uuid: A, f: { i } })), { uuid: B, f: { only: true } }, { uuid: C, f: { old: 2 } }, { uuid: C, f: { recent: 0 } }, { uuid: C, f: { recent: 1 } }]);
    // the unexpired lease and the one expired 2 days ago stay
    expect((await db.db.select({ ip: dhcpLeases.ip }).from(dhcpLeases).orderBy(dhcpLeases.ip)).map((l) => l.ip)).toEqual(['10.0.0.3', '10.0.0.4']);
    expect((await db.db.select({ a: auditLog.action }).from(auditLog)).map((x) => x.a)).toEqual(['token.revoke']);
    expect((await db.db.select({ r: fleetEvents.reason }).from(fleetEvents)).map((x) => x.r)).toEqual(['recent']);
    // B's credential names its closed attempt; C's attempt is open
    expect((await db.db.select({ h: bootAttempts.tokenHash }).from(bootAttempts).orderBy(bootAttempts.tokenHash)).map((x) => x.h)).toEqual(['h3', 'h4']);
    expect((await db.db.select({ d: fleetWebhookDeliveries.deliveredAt, g: fleetWebhookDeliveries.gaveUpAt }).from(fleetWebhookDeliveries))).toEqual([{ d: null, g: null }]);

    // A keeps its latest (finished) rebuild; B its running one; C its only one. Firmware: A's open attempt, B's only one
    expect((await db.db.select({ uuid: fleetRebuilds.nodeUuid, outcome: fleetRebuilds.outcome, reason: fleetRebuilds.reason }).from(fleetRebuilds).orderBy(fleetRebuilds.id))).toEqual([
      { uuid: A, outcome: 'failed', reason: 'old 3' },
      { uuid: B, outcome: 'running', reason: null },
      { uuid: C, outcome: 'succeeded', reason: null },
    ]);
    expect((await db.db.select({ uuid: firmwareAttempts.nodeUuid, outcome: firmwareAttempts.outcome }).from(firmwareAttempts).orderBy(firmwareAttempts.id))).toEqual([{ uuid: A, outcome: 'open' }, { uuid: B, outcome: 'compliant' }]);

    // metrics: rows per table, and the run's time
    const text = await registry.metrics();
    expect(text).toMatch(/bootfarm_retention_pruned_total\{table="events"\} 12\n/);
    expect(text).toMatch(/bootfarm_retention_pruned_total\{table="facts"\} 14\n/);
    expect(text).toMatch(new RegExp(`bootfarm_retention_last_run_timestamp_seconds ${NOW.getTime() / 1000}\\n`));
    expect(text).toMatch(/bootfarm_retention_backlog\{table="events"\} 0\n/);

    // a second run right away finds nothing due; once the interval has passed, it runs and finds nothing to prune
    expect(await r.run(clock.now(), (await createFenceStore(db.db).current()) as never)).toBeNull();
    clock.advance(3600_000);
    const again = await r.run(clock.now(), { epoch: (await createFenceStore(db.db).current()).epoch, holder: 'test-leader' });
    expect(Object.values(again!.pruned).every((x) => x === 0)).toBe(true);
  });

  it('deletes in statements of at most batchSize rows, and stops at maxBatchesPerRun with the backlog named', async () => {
    const r = createRetention({ db: db.db, config: config({ batchSize: 3, maxBatchesPerRun: 2 }), clock });
    const fence = await leaderFence();
    const first = await r.run(clock.now(), fence);
    // 2 batches × 3 rows per table this run
    expect(first!.pruned.events).toBe(6);
    expect(first!.pruned.facts).toBe(6);
    expect(first!.backlog).toEqual(expect.arrayContaining(['events', 'facts']));
    expect(await statements('events')).toEqual([3, 3]);
    clock.advance(3600_000);
    const second = await r.run(clock.now(), fence);
    expect(second!.pruned.events).toBe(6);
    expect(second!.pruned.facts).toBe(6);
    clock.advance(3600_000);
    const third = await r.run(clock.now(), fence);
    expect(third!.pruned.events).toBe(0);
    expect(third!.pruned.facts).toBe(2);
    expect(third!.backlog).toEqual([]);
    const ev = await statements('events');
    const fa = await statements('facts');
    expect(Math.max(...ev, ...fa)).toBeLessThanOrEqual(3);
    expect(ev.reduce((a, b) => a + b, 0)).toBe(12);
    expect(fa.reduce((a, b) => a + b, 0)).toBe(14);
  });

  it('0 days keeps a table forever', async () => {
    const r = createRetention({ db: db.db, config: config({ eventsDays: 0, auditDays: 0 }), clock });
    const run = await r.run(clock.now(), await leaderFence());
    expect(run!.pruned).toMatchObject({ events: 0, audit_log: 0, fleet_events: 0, facts: 14 });
    expect(await n(events)).toBe(18);
    expect(await statements('events')).toEqual([]);
  });
});

describe('only the leader prunes', () => {
  it('a stale epoch deletes nothing (FencedError)', async () => {
    const stale = await leaderFence();
    await leaderFence(); // another replica took a newer epoch
    const r = createRetention({ db: db.db, config: config(), clock });
    const before = { events: await n(events), facts: await n(facts), audit: await n(auditLog) };
    await expect(r.run(clock.now(), stale)).rejects.toBeInstanceOf(FencedError);
    expect({ events: await n(events), facts: await n(facts), audit: await n(auditLog) }).toEqual(before);
  });

  it("a follower's fleet tick runs no leader task; the leader's tick prunes", async () => {
    const r = createRetention({ db: db.db, config: config(), clock });
    const follower: LeaderElector = { check: async () => false, isLeader: () => false, fence: () => null, stepDown: () => undefined, stop: async () => undefined };
    const deps = { db, store: createNodeStore(db.db, { clock }), bmcStore: createBmcStore(db.db, createSecrets(TEST_KEY), { clock }), clock, logger: silentLogger(), leaderTasks: [r.task] };
    const asFollower = createFleet({ ...deps, leader: follower, instanceId: 'follower' });
    expect((await asFollower.tick()).leader).toBe(false);
    expect(await n(events)).toBe(18);
    expect(await n(auditLog)).toBe(2);
    // PGlite: this process leads (localLeader takes an epoch)
    const asLeader = createFleet({ ...deps, instanceId: 'leader' });
    const tick = await asLeader.tick();
    expect(tick.leader).toBe(true);
    expect(tick.errors).toEqual([]);
    expect(await n(events)).toBe(6);
    expect(await n(auditLog)).toBe(1);
    const status = await r.status();
    expect(status.lastRun).toMatchObject({ at: NOW.toISOString(), epoch: tick.epoch, holder: 'leader', pruned: { events: 12 } });
    await asFollower.stop();
    await asLeader.stop();
  });
});

describe('GET /api/v1/retention', () => {
  it('shows the settings and the last run to an admin only', async () => {
    const r = createRetention({ db: db.db, config: config(), clock });
    await r.run(clock.now(), await leaderFence());
    const full = await createFullApp(db, { clock, extra: [retentionMount({ retention: r })] });
    try {
      const http = client(full.app);
      expect((await http.get('/api/v1/retention', { token: TOKENS.operator })).status).toBe(403);
      const res = await http.get('/api/v1/retention', { token: TOKENS.admin });
      expect(res.status).toBe(200);
      expect(res.json).toMatchObject({ settings: { eventsDays: 90, factsKeep: 3, batchSize: 4, intervalSeconds: 3600 }, lastRun: { at: NOW.toISOString(), pruned: { events: 12, facts: 14 }, backlog: [] }, nextDueAt: new Date(NOW.getTime() + 3600_000).toISOString() });
      // bootfarm retention
      const { runRetention } = await import('../cli/retention.ts');
      const { apiClient } = await import('../cli.ts');
      const lines: string[] = [];
      await runRetention([], { api: apiClient('http://bootfarm', TOKENS.admin, (async (u: string | URL | Request, init?: RequestInit) => full.app.request(String(u).replace('http://bootfarm', ''), init)) as typeof fetch), out: (l) => lines.push(l) });
      expect(lines).toEqual([
        'kept: events 90 d, facts 90 d (newest 3 per node always), leases 7 d, boot attempts 30 d, webhooks 30 d, rebuilds and firmware attempts 90 d, audit and fleet history 365 d, retired data keys 7 d, console output 30 d',
        'runs every 3600 s on the leader, 4 rows per statement, at most 100 statements per table per run',
        `last run: ${NOW.toISOString()} by test-leader (epoch ${res.json.lastRun.epoch}), 0 ms: events 12, facts 14, dhcp_leases 2, boot_attempts 2, fleet_webhook_deliveries 2, fleet_rebuilds 2, firmware_attempts 2, fleet_events 1, audit_log 1, data_keys 0, console_chunks 1`,
        `next run due: ${new Date(NOW.getTime() + 3600_000).toISOString()}`,
      ]);
    } finally {
      await full.close();
    }
  });
});
