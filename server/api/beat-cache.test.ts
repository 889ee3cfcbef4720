// Heartbeats answered from a cached node row (server/api/beat-cache.ts): the statements they save, and the bounds
// that keep it safe. A credential rotated or a node changed by this replica bites at the next beat; a change this
// replica did not make (another replica's, here a direct UPDATE) bites once the ttl is over, never later.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eq } from 'drizzle-orm';
import { createTestDb } from '../../test/fakes/db.ts';
import { bootToken, client, createTestApp, sampleFacts } from '../../test/fakes/app.ts';
import { createBeatBuffer, type BeatBuffer } from '../fleet/beats.ts';
import { FakeClock } from '../clock.ts';
import { bootAttempts, nodes as nodesTable } from '../db/schema/index.ts';
import { hashToken } from '../secrets.ts';
import type { DbHandle } from '../db/index.ts';

const TTL = 5_000; // createBeatCache's default, as agentRoutes uses it
const U = (i: number) => `0b000000-0000-4000-8000-00000000000${i}`;

describe('heartbeats from a cached node row', () => {
  let db: DbHandle;
  let log: string[] = [];
  let t: ReturnType<typeof createTestApp>;
  let http: ReturnType<typeof client>;
  let beats: BeatBuffer;
  const clock = new FakeClock('2026-06-01T00:00:00Z');

  beforeAll(async () => {
    db = await createTestDb({ onQuery: (s) => log.push(s) });
    t = createTestApp(db, { clock, beats: (nodes) => (beats = createBeatBuffer({ store: nodes, flushSeconds: 2 })) });
    http = client(t.app);
  });
  afterAll(async () => {
    await beats?.stop();
    await db?.close();
  });

  /** a node through /ipxe, register, profile and installed: its compute credential */
  async function toActive(i: number): Promise<string> {
    const uuid = U(i);
    const token = await bootToken(t.app, uuid);
    expect((await http.post('/api/v1/agent/register', { token, body: { facts: sampleFacts(uuid, { macs: [`52:54:00:0b:00:0${i}`] }) } })).json.state).toBe('ready');
    const cred = /bootfarm\.token=(\S+)/.exec((await http.get(`/api/v1/agent/${uuid}/profile`, { token })).json.cmdline)![1]!;
    expect((await http.post(`/api/v1/agent/${uuid}/installed`, { token: cred, body: { kernelDigest: 'a'.repeat(64) } })).json.state).toBe('active');
    return cred;
  }
  /** one heartbeat: its status, answer and the statements it sent */
  async function beat(i: number, token: string) {
    log = [];
    const r = await http.post(`/api/v1/agent/${U(i)}/heartbeat`, { token, body: { kernelDigest: 'a'.repeat(64) } });
    return { status: r.status, json: r.json, statements: log.length };
  }

  it('a steady-state beat within the ttl sends no statement; after it, one read', async () => {
    const cred = await toActive(1);
    expect(await beat(1, cred)).toMatchObject({ status: 200, json: { state: 'active', next: 'continue' }, statements: 1 });
    clock.advance(TTL - 1);
    expect(await beat(1, cred)).toMatchObject({ status: 200, statements: 0 });
    clock.advance(2);
    expect(await beat(1, cred)).toMatchObject({ status: 200, statements: 1 });
  });

  it('a cached row does not accept another token: the credential is checked on every beat', async () => {
    const cred = await toActive(2);
    await beat(2, cred);
    expect((await beat(2, cred)).statements).toBe(0);
    const wrong = await beat(2, `${cred.slice(0, -2)}xx`);
    expect(wrong.status).toBe(403);
    expect(wrong.json.error.code).toBe('forbidden');
    expect((await beat(2, '')).status).toBe(401);
  });

  it('a credential rotated by this replica is refused at the next beat, without waiting for the ttl', async () => {
    const cred = await toActive(3);
    await beat(3, cred);
    expect((await beat(3, cred)).statements).toBe(0);
    const [attempt] = await db.db.select().from(bootAttempts).where(eq(bootAttempts.nodeUuid, U(3)));
    const next = await t.nodes.issueNodeCredential(U(3), attempt!.id, 'a-new-stage-1-token-of-the-next-boot');
    const old = await beat(3, cred);
    expect(old.status).toBe(403);
    expect(old.json.error.code).toBe('forbidden');
    expect((await beat(3, next)).status).toBe(200);
  });

  it('a transition made by this replica answers at the next beat (rebuild: reboot)', async () => {
    const cred = await toActive(4);
    await beat(4, cred);
    expect((await beat(4, cred)).statements).toBe(0);
    await t.nodes.transition(U(4), { type: 'rebuild', reason: 'test' }, 'test');
    expect(await beat(4, cred)).toMatchObject({ status: 200, json: { state: 'rebuilding', next: 'reboot' } });
  });

  it("another replica's rotation (not seen by this process) is refused once the ttl is over, not later", async () => {
    const cred = await toActive(5);
    await beat(5, cred);
    const cachedAt = clock.now().getTime();
    // as another replica would: the row changes in the database, this process is not told
    await db.db.update(nodesTable).set({ credentialHash: hashToken('the-other-replica-issued-this') }).where(eq(nodesTable.uuid, U(5)));
    clock.advance(TTL - 1);
    // the documented bound (docs/security-model.md): still accepted from the cached row within the ttl
    expect((await beat(5, cred)).status).toBe(200);
    clock.set(cachedAt + TTL);
    expect((await beat(5, cred)).status).toBe(403);
    expect((await beat(5, 'the-other-replica-issued-this')).status).toBe(200);
  });
});
