// `bootfarm backup` / `bootfarm restore` on Debian's PostgreSQL and across engines (issue 17 item 6): a fleet built
// on a server over PostgreSQL is backed up, restored into a new PostgreSQL database (PG → PG), into a fresh PGlite
// data directory (PG 15 → PGlite's PG 18), and that PGlite copy backed up again and restored into PostgreSQL
// (PGlite → PG). Every copy holds the same rows in every table as the source, and a server on each opens the BMC
// password (a real ipmi_sim), accepts the tokens and the node credential. A restore refuses a database whose
// replicas are up; a backup taken while another connection writes is one snapshot.
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { Writable } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '../db/index.ts';
import { silentLogger } from '../log.ts';
import { startServer, type Running } from '../main.ts';
import { writeBackup } from '../store/backup.ts';
import { runBackup } from './backup.ts';
import { startIpmiSim, type IpmiSim } from '../../test/harness/ipmisim.ts';
import { startPostgres, type PgCluster } from '../../test/harness/postgres.ts';
import { buildFleet, fleetAnswers, serverConfig, serverEnv, tableRows, type BuiltFleet } from '../../test/fakes/backup-fleet.ts';

let root: string;
let pg: PgCluster;
let sim: IpmiSim;
let fleet: BuiltFleet;
let sourceUrl: string;
let source: Record<string, string[]>;
const servers: Running[] = [];
const file = (name: string) => join(root, name);

async function cli(args: string[], env: Record<string, string | undefined>): Promise<{ out: string[]; error?: string }> {
  const out: string[] = [];
  try {
    await runBackup(args, { env, out: (l) => out.push(l) });
    return { out };
  } catch (e) {
    return { out, error: (e as Error).message };
  }
}

async function rowsOf(o: { url?: string; dataDir?: string }): Promise<Record<string, string[]>> {
  const h = await createDb({ url: o.url, dataDir: o.dataDir, migrate: false, maxConnections: 1 });
  try {
    return await tableRows(h);
  } finally {
    await h.close();
  }
}

/** a server on a restored database, the way the README says: the same KEK, the source's admin.token copied */
async function serve(dataDir: string, databaseUrl?: string): Promise<Running> {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  copyFileSync(join(file('source'), 'admin.token'), join(dataDir, 'admin.token'));
  const s = await startServer(serverConfig(dataDir, { databaseUrl }), { log: silentLogger() });
  servers.push(s);
  return s;
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'bf-backup-pg-'));
  [pg, sim] = await Promise.all([startPostgres(), startIpmiSim({ power: 0 })]);
  sourceUrl = await pg.createDatabase('backup_source');
  const a = await startServer(serverConfig(file('source'), { databaseUrl: sourceUrl }), { log: silentLogger() });
  fleet = await buildFleet(a, { bmc: sim, dir: file('blobs-in') });
  await a.stop();
  source = await rowsOf({ url: sourceUrl });
}, 240_000);

afterAll(async () => {
  for (const s of servers) await s.stop().catch(() => undefined);
  await sim?.stop();
  pg?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

const expected = () => ({ nodes: [...fleet.uuids].sort(), power: 'off', heartbeat: 'ok', canary: true });

describe('backup and restore on PostgreSQL', () => {
  it('PG → PG: a new database holds the same rows and serves the same fleet; a restore over it refuses while its replica is up', async () => {
    const b = await cli(['backup', '--out', file('pg.gz')], serverEnv(file('source'), { databaseUrl: sourceUrl }));
    expect(b.error).toBeUndefined();
    expect(b.out[0]).toMatch(/^backup of PostgreSQL postgres:\/\/postgres@127\.0\.0\.1:\d+\/backup_source_\d+ written to/);
    const url = await pg.createDatabase('backup_pg');
    const r = await cli(['restore', '--in', file('pg.gz')], serverEnv(file('pg-dst'), { databaseUrl: url }));
    expect(r.error).toBeUndefined();
    expect(await rowsOf({ url })).toEqual(source);
    const s = await serve(file('pg-dst'), url);
    expect(await fleetAnswers(s, fleet)).toEqual(expected());
    // the replica is up (it reports every fleet tick, also with the controller off): restore is offline work
    const over = await cli(['restore', '--in', file('pg.gz'), '--check'], serverEnv(file('pg-dst'), { databaseUrl: url }));
    expect(over.error).toBeUndefined();
    const refused = await cli(['restore', '--in', file('pg.gz')], serverEnv(file('pg-dst'), { databaseUrl: url }));
    expect(refused.error).toMatch(/^replicas are running on the target database \(.*, last seen .*\): stop every `bootfarm serve` on it first/);
    await s.stop();
  }, 180_000);

  it('PG → PGlite → PG: across engines and back, every table the same, and both copies serve the fleet', async () => {
    const r1 = await cli(['restore', '--in', file('pg.gz')], serverEnv(file('lite-dst')));
    expect(r1.error).toBeUndefined();
    expect(r1.out[0]).toMatch(/\(.*postgres\) into PGlite in/);
    expect(await rowsOf({ dataDir: join(file('lite-dst'), 'pglite') })).toEqual(source);
    const lite = await serve(file('lite-dst'));
    expect(await fleetAnswers(lite, fleet)).toEqual(expected());
    await lite.stop();

    // PGlite → PG: the PGlite copy (with what its server wrote meanwhile) back into PostgreSQL
    const b = await cli(['backup', '--out', file('lite.gz')], serverEnv(file('lite-dst')));
    expect(b.error).toBeUndefined();
    const liteRows = await rowsOf({ dataDir: join(file('lite-dst'), 'pglite') });
    const url = await pg.createDatabase('backup_from_pglite');
    const r2 = await cli(['restore', '--in', file('lite.gz')], serverEnv(file('pg-from-lite'), { databaseUrl: url }));
    expect(r2.error).toBeUndefined();
    expect(r2.out[0]).toMatch(/\(.*pglite\) into PostgreSQL/);
    expect(await rowsOf({ url })).toEqual(liteRows);
    const back = await serve(file('pg-from-lite'), url);
    expect(await fleetAnswers(back, fleet)).toEqual(expected());
    await back.stop();
  }, 240_000);

  it('backs up one snapshot while another connection writes: a node and its interface added mid-dump are in neither table', async () => {
    const h = await createDb({ url: sourceUrl, migrate: false, maxConnections: 1 });
    const writer = await createDb({ url: sourceUrl, migrate: false, maxConnections: 1 });
    // 20,000 events make the dump long enough that gzip hands bytes out while the events table is being read
    await h.db.execute(sql`insert into events (node_uuid, at, kind, reason, actor) select ${fleet.uuids[0]}, now(), 'note', repeat(md5(g::text), 4), 'test' from generate_series(1, 20000) g`);
    const late = '99999999-0000-4000-8000-000000000001';
    let wrote = false;
    const chunks: Buffer[] = [];
    const out = new Writable({
      write(chunk: Buffer, _enc, done) {
        chunks.push(chunk);
        if (wrote) return done();
        wrote = true;
        // committed by another session while the dump's transaction is open: nodes was read, interfaces was not yet
        writer.db
          .execute(sql`with n as (insert into nodes (uuid, state, state_since, created_at, updated_at) values (${late}, 'discovered', now(), now(), now()) returning uuid) insert into interfaces (mac, node_uuid, updated_at) select '02:00:00:00:99:01', uuid, now() from n`)
          .then(() => done(), done);
      },
    });
    try {
      await writeBackup(h, out, { now: new Date(), batchRows: 500 });
      expect(wrote).toBe(true);
      const text = gunzipSync(Buffer.concat(chunks)).toString('utf8');
      // the write committed (the database has it) but the archive is the snapshot from before it
      expect((await rowsOf({ url: sourceUrl })).interfaces!.some((l) => l.includes('02:00:00:00:99:01'))).toBe(true);
      expect(text).not.toContain(late);
      expect(text).not.toContain('02:00:00:00:99:01');
      expect(text.split('\n').filter((l) => l.includes('"kind":"note"'))).toHaveLength(20000);
    } finally {
      await writer.db.execute(sql`delete from interfaces where mac = '02:00:00:00:99:01'`);
      await writer.db.execute(sql`delete from nodes where uuid = ${late}`);
      await writer.db.execute(sql`delete from events where kind = 'note'`);
      await h.close();
      await writer.close();
    }
  }, 120_000);
});
