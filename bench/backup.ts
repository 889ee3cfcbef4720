// make bench-backup: `bootfarm backup` and `bootfarm restore` (issue 17 item 6) on a fleet of N nodes (default
// 10,000), on PGlite and, with --pg, on Debian's PostgreSQL (test/harness/postgres.ts). The fleet is made with
// SQL in the shape the server writes: per node one BMC (a sealed password), two interfaces, one facts document of
// ~3 KB (the simulated agent's, with 24 CPUs and 8 disks), ten events and a DHCP lease. Prints rows, archive size,
// backup and restore times and the process's peak RSS growth (the dump streams; it should not grow with N).
//   node --import tsx bench/backup.ts [--nodes 10000] [--pg]
import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createGunzip } from 'node:zlib';
import { sql } from 'drizzle-orm';
import { createDb, type DbHandle } from '../server/db/index.ts';
import { systemClock } from '../server/clock.ts';
import { createKeyring } from '../server/store/keyring.ts';
import { restoreBackup, writeBackup } from '../server/store/backup.ts';
import { startPostgres } from '../test/harness/postgres.ts';

const { values } = parseArgs({ options: { nodes: { type: 'string', default: '10000' }, pg: { type: 'boolean', default: false } } });
const N = Number(values.nodes);
const KEK = Buffer.alloc(32, 0x42);

async function fill(h: DbHandle): Promise<void> {
  const keyring = createKeyring(h.db, { kek: KEK, clock: systemClock });
  await keyring.init();
  const sealed = await keyring.encrypt('bmc-password-0123');
  const facts = JSON.stringify({
    system: { uuid: 'x', serial: 'SIM-00001', manufacturer: 'Bootfarm Labs', product: 'Sim-1U' },
    bios: { vendor: 'SeaBIOS', version: '2.4.1' },
    cpu: { model: 'Simulated CPU @ 2.10GHz', sockets: 2, cores: 24, threads: 48, flags: Array.from({ length: 60 }, (_, i) => `flag${i}`) },
    memory: { totalBytes: 256 * 2 ** 30, dimms: Array.from({ length: 8 }, (_, i) => ({ slot: `DIMM_A${i}`, sizeBytes: 32 * 2 ** 30, speedMts: 3200 })) },
    nics: [0, 1].map((i) => ({ name: `eno${i}`, mac: `52:54:00:00:00:0${i}`, driver: 'ice', firmwareVersion: '4.20 0x8001778b', link: true, speedMbps: 25000, boot: i === 0 })),
    disks: Array.from({ length: 8 }, (_, i) => ({ name: `nvme${i}n1`, model: 'SAMSUNG MZQL23T8HCLS-00A07', serial: `S64HNE0R${i}00000`, sizeBytes: 3.84e12, rotational: false })),
  });
  const node = (g: string) => sql.raw(`'10000000-0000-4000-8000-' || lpad(to_hex(${g}), 12, '0')`);
  const mac = (g: string, nic: number) => sql.raw(`'52:54:0${nic}:' || substr(lpad(to_hex(${g}), 6, '0'), 1, 2) || ':' || substr(lpad(to_hex(${g}), 6, '0'), 3, 2) || ':' || substr(lpad(to_hex(${g}), 6, '0'), 5, 2)`);
  await h.db.transaction(async (tx) => {
    await tx.execute(sql`insert into nodes (uuid, serial, manufacturer, product, hostname, state, state_since, labels, last_seen, last_heartbeat, created_at, updated_at)
      select ${node('g')}, 'SIM-' || g, 'Bootfarm Labs', 'Sim-1U', 'hv-' || g, 'active', now(), jsonb_build_object('rack', 'r' || (g % 40), 'role', 'hv'), now(), now(), now(), now() from generate_series(1, ${N}) g`);
    for (const nic of [0, 1]) await tx.execute(sql`insert into interfaces (mac, node_uuid, name, driver, updated_at) select ${mac('g', nic)}, ${node('g')}, ${'eno' + nic}, 'ice', now() from generate_series(1, ${N}) g`);
    await tx.execute(sql`insert into bmcs (node_uuid, driver, address, port, username, password_enc, created_at, updated_at) select ${node('g')}, 'ipmi', '10.1.' || (g / 250) || '.' || (g % 250), 623, 'root', ${sealed}, now(), now() from generate_series(1, ${N}) g`);
    await tx.execute(sql`insert into facts (node_uuid, collected_at, agent_version, facts, failures, hash) select ${node('g')}, now(), 'sim-0.1.0', ${facts}::jsonb, '[]'::jsonb, md5(g::text) from generate_series(1, ${N}) g`);
    await tx.execute(sql`insert into events (node_uuid, at, kind, from_state, to_state, reason, actor) select ${node('g')}, now() - make_interval(secs => e), 'transition', 'provisioning', 'active', 'stage-1 reported installed after kexec', 'agent' from generate_series(1, ${N}) g, generate_series(1, 10) e`);
    await tx.execute(sql`insert into dhcp_leases (ip, mac, state, expires_at, pool, updated_at) select '10.' || (2 + g / 65536) || '.' || ((g / 256) % 256) || '.' || (g % 256), ${mac('g', 0)}, 'bound', now() + interval '1 hour', 'rack', now() from generate_series(1, ${N}) g`);
  });
}

const rss = () => process.memoryUsage().rss;

async function measure(engine: string, open: (name: string) => Promise<DbHandle>) {
  const dir = mkdtempSync(join(tmpdir(), 'bf-bench-backup-'));
  try {
    const src = await open('source');
    await fill(src);
    const archive = join(dir, 'fleet.gz');
    let peak = rss();
    const timer = setInterval(() => (peak = Math.max(peak, rss())), 20);
    const base = rss();
    let t = performance.now();
    const s = await writeBackup(src, createWriteStream(archive), { now: new Date() });
    const backupMs = performance.now() - t;
    let raw = 0;
    for await (const c of createReadStream(archive).pipe(createGunzip())) raw += (c as Buffer).length;
    const backupPeak = peak - base;
    await src.close();
    const dst = await open('target');
    peak = rss();
    const base2 = rss();
    t = performance.now();
    const r = await restoreBackup(dst, () => createReadStream(archive), { keks: [KEK] });
    const restoreMs = performance.now() - t;
    clearInterval(timer);
    await dst.close();
    console.log(
      `${engine}: ${N} nodes, ${s.rows} rows (${s.tables.filter((x) => x.rows).map((x) => `${x.table} ${x.rows}`).join(', ')}); archive ${(statSync(archive).size / 2 ** 20).toFixed(1)} MiB (${(raw / 2 ** 20).toFixed(0)} MiB of JSON lines); ` +
        `backup ${(backupMs / 1000).toFixed(1)} s (RSS +${((backupPeak) / 2 ** 20).toFixed(0)} MiB); restore ${(restoreMs / 1000).toFixed(1)} s incl. check pass and read-back (RSS +${((peak - base2) / 2 ** 20).toFixed(0)} MiB), ${r.rows} rows verified`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await measure('PGlite', (name) => createDb({ dataDir: 'memory://', migrate: name === 'source' }));
if (values.pg) {
  const pg = await startPostgres();
  try {
    await measure('PostgreSQL 15', async (name) => createDb({ url: await pg.createDatabase(`bench_${name}`), migrate: name === 'source' }));
  } finally {
    pg.stop();
  }
}
