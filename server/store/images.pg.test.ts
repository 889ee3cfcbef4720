// The fleet-health query behind promotion gates and automatic rollback, on a real PostgreSQL server: postgres.js
// cannot bind a JS Date into a raw sql fragment (PGlite can), which made the gates endpoint answer 500 there.
import { afterAll, expect, it } from 'vitest';
import { createDb } from '../db/index.ts';
import { startPostgres, type PgCluster } from '../../test/harness/postgres.ts';
import { createImageDbStore } from './images.ts';
import { createNodeStore } from './nodes.ts';
import { FakeClock } from '../clock.ts';

let pg: PgCluster | undefined;
afterAll(() => pg?.stop());

it('counts nodes on a digest pair within a time window on PostgreSQL', async () => {
  pg = await startPostgres();
  const db = await createDb({ url: await pg.createDatabase('imghealth'), maxConnections: 2 });
  try {
    const clock = new FakeClock('2026-11-21T00:00:00Z');
    const nodes = createNodeStore(db.db, { clock });
    const k = 'c'.repeat(64);
    const i = 'd'.repeat(64);
    for (const [n, uuid] of ['01', '02', '03'].entries()) {
      const u = `abababab-0000-4000-8000-0000000000${uuid}`;
      await nodes.enroll(u, {}, 'test');
      await nodes.touch(u, { kernelDigest: k, initrdDigest: i });
      if (n < 2) {
        await nodes.transition(u, { type: 'inspect' }, 'test');
        await nodes.transition(u, { type: 'inspected' }, 'test');
        await nodes.transition(u, { type: 'provision' }, 'test', { kernel: k, initrd: i });
        await nodes.transition(u, { type: 'installed' }, 'test');
      }
    }
    const s = createImageDbStore(db.db);
    expect(await s.nodesOnImage(k, i)).toEqual({ active: 2, quarantined: 0 });
    // the gates' window query binds its start as a timestamp too
    const outcomes = await s.bootOutcomes(k, i, new Date('2026-11-20T00:00:00Z'));
    expect(outcomes.map((o) => [o.fromState, o.toState, o.kexecStarted])).toEqual([
      ['provisioning', 'active', false],
      ['provisioning', 'active', false],
    ]);
    expect(await s.bootOutcomes(k, i, new Date('2026-11-22T00:00:00Z'))).toEqual([]);
  } finally {
    await db.close();
  }
});
