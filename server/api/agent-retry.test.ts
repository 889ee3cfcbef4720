// Agent calls arriving twice (issue 14, found by the HA rack): an agent retries when an answer is lost, and behind a
// load balancer the first copy may still be waiting on a replica that lost its database and land later, or both
// copies run at once on two replicas. The second copy must get the same answer, not a 409 that strands the node
// in stage-1 (its rescue console never reboots by itself).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type DbHandle } from '../db/index.ts';
import { startPostgres, type PgCluster } from '../../test/harness/postgres.ts';
import { createTestDb } from '../../test/fakes/db.ts';
import { bootToken, client, createTestApp, sampleFacts, TOKENS } from '../../test/fakes/app.ts';

let pg: PgCluster | undefined;
const backends: [string, () => Promise<DbHandle>][] = [
  ['PGlite', () => createTestDb()],
  [
    'PostgreSQL',
    async () => {
      pg ??= await startPostgres();
      return createDb({ url: await pg.createDatabase('agentretry'), maxConnections: 6 });
    },
  ],
];
afterAll(() => pg?.stop());

describe.each(backends)('agent calls that arrive twice, on %s', (_name, makeDb) => {
  let db: DbHandle;
  let http: ReturnType<typeof client>;
  let t: ReturnType<typeof createTestApp>;
  beforeAll(async () => {
    db = await makeDb();
    t = createTestApp(db);
    http = client(t.app);
  });
  afterAll(async () => db?.close());

  it('two copies of a registration at once: both answer ready / provision', async () => {
    for (let i = 0; i < 5; i++) {
      const uuid = `0a0a0a0a-0000-4000-8000-00000000000${i}`;
      const token = await bootToken(t.app, uuid);
      const both = await Promise.all([0, 1].map(() => http.post('/api/v1/agent/register', { token, body: { facts: sampleFacts(uuid) } })));
      expect(both.map((r) => r.status), both.map((r) => r.text).join('\n')).toEqual([200, 200]);
      for (const r of both) expect(r.json).toMatchObject({ state: 'ready', next: 'provision' });
    }
  });

  it('two profile requests at once for a ready node: both get the profile, the node is provisioned once', async () => {
    for (let i = 0; i < 5; i++) {
      const uuid = `0a0a0a0a-0000-4000-8000-00000000010${i}`;
      const token = await bootToken(t.app, uuid);
      expect((await http.post('/api/v1/agent/register', { token, body: { facts: sampleFacts(uuid) } })).json.state).toBe('ready');
      const both = await Promise.all([http.get(`/api/v1/agent/${uuid}/profile`, { token }), http.get(`/api/v1/agent/${uuid}/profile`, { token })]);
      expect(both.map((r) => r.status), both.map((r) => r.text).join('\n')).toEqual([200, 200]);
      const ev = await http.get(`/api/v1/nodes/${uuid}/events`, { token: TOKENS.viewer });
      expect(ev.json.events.filter((e: { toState: string | null }) => e.toState === 'provisioning')).toHaveLength(1);
    }
  });

  it('a profile request while a late registration re-inspects the node: 503 with Retry-After, not a 409', async () => {
    const uuid = '0a0a0a0a-0000-4000-8000-000000000201';
    const token = await bootToken(t.app, uuid);
    expect((await http.post('/api/v1/agent/register', { token, body: { facts: sampleFacts(uuid) } })).json.state).toBe('ready');
    await t.nodes.transition(uuid, { type: 'inspect', reason: 'a late copy of the registration' }, 'agent');
    const r = await http.get(`/api/v1/agent/${uuid}/profile`, { token });
    expect(r.status, r.text).toBe(503);
    expect(r.headers.get('retry-after')).toBe('1');
  });
});
