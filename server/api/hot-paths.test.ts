// Hot paths of a boot storm and a large fleet (issue 15 item 4), counted in statements so they cannot regress:
// every statement drizzle sends is seen through createDb's onQuery. A steady-state heartbeat reads its node (within
// 5 s of the node's last beat not even that: beat-cache.test.ts) and writes nothing (the beat waits in
// server/fleet/beats.ts for one batched statement); /ipxe, registration and a stage-1 call stay within a fixed
// number of statements whatever the fleet size. Counting, not timing: the
// speed is measured by bench/api.ts (make bench-api), never asserted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eq } from 'drizzle-orm';
import { createTestDb } from '../../test/fakes/db.ts';
import { bootToken, client, createTestApp, sampleFacts } from '../../test/fakes/app.ts';
import { createBeatBuffer, type BeatBuffer } from '../fleet/beats.ts';
import { FakeClock } from '../clock.ts';
import { bootAttempts, nodes as nodesTable } from '../db/schema/index.ts';
import type { DbHandle } from '../db/index.ts';

const U1 = '0a000000-0000-4000-8000-000000000001';
const U2 = '0a000000-0000-4000-8000-000000000002';
const writes = (q: string[]) => q.filter((s) => /^\s*(insert|update|delete|with)\b/i.test(s));

describe('hot paths: statements per request', () => {
  let db: DbHandle;
  let log: string[] = [];
  let t: ReturnType<typeof createTestApp>;
  let http: ReturnType<typeof client>;
  let beats: BeatBuffer;
  /** U2's compute credential (second test), for the third */
  let cred2 = '';
  const clock = new FakeClock('2026-06-01T00:00:00Z');
  /** the statements one call sends */
  const count = async <T>(fn: () => Promise<T>): Promise<{ res: T; q: string[] }> => {
    log = [];
    const res = await fn();
    return { res, q: log };
  };

  beforeAll(async () => {
    db = await createTestDb({ onQuery: (s) => log.push(s) });
    t = createTestApp(db, { clock, beats: (nodes) => (beats = createBeatBuffer({ store: nodes, flushSeconds: 2 })) });
    http = client(t.app);
  });
  afterAll(async () => db?.close());

  /** a node through /ipxe, register, profile and installed: its compute credential */
  async function toActive(uuid: string, mac: string) {
    const token = await bootToken(t.app, uuid);
    expect((await http.post('/api/v1/agent/register', { token, body: { facts: sampleFacts(uuid, { macs: [mac] }) } })).json.state).toBe('ready');
    const prof = await http.get(`/api/v1/agent/${uuid}/profile`, { token });
    const cred = /bootfarm\.token=(\S+)/.exec(prof.json.cmdline)![1]!;
    expect((await http.post(`/api/v1/agent/${uuid}/installed`, { token: cred, body: { kernelDigest: 'a'.repeat(64), initrdDigest: 'b'.repeat(64) } })).json.state).toBe('active');
    return { token, cred };
  }

  it('/ipxe, registration and stage-1 calls stay within a fixed number of statements', async () => {
    const ipxe = await count(() => http.get(`/ipxe/${U1}?mac=52:54:00:0a:00:01&serial=S1`));
    expect(ipxe.res.status).toBe(200);
    // a new node: enroll (cap check, node, interface), the attempt, one coalesced event — 13 statements today
    expect(ipxe.q.length).toBeLessThanOrEqual(13);
    const token = /bootfarm\.token=(\S+)/.exec(ipxe.res.text)![1]!;
    const reg = await count(() => http.post('/api/v1/agent/register', { token, body: { facts: sampleFacts(U1, { macs: ['52:54:00:0a:00:01'] }) } }));
    expect(reg.res.json.state).toBe('ready');
    // 17: the facts hash lookup (facts stored only when they change) joined the 16 of the storm work; 18: the
    // cabling plan lookup (issue 16 item 5, one statement for the node's candidate plans)
    expect(reg.q.length).toBeLessThanOrEqual(18);
    // a second stage-1 call right after: the token's expiry is not rewritten (it slid a moment ago)
    const detail = await count(() => http.get(`/api/v1/agent/${U1}/detail`, { token }));
    expect(detail.res.status).toBe(200);
    expect(writes(detail.q)).toEqual([]);
    clock.advance(10_000);
    const later = await count(() => http.get(`/api/v1/agent/${U1}/detail`, { token }));
    expect(writes(later.q)).toHaveLength(1);
    console.log(`statements: /ipxe ${ipxe.q.length}, register ${reg.q.length}, detail ${detail.q.length} (${later.q.length} with the expiry slide)`);
  });

  it('a steady-state heartbeat reads one row and writes nothing; one statement per flush writes them all', async () => {
    const a = await toActive(U2, '52:54:00:0a:00:02');
    cred2 = a.cred;
    const before = (await db.db.select().from(nodesTable).where(eq(nodesTable.uuid, U2)))[0]!.lastHeartbeat!;
    clock.advance(30_000);
    const hb = await count(() => http.post(`/api/v1/agent/${U2}/heartbeat`, { token: a.cred, body: { uptimeSeconds: 30, kernelDigest: 'a'.repeat(64) } }));
    expect(hb.res.json).toEqual({ state: 'active', next: 'continue' });
    expect(hb.q).toHaveLength(1);
    expect(writes(hb.q)).toEqual([]);
    expect(beats.pending()).toBe(1);
    // not yet in the database: this is the documented lag (at most flushSeconds + one flush)
    expect((await db.db.select().from(nodesTable).where(eq(nodesTable.uuid, U2)))[0]!.lastHeartbeat).toEqual(before);
    const beatAt = clock.now();
    const flushed = await count(() => beats.flush());
    expect(flushed.q).toHaveLength(1);
    expect(beats.pending()).toBe(0);
    expect((await db.db.select().from(nodesTable).where(eq(nodesTable.uuid, U2)))[0]!.lastHeartbeat).toEqual(beatAt);
    // a beat that reports another kernel than recorded is written at once (not the steady state)
    const other = await count(() => http.post(`/api/v1/agent/${U2}/heartbeat`, { token: a.cred, body: { kernelDigest: 'c'.repeat(64) } }));
    expect(writes(other.q).length).toBeGreaterThan(0);
    expect(beats.pending()).toBe(0);
  });

  it('a flush never moves a heartbeat backwards, closes attempts guessed open before the beat, and stop() flushes', async () => {
    const at = (await db.db.select().from(nodesTable).where(eq(nodesTable.uuid, U2)))[0]!.lastHeartbeat!;
    await t.nodes.flushBeats([{ uuid: U2, at: new Date(at.getTime() - 60_000) }]);
    expect((await db.db.select().from(nodesTable).where(eq(nodesTable.uuid, U2)))[0]!.lastHeartbeat).toEqual(at);

    // silent for long enough that /ipxe counts the active node as gone and opens a guessed attempt
    clock.advance(10 * 60_000);
    const script = await http.get(`/ipxe/${U2}`);
    expect(script.text).toContain('bootfarm.token=');
    const open = async () => (await db.db.select().from(bootAttempts).where(eq(bootAttempts.nodeUuid, U2))).filter((x) => !x.closedAt);
    expect(await open()).toHaveLength(1);
    const cred = cred2;
    clock.advance(1000);
    expect((await http.post(`/api/v1/agent/${U2}/heartbeat`, { token: cred, body: {} })).json.state).toBe('active');
    // the running boot proved itself: the guessed attempt closes with the flush, here at shutdown
    expect(await open()).toHaveLength(1);
    await beats.stop();
    expect(await open()).toHaveLength(0);
    expect(beats.pending()).toBe(0);
  });

});
