// `bootfarm backup` / `bootfarm restore` on PGlite (issue 17 item 6), the way an operator runs them: a server
// (startServer, own data directory, KEK configured) builds a fleet through its API and stores and is stopped; the
// CLI backs its data directory up and restores it into a FRESH data directory; the two databases hold the same
// rows in every table; a server started on the restored directory opens the BMC password (and drives a real
// ipmi_sim with it), accepts the API tokens and the node credential, and resolves the image channels.
// Bad archives and a wrong KEK are refused with a message and leave no data directory behind.
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { gunzipSync, gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '../db/index.ts';
import { silentLogger } from '../log.ts';
import { startServer, type Running } from '../main.ts';
import { runBackup } from './backup.ts';
import { startIpmiSim, type IpmiSim } from '../../test/harness/ipmisim.ts';
import { BACKUP_KEK, OTHER_KEK, buildFleet, call, serverConfig, serverEnv, tableRows, type BuiltFleet } from '../../test/fakes/backup-fleet.ts';

let root: string;
let sim: IpmiSim;
let fleet: BuiltFleet;
const servers: Running[] = [];
const src = () => join(root, 'source');
const archive = () => join(root, 'fleet.bfbackup.gz');

async function cli(args: string[], env: Record<string, string | undefined>): Promise<{ code: number; out: string[]; error?: string }> {
  const out: string[] = [];
  try {
    const code = await runBackup(args, { env, out: (l) => out.push(l) });
    return { code, out };
  } catch (e) {
    return { code: 2, out, error: (e as Error).message };
  }
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'bf-backup-'));
  sim = await startIpmiSim({ power: 0 });
  const a = await startServer(serverConfig(src()), { log: silentLogger() });
  servers.push(a);
  fleet = await buildFleet(a, { bmc: sim, dir: join(root, 'blobs-in') });
  await a.stop();
}, 240_000);

afterAll(async () => {
  for (const s of servers) await s.stop().catch(() => undefined);
  await sim?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('bootfarm backup / restore on PGlite', () => {
  it('restores into a fresh data directory: every table the same, and the restored server runs the same fleet', async () => {
    const b = await cli(['backup', '--out', archive()], serverEnv(src()));
    expect(b.error).toBeUndefined();
    expect(b.out[0]).toMatch(/^backup of PGlite in .*source\/pglite written to .*fleet\.bfbackup\.gz: \d+ tables, \d+ rows, schema \d{4}_\w+, \d+ bytes/);
    expect(statSync(archive()).mode & 0o777).toBe(0o600);
    expect(existsSync(archive() + '.partial')).toBe(false);
    // the archive never holds the KEK (nor the admin token): only the KEK's check value and sealed values
    const text = gunzipSync(readFileSync(archive())).toString('utf8');
    expect(text).not.toContain(BACKUP_KEK);
    expect(text).not.toContain(fleet.adminToken);
    expect(text).not.toContain(sim.password);

    const dst = join(root, 'restored');
    const r = await cli(['restore', '--in', archive()], serverEnv(dst));
    expect(r.error).toBeUndefined();
    expect(r.out[0]).toMatch(/^restored .* into PGlite in .*restored\/pglite: \d+ tables, \d+ rows, every table verified; schema \d{4}_\w+; /);
    expect(r.out[1]).toMatch(/no .*admin\.token: copy the backed-up installation's file here/);

    const [before, after] = [await createDb({ dataDir: join(src(), 'pglite'), migrate: false }), await createDb({ dataDir: join(dst, 'pglite'), migrate: false })];
    const [x, y] = [await tableRows(before), await tableRows(after)];
    await before.close();
    await after.close();
    expect(y).toEqual(x);
    const counts = Object.fromEntries(Object.entries(x).map(([t, rows]) => [t, rows.length]));
    console.log(`PGlite fleet restored: ${JSON.stringify(counts)}`);
    for (const t of ['nodes', 'interfaces', 'facts', 'events', 'bmcs', 'boot_attempts', 'dhcp_leases', 'images', 'image_channels', 'image_channel_history', 'api_tokens', 'audit_log', 'data_keys', 'firmware_baselines'])
      expect(counts[t], t).toBeGreaterThan(0);
    expect(new Set(JSON.parse(`[${x.nodes!.join(',')}]`).map((n: { state: string }) => n.state))).toEqual(new Set(['active', 'maintenance', 'retired', 'inspecting', 'discovered']));

    // the operator copies admin.token (its hash is in the database; the token is not in the backup)
    copyFileSync(join(src(), 'admin.token'), join(dst, 'admin.token'));
    const b2 = await startServer(serverConfig(dst), { log: silentLogger() });
    servers.push(b2);
    expect(b2.adminToken).toBe(fleet.adminToken);
    const list = await call(b2, 'GET', '/api/v1/nodes', fleet.operatorToken);
    expect(list.status).toBe(200);
    expect(list.json.nodes.map((n: { uuid: string }) => n.uuid).sort()).toEqual([...fleet.uuids].sort());
    // the sealed BMC password opens with the same KEK: the restored server logs in to the real ipmi_sim
    const power = await call(b2, 'GET', `/api/v1/nodes/${fleet.bmcNode}/power`, fleet.adminToken);
    expect(power.status, power.text).toBe(200);
    expect(power.json.power).toBe('off');
    // the compute OS's node credential still authenticates its heartbeats
    const beat = await call(b2, 'POST', `/api/v1/agent/${fleet.activeNode}/heartbeat`, fleet.nodeCredential, { uptimeSeconds: 60 });
    expect(beat.status, beat.text).toBe(200);
    const images = await call(b2, 'GET', '/api/v1/images/hypervisor', fleet.operatorToken);
    expect(images.status).toBe(200);
    expect(JSON.stringify(images.json)).toContain('1.1');
    await b2.stop();
  }, 240_000);

  it('refuses a database that is not empty unless --force, and --force replaces its rows', async () => {
    const dst = join(root, 'restored');
    const again = await cli(['restore', '--in', archive()], serverEnv(dst));
    expect(again.error).toMatch(/^the target database is not empty \(.*nodes: 8.*\): restore into an empty database .* or pass --force/);
    const forced = await cli(['restore', '--in', archive(), '--force'], serverEnv(dst));
    expect(forced.error).toBeUndefined();
    expect(forced.out[0]).toMatch(/rows replaced/);
  }, 120_000);

  it('checks an archive without a database (--check), naming what it holds', async () => {
    const r = await cli(['restore', '--in', archive(), '--check'], serverEnv(join(root, 'nowhere')));
    expect(r.error).toBeUndefined();
    expect(r.out[0]).toMatch(/a complete backup of .* \(pglite\), schema \d{4}_\w+, \d+ tables, \d+ rows; the configured KEK opens its 1 data key\(s\)/);
    expect(existsSync(join(root, 'nowhere'))).toBe(false);
  }, 60_000);

  it('refuses a truncated, a damaged and a foreign archive, and a wrong KEK, leaving no data directory', async () => {
    const whole = readFileSync(archive());
    const plain = gunzipSync(whole).toString('utf8');
    const lines = plain.split('\n');
    const bad: [string, Buffer, RegExp, string?][] = [
      ['truncated', whole.subarray(0, Math.floor(whole.length / 2)), /is truncated \(the gzip stream ends early\)/],
      ['flipped', Buffer.from(whole.map((b, i) => (i === Math.floor(whole.length / 2) ? b ^ 0xff : b))), /is (not a bootfarm backup or is damaged|truncated)|damaged/],
      ['cut at a line', gzipSync(lines.slice(0, Math.floor(lines.length / 2)).join('\n') + '\n'), /is truncated: it ends (inside table \w+|after \d+ of \d+ tables), without its trailer/],
      ['edited row', gzipSync(plain.replace('"disk swap"', '"disk swop"')), /table \w+ is damaged: \d+ rows read with digest/],
      ['not gzip', Buffer.from('hello\n'), /is not a bootfarm backup or is damaged \(gzip: incorrect header check\)/],
      ['other format version', gzipSync(plain.replace('"version":1,', '"version":2,')), /is backup format version 2; this build reads version 1: restore it with the newer bootfarm build that wrote it/],
      ['wrong KEK', whole, /the configured KEK cannot open this backup's data keys: they were wrapped by the KEK with check value [0-9a-f]{16}; configured: [0-9a-f]{16}\. The backup does not contain the KEK/, OTHER_KEK],
    ];
    for (const [what, bytes, message, kek] of bad) {
      const file = join(root, `${what.replace(/ /g, '-')}.gz`);
      writeFileSync(file, bytes);
      const dst = join(root, `bad-${what.replace(/ /g, '-')}`);
      const r = await cli(['restore', '--in', file], serverEnv(dst, { kek }));
      expect(r.error, what).toMatch(message);
      expect(existsSync(join(dst, 'pglite')), `${what}: no database created`).toBe(false);
    }
  }, 120_000);

  it('backs up a PGlite server while it serves through GET /api/v1/backup (--from-server), audited; the direct way refuses', async () => {
    const s = await startServer(serverConfig(src()), { log: silentLogger() });
    servers.push(s);
    const direct = await cli(['backup', '--out', join(root, 'direct.gz')], serverEnv(src()));
    expect(direct.error).toMatch(/^the PGlite database in .*source\/pglite is open in another process \(.*postmaster\.pid exists\): stop `bootfarm serve` first .*--from-server/);
    expect(existsSync(join(root, 'direct.gz.partial'))).toBe(false);
    const out: string[] = [];
    const online = join(root, 'online.gz');
    await runBackup(['backup', '--out', online, '--from-server'], { env: serverEnv(src()), out: (l) => out.push(l), globals: { url: s.url, token: fleet.adminToken } });
    expect(out[0]).toMatch(/^backup of the server at http:\/\/127\.0\.0\.1:\d+ written to .*online\.gz: \d+ tables, \d+ rows/);
    const checked = await cli(['restore', '--in', online, '--check'], serverEnv(join(root, 'nowhere')));
    expect(checked.error).toBeUndefined();
    expect(checked.out[0]).toMatch(/a complete backup .* the configured KEK opens its 1 data key\(s\)/);
    const refused = await runBackup(['backup', '--out', join(root, 'op.gz'), '--from-server'], { env: serverEnv(src()), out: () => {}, globals: { url: s.url, token: fleet.operatorToken } }).catch((e: Error) => e.message);
    expect(refused).toMatch(/^403 /);
    const audit = await call(s, 'GET', '/api/v1/audit?action=database.backup', fleet.adminToken);
    expect(audit.text).toContain('database.backup');
    await s.stop();
  }, 120_000);
});
