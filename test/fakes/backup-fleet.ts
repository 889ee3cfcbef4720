// A fleet for the backup/restore suites (issue 17 item 6), built on a running server (server/main.ts startServer)
// through its admin API where one exists — enrollment with sealed BMC passwords, an API token, image pushes and a
// promotion, a firmware baseline, lifecycle actions (each with its audit row) — and through the server's own
// stores for what only nodes and the DHCP server do (registration with facts, boot attempts, the node credential,
// heartbeats, leases). Plus `tableRows`, every backed-up table as sorted row_to_json text, to compare databases.
import { mkdirSync } from 'node:fs';
import { sql } from 'drizzle-orm';
import { parseConfig, type Config } from '../../server/config.ts';
import type { DbHandle } from '../../server/db/index.ts';
import type { Running } from '../../server/main.ts';
import { createNodeStore } from '../../server/store/nodes.ts';
import { createLeaseDbStore } from '../../server/store/leases.ts';
import { NOT_BACKED_UP } from '../../server/store/backup.ts';
import { rows } from '../../server/db/migration-steps.ts';
import { runImageCommand } from '../../server/cli/image.ts';
import { systemClock } from '../../server/clock.ts';
import { simFacts } from '../support/sim/node.ts';
import { simSpec } from '../support/sim/fleet.ts';
import { initrdFile, kernelFile } from './boot-files.ts';

export const BACKUP_KEK = Buffer.alloc(32, 0x4b).toString('base64');
export const OTHER_KEK = Buffer.alloc(32, 0x21).toString('base64');

/** A server as an operator runs it: no configured tokens (the bootstrap admin.token), a KEK, the fleet
 * controller off (nothing changes rows behind the test's back). */
export function serverConfig(dataDir: string, { databaseUrl, kek = BACKUP_KEK }: { databaseUrl?: string; kek?: string } = {}): Config {
  return parseConfig({ dataDir, ...(databaseUrl ? { databaseUrl } : {}), http: { host: '127.0.0.1', port: 0 }, secrets: { kek }, fleet: { enabled: false } });
}

/** The environment `bootfarm backup|restore` reads for the same settings. */
export function serverEnv(dataDir: string, { databaseUrl, kek = BACKUP_KEK }: { databaseUrl?: string; kek?: string } = {}): Record<string, string | undefined> {
  return { BOOTFARM_DATA_DIR: dataDir, BOOTFARM_KEK: kek, ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}) };
}

export async function call(server: Pick<Running, 'url'>, method: string, path: string, token: string | undefined, body?: unknown, contentType = 'application/json') {
  const res = await fetch(server.url + path, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': contentType } : {}) },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, json, text };
}

export interface BuiltFleet {
  adminToken: string;
  /** made with POST /api/v1/tokens (operator) */
  operatorToken: string;
  /** the node whose BMC is the given ipmi_sim */
  bmcNode: string;
  /** an active node and the node credential its compute OS heartbeats with */
  activeNode: string;
  nodeCredential: string;
  uuids: string[];
}

const expectStatus = (r: { status: number; text: string }, ok: number[], what: string) => {
  if (!ok.includes(r.status)) throw new Error(`${what}: ${r.status} ${r.text}`);
};

/** Builds the fleet on `server` (a fresh database). `bmc` is where node 0's BMC answers (a real ipmi_sim). */
export async function buildFleet(server: Running, { bmc, dir }: { bmc: { port: number; username: string; password: string }; dir: string }): Promise<BuiltFleet> {
  const admin = server.adminToken!;
  const specs = Array.from({ length: 8 }, (_, i) => simSpec(i + 1, 0x6b));
  const uuids = specs.map((s) => s.uuid);
  // enrollment: nodes, interfaces, BMCs with sealed passwords, labels, one audit row
  const inventory = specs
    .slice(1)
    .map((s, i) => `- uuid: ${s.uuid}\n  serial: ${s.serial}\n  macs: [${s.mac}]\n  labels: {rack: r${i % 2}, role: hv}\n  bmc: {address: 10.20.0.${i + 2}, username: root, password: "pw-${i}-s3cret"}`)
    .join('\n');
  expectStatus(await call(server, 'POST', '/api/v1/nodes/enroll', admin, { format: 'yaml', inventory }), [201], 'enroll');
  expectStatus(await call(server, 'PUT', `/api/v1/nodes/${uuids[0]}/bmc`, admin, { driver: 'ipmi', address: '127.0.0.1', port: bmc.port, username: bmc.username, password: bmc.password }), [200], 'bmc');
  const token = await call(server, 'POST', '/api/v1/tokens', admin, { name: 'ops', role: 'operator' });
  expectStatus(token, [201], 'token');
  // images: two versions pushed (blobs, manifests, channels, history), one promoted by force
  mkdirSync(dir, { recursive: true });
  const out: string[] = [];
  const cli = (args: string[]) => runImageCommand(args, { url: server.url, token: admin, out: (l) => out.push(l), progress: { write: () => true, isTTY: false } });
  await cli(['push', kernelFile(dir, 'k1', 6000).path, initrdFile(dir, 'i1', 9000).path, '--name', 'hypervisor', '--version', '1.0']);
  await cli(['push', kernelFile(dir, 'k2', 7000).path, initrdFile(dir, 'i2', 8000).path, '--name', 'hypervisor', '--version', '1.1', '--cmdline', 'console=ttyS0']);
  await cli(['promote', 'hypervisor', '--from', 'dev', '--to', 'canary', '--force', '--reason', 'backup test']);
  // a firmware baseline (history row, audit row)
  expectStatus(await call(server, 'POST', '/api/v1/firmware/baselines', admin, 'name: sim\nselector: {manufacturer: Bootfarm Labs, product: Sim-1U}\ncomponents:\n  - {type: bios, minimum: "2.0.0"}\n', 'application/yaml'), [200, 201], 'baseline');

  // what the nodes themselves do, through the server's stores: registration (facts), boot attempts, credentials
  const nodes = createNodeStore(server.db.db, { clock: systemClock });
  for (const s of specs.slice(0, 6)) await nodes.register({ facts: simFacts(s), failures: [], agentVersion: 'sim-0.1.0' }, `agent:${s.uuid}`);
  let nodeCredential = '';
  for (const s of specs.slice(0, 4)) {
    const opened = await nodes.openAttempt(s.uuid, { address: '10.20.1.1', reason: 'backup test boot', serverStarted: false, ttlSeconds: 1800, maxOpen: 4, platform: 'pcbios' });
    if (!('token' in opened)) throw new Error(`attempt refused: ${opened.refused}`);
    await nodes.transition(s.uuid, { type: 'inspected' }, 'agent');
    await nodes.transition(s.uuid, { type: 'provision' }, 'agent');
    const credential = await nodes.issueNodeCredential(s.uuid, opened.attempt.id, opened.token);
    await nodes.transition(s.uuid, { type: 'installed' }, 'agent');
    await nodes.touch(s.uuid, { lastHeartbeat: new Date(), hostname: `hv-${s.index}` });
    if (s.index === 2) nodeCredential = credential;
  }
  // lifecycle actions through the API: maintenance, retire (events and audit rows)
  expectStatus(await call(server, 'POST', `/api/v1/nodes/${uuids[2]}/actions`, admin, { action: 'maintenance-on', reason: 'disk swap' }), [200], 'maintenance');
  expectStatus(await call(server, 'POST', `/api/v1/nodes/${uuids[6]}/actions`, admin, { action: 'retire', reason: 'decommissioned' }), [200], 'retire');
  // DHCP leases as the full-mode DHCP server records them
  const leases = createLeaseDbStore(server.db.db);
  await leases.saveMany(specs.slice(0, 5).map((s, i) => ({ ip: `10.20.1.${10 + i}`, mac: s.mac, clientId: `01${s.mac.replace(/:/g, '')}`, state: i === 4 ? 'released' : 'bound', expiresAt: new Date(Date.now() + 3_600_000), pool: 'rack' }) as const));
  return { adminToken: admin, operatorToken: token.json.token, bmcNode: uuids[0]!, activeNode: uuids[1]!, nodeCredential, uuids };
}

/** Every backed-up table as its rows' row_to_json text, sorted; plus the sequences. What "the same fleet" means. */
export async function tableRows(handle: DbHandle): Promise<Record<string, string[]>> {
  return handle.db.transaction(async (tx) => {
    await tx.execute(sql`set local timezone = 'UTC'`);
    const tables = rows<{ name: string }>(await tx.execute(sql`select relname as name from pg_class where relnamespace = 'public'::regnamespace and relkind = 'r' order by 1`)).map((r) => r.name);
    const out: Record<string, string[]> = {};
    for (const t of tables.filter((t) => !NOT_BACKED_UP.includes(t))) out[t] = rows<{ j: string }>(await tx.execute(sql.raw(`select row_to_json(x)::text as j from "${t}" x`))).map((r) => r.j).sort();
    for (const s of rows<{ name: string }>(await tx.execute(sql`select relname as name from pg_class where relnamespace = 'public'::regnamespace and relkind = 'S' order by 1`)).map((r) => r.name))
      out[`sequence ${s}`] = rows<{ v: string }>(await tx.execute(sql.raw(`select last_value::text || ' ' || is_called::text as v from "${s}"`))).map((r) => r.v);
    return out;
  });
}

/** What a server on a restored database answers for the fleet `buildFleet` made (the tests assert on it). */
export async function fleetAnswers(server: Pick<Running, 'url'>, fleet: BuiltFleet) {
  const nodes = await call(server, 'GET', '/api/v1/nodes', fleet.operatorToken);
  // opening the BMC password needs the data key, unwrapped by the KEK; then a real login to the BMC
  const power = await call(server, 'GET', `/api/v1/nodes/${fleet.bmcNode}/power`, fleet.adminToken);
  const beat = await call(server, 'POST', `/api/v1/agent/${fleet.activeNode}/heartbeat`, fleet.nodeCredential, { uptimeSeconds: 60 });
  const image = await call(server, 'GET', '/api/v1/images/hypervisor', fleet.operatorToken);
  return {
    nodes: nodes.status === 200 ? (nodes.json.nodes as { uuid: string }[]).map((n) => n.uuid).sort() : nodes.text,
    power: power.status === 200 ? power.json.power : power.text,
    heartbeat: beat.status === 200 ? 'ok' : beat.text,
    canary: image.status === 200 ? JSON.stringify(image.json).includes('"1.1"') : image.text,
  };
}
