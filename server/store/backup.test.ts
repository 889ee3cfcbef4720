// The restore's schema and atomicity rules (issue 17 item 6), on PGlite: a backup from an older schema is restored
// at its version and migrated afterwards; a backup from a schema this build does not know is refused before the
// database is touched, as is a target database already newer than the backup; a row the database refuses rolls
// back everything, the schema included; live replicas stop a restore unless forced.
import { createReadStream, createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { gunzipSync, gzipSync } from 'node:zlib';
import { Writable } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type DbHandle } from '../db/index.ts';
import { appliedMigrations, applySteps, migrationSteps, rows } from '../db/migration-steps.ts';
import { systemClock } from '../clock.ts';
import { createKeyring } from './keyring.ts';
import { createNodeStore } from './nodes.ts';
import { BackupError, restoreBackup, writeBackup } from './backup.ts';
import { RowDigest } from './backup-format.ts';

const KEK = Buffer.alloc(32, 0x11);
let root: string;
const file = (n: string) => join(root, n);
const steps = migrationSteps();

async function backupOf(h: DbHandle, name: string): Promise<string> {
  await writeBackup(h, createWriteStream(file(name)), { now: new Date('2026-12-02T12:00:00Z') });
  return file(name);
}

/** the archive with its lines changed by `edit`, each table's digest and count recomputed (a well-formed archive) */
function rewrite(path: string, name: string, edit: (lines: string[]) => string[]): string {
  const lines = edit(gunzipSync(readFileSync(path)).toString('utf8').split('\n').filter(Boolean));
  let digest = new RowDigest();
  const out = lines.map((l) => {
    if (l.startsWith('{"@table"')) digest = new RowDigest();
    else if (l.startsWith('{"@end"')) return JSON.stringify({ ...JSON.parse(l), rows: digest.rows, digest: digest.hex() });
    else if (!l.startsWith('{"@')) digest.add(l);
    return l;
  });
  writeFileSync(file(name), gzipSync(out.join('\n') + '\n'));
  return file(name);
}

const restore = (h: DbHandle, path: string, o: { force?: boolean; liveSeconds?: number } = {}) => restoreBackup(h, () => createReadStream(path), { keks: [KEK], name: path, ...o });
const fresh = () => createDb({ dataDir: 'memory://', migrate: false });
const tables = async (h: DbHandle) => rows<{ n: number }>(await h.db.execute(sql`select count(*)::int as n from pg_class where relnamespace = 'public'::regnamespace and relkind = 'r'`))[0]!.n;

let current: string;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'bf-backup-store-'));
  const h = await createDb({ dataDir: 'memory://' });
  await createKeyring(h.db, { kek: KEK, clock: systemClock }).init();
  const nodes = createNodeStore(h.db, { clock: systemClock });
  for (let i = 1; i <= 3; i++) await nodes.enroll(`17060000-0000-4000-8000-00000000000${i}`, { serial: `S${i}` }, 'test');
  current = await backupOf(h, 'current.gz');
  await h.close();
}, 120_000);

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('restore: schema versions', () => {
  it("restores a backup from an older schema at that schema's version, then applies the later migrations", async () => {
    // a database one migration behind this build, as an older release left it
    const old = await fresh();
    await old.db.transaction((tx) => applySteps(tx, steps.slice(0, -1)));
    await old.db.execute(sql`insert into nodes (uuid, state, state_since, created_at, updated_at) values ('17060000-0000-4000-8000-0000000000aa', 'ready', now(), now(), now())`);
    const path = await backupOf(old, 'older.gz');
    await old.close();
    const h = await fresh();
    const r = await restore(h, path);
    expect(r.header.schema.version).toBe(steps.at(-2)!.tag);
    expect(r.migratedAfter).toEqual([steps.at(-1)!.tag]);
    expect((await appliedMigrations(h.db)).map((m) => m.hash)).toEqual(steps.map((s) => s.hash));
    expect(rows<{ state: string }>(await h.db.execute(sql`select state from nodes`))).toEqual([{ state: 'ready' }]);
    await h.close();
  });

  it('refuses a backup from a schema this build does not know, before touching the database', async () => {
    const path = rewrite(current, 'newer.gz', (lines) => {
      const head = JSON.parse(lines[0]!);
      head['@backup'].schema.migrations.push({ hash: 'f'.repeat(64), createdAt: 4102444800000 });
      head['@backup'].schema.version = '9999_from_the_future';
      return [JSON.stringify(head), ...lines.slice(1)];
    });
    const h = await fresh();
    await expect(restore(h, path)).rejects.toThrow(/was taken from a database at schema 9999_from_the_future \(\d+ migrations, latest created_at 4102444800000\), which this build does not know: it knows \d+ migrations up to \d{4}_\w+\. Restore it with the bootfarm build that took it, or a newer one\./);
    expect(await tables(h)).toBe(0);
    await h.close();
  });

  it('refuses a target database already at a newer schema than the backup (a restore cannot take a schema back)', async () => {
    const path = rewrite(current, 'one-behind.gz', (lines) => {
      const head = JSON.parse(lines[0]!);
      head['@backup'].schema.migrations.pop();
      head['@backup'].schema.version = steps.at(-2)!.tag;
      return [JSON.stringify(head), ...lines.slice(1)];
    });
    const h = await createDb({ dataDir: 'memory://' });
    await expect(restore(h, path, { force: true })).rejects.toThrow(new RegExp(`^the target database is at schema ${steps.at(-1)!.tag}, newer than the backup's ${steps.at(-2)!.tag}: a restore cannot take a schema back`));
    await h.close();
  });
});

describe('restore: one transaction', () => {
  it('rolls everything back, the schema included, when the database refuses a row', async () => {
    // well-formed (digests recomputed) but the second node has no state: NOT NULL fails in the insert
    const path = rewrite(current, 'bad-row.gz', (lines) => {
      let seen = 0;
      return lines.map((l) => (l.startsWith('{"uuid":"17060000') && ++seen === 2 ? l.replace(/"state":"[a-z]+"/, '"state":null') : l));
    });
    const h = await fresh();
    await expect(restore(h, path)).rejects.toThrow(/^the database refused rows of table nodes from .*bad-row\.gz \(null value in column "state" .*\); nothing was restored$/);
    expect(await tables(h)).toBe(0);
    expect(rows<{ present: boolean }>(await h.db.execute(sql`select to_regclass('drizzle.__drizzle_migrations') is not null as present`))[0]!.present).toBe(false);
    // and the same database takes the good archive afterwards
    expect((await restore(h, current)).rows).toBeGreaterThan(3);
    await h.close();
  });

  it('refuses while a replica reported within liveSeconds, unless forced', async () => {
    const h = await fresh();
    await restore(h, current);
    await h.db.execute(sql`insert into replicas (id, hostname, version, schema_version, started_at, last_seen) values ('host:1:abc', 'host', '0.1.0', 'x', now(), now())`);
    await expect(restore(h, current, { liveSeconds: 30 })).rejects.toThrow(/^replicas are running on the target database \(host:1:abc, last seen .*\): stop every `bootfarm serve` on it first/);
    const forced = await restore(h, current, { force: true, liveSeconds: 30 });
    expect(forced.replaced).toBeGreaterThan(3);
    expect(rows<{ n: number }>(await h.db.execute(sql`select count(*)::int as n from replicas`))[0]!.n).toBe(0);
    await h.close();
  });

  it('ends the dump and its transaction when the output goes away (a client that hung up)', async () => {
    const h = await createDb({ dataDir: 'memory://' });
    await h.db.execute(sql`insert into nodes (uuid, state, state_since, created_at, updated_at) select 'hung-' || g, 'ready', now(), now(), now() from generate_series(1, 3000) g`);
    await h.db.execute(sql`insert into events (node_uuid, at, kind, reason, actor) select 'hung-' || (g % 3000 + 1), now(), 'note', md5(g::text) || md5((g + 1)::text), 'test' from generate_series(1, 30000) g`);
    // the HTTP response's stream is cancelled: destroyed without an error, after taking one chunk and never
    // acknowledging the second (so the dump waits on backpressure when it goes)
    let writes = 0;
    const out = new Writable({
      highWaterMark: 1024,
      write(_chunk, _enc, done) {
        if (++writes === 1) return done();
        setTimeout(() => out.destroy(), 50);
      },
    });
    await expect(writeBackup(h, out, { now: new Date() })).rejects.toThrow(/premature close|the backup output closed before the archive was complete/i);
    // the snapshot's transaction is over: PGlite takes the next statement (it would wait forever otherwise)
    expect(rows<{ n: number }>(await h.db.execute(sql`select count(*)::int as n from events`))[0]!.n).toBe(30000);
    await h.close();
  });

  it('refuses a database without a schema as a backup source, naming it', async () => {
    const h = await fresh();
    await expect(writeBackup(h, createWriteStream(file('nothing.gz')), { now: new Date() })).rejects.toThrow(BackupError);
    await h.close();
  });
});
