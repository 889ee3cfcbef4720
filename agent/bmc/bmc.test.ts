// The agent's in-band BMC setup inside its real stage-1 flow, against the REAL server (createApp + the
// bmc-setup mount, over HTTP on 127.0.0.1) and a real BMC (OpenIPMI's ipmi_sim).
// On a node the agent runs `ipmitool -I open exec FILE` through /dev/ipmi0. This host has no /dev/ipmi0, so
// the test's exec runs that same command with `-I open` swapped for the simulator's LAN session
// (`-I lanplus -C 3 -H 127.0.0.1 -p PORT -U admin -E`): same script, same ipmitool, a different transport.
// Everything else is real: the file the agent writes, its mode, its removal, the server's out-of-band login.
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../server/api/app.ts';
import { bmcSetupMount } from '../../server/api/bmc-setup.ts';
import { createBmcSetupStore } from '../../server/store/bmc-setups.ts';
import { createBmcFactory } from '../../server/bmc/index.ts';
import { systemClock } from '../../server/clock.ts';
import type { DbHandle } from '../../server/db/index.ts';
import { allowAll } from '../../server/domain/inspection.ts';
import { silentLogger } from '../../server/log.ts';
import { createSecrets } from '../../server/secrets.ts';
import { createBmcStore } from '../../server/store/bmcs.ts';
import { createNodeStore } from '../../server/store/nodes.ts';
import { startIpmiSim, type IpmiSim } from '../../test/harness/ipmisim.ts';
import { client, FixedCatalog, TEST_KEY, testConfig, TOKENS } from '../../test/fakes/app.ts';
import { createTestDb } from '../../test/fakes/db.ts';
import { createAgentClient } from '../client.ts';
import { spawnExec, type Exec } from '../exec.ts';
import { runAgent } from '../flow.ts';
import { FixtureExec } from '../../test/support/agent/fixtures.ts';
import { redactSecrets, scriptSecrets } from './index.ts';
import { BmcSetupOffer } from '../../server/contract/bmc-setup.ts';

const UUID = '4c4c4544-0042-3510-8052-b4c04f4e4d32'; // the captured dmidecode's UUID
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const KERNEL = Buffer.from('kernel\n'.repeat(100));
const INITRD = Buffer.from('initrd\n'.repeat(100));

let db: DbHandle;
let sim: IpmiSim;
let server: ServerType;
let base: string;
let app: ReturnType<typeof createApp>;
let bmcs: ReturnType<typeof createBmcStore>;
let nodes: ReturnType<typeof createNodeStore>;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bfagent-bmc-'));
  [db, sim] = await Promise.all([createTestDb(), startIpmiSim({ password: 'factory-pw' })]);
  const clock = systemClock;
  nodes = createNodeStore(db.db, { clock });
  bmcs = createBmcStore(db.db, createSecrets(TEST_KEY), { clock });
  const blobs = new Map([KERNEL, INITRD].map((b) => [sha256(b), b]));
  const images = new FixedCatalog({ hypervisor: { name: 'hypervisor', version: '1', kernel: { digest: sha256(KERNEL) }, initrd: { digest: sha256(INITRD) }, cmdline: 'quiet' } });
  const blobRoute = new Hono().get('/images/:digest', (c) => {
    const b = blobs.get(c.req.param('digest'));
    return b ? c.body(new Uint8Array(b)) : c.notFound();
  });
  app = createApp(
    { config: testConfig({ http: {} }), db, nodes, bmcs, images, inspection: allowAll, log: silentLogger(), clock },
    { extra: [bmcSetupMount({ nodes, bmcs, setups: createBmcSetupStore(db.db, { secrets: createSecrets(TEST_KEY), clock }), clock, createBmc: createBmcFactory() }), () => ({ at: '/', app: blobRoute })] },
  );
  await new Promise<void>((resolve) => {
    server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve());
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await sim?.stop();
  await db?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('in-band BMC setup in the stage-1 flow', () => {
  it('picks up the pending plan, runs it from a 0600 file it then deletes, and the server stores verified credentials', async () => {
    const api = client(app);
    // the plan goes only to a boot the server started, asked for from the address its /ipxe request came from:
    // enrol, let the server start a boot (as a rebuild would), then /ipxe over HTTP from 127.0.0.1 like the agent
    await (await fetch(`${base}/ipxe/${UUID}`)).text();
    await nodes.expectBoot(UUID, 'test: rebuild');
    const script = await (await fetch(`${base}/ipxe/${UUID}`)).text();
    const token = /bootfarm\.token=(\S+)/.exec(script)![1]!;
    const req = await api.post(`/api/v1/nodes/${UUID}/bmc/setup`, { token: TOKENS.admin, body: { address: '127.0.0.1', netmask: '255.0.0.0', username: 'bootfarm', port: sim.port } });
    expect(req.status).toBe(202);

    const fixtures = new FixtureExec({ dmidecode: 'dmidecode-qemu-smbios.txt', 'ethtool -i eth0': 'ethtool-i-virtio_net.txt' });
    const real = spawnExec();
    const seen: { args: readonly string[]; mode: number }[] = [];
    const exec: Exec = async (cmd, args, opts) => {
      if (cmd !== 'ipmitool') return fixtures.exec(cmd, args, opts);
      const file = args.at(-1)!;
      seen.push({ args, mode: statSync(file).mode & 0o777 });
      // -I open (in-band) → the simulator's LAN session; see the header
      expect(args.slice(0, 3)).toEqual(['-I', 'open', 'exec']);
      return real('ipmitool', ['-I', 'lanplus', '-C', '3', '-H', sim.host, '-p', String(sim.port), '-U', sim.username, '-E', 'exec', file], { ...opts, env: { IPMI_PASSWORD: sim.password } });
    };
    const workDir = join(dir, 'work');
    writeFileSync(join(dir, 'cmdline'), `bootfarm.server=${base} bootfarm.token=${token} bootfarm.mode=stage1\n`);
    const logged: string[] = [];
    const r = await runAgent({
      exec,
      fetch: (i, init) => fetch(i, init),
      sleep: async () => undefined,
      now: () => new Date(),
      attempts: 2,
      dryRun: true,
      paths: { cmdline: join(dir, 'cmdline'), workDir, sysNet: join(dir, 'no-nics'), ipmiDevice: join(dir, 'no-ipmi') },
      log: (l) => logged.push(l),
      print: () => undefined,
    });
    expect(r.outcome).toBe('kexec');
    expect(seen).toHaveLength(1);
    expect(seen[0]!.mode).toBe(0o600);
    expect(readdirSync(workDir).filter((f) => f.startsWith('bmc-setup-'))).toEqual([]);

    const creds = await bmcs.getCredentials(UUID);
    expect(creds).toMatchObject({ driver: 'ipmi', address: '127.0.0.1', port: sim.port, username: 'bootfarm' });
    expect(creds!.password).toMatch(/^[A-Za-z0-9]{16}$/);

    const events = (await api.get(`/api/v1/nodes/${UUID}/events?limit=1000`, { token: TOKENS.viewer })).json.events.slice().reverse() as { kind: string; reason: string; actor: string; data: { phase?: string; message?: string } | null }[];
    const agent = events.filter((e) => e.actor === 'agent' && e.data?.message !== undefined).map((e) => e.data!.phase);
    expect(agent).toEqual(['stage1-started', 'facts-collected', 'registered', 'bmc-setup-started', 'bmc-setup-done', 'profile-fetched', 'image-downloaded', 'kexec-started']);
    expect(events.find((e) => e.data?.phase === 'bmc-setup-done')?.data?.message).toMatch(/^logged in out-of-band as bootfarm at 127\.0\.0\.1:\d+ \(power off\); credentials stored$/);
    // the password is nowhere: not in the timeline (the agent's redacted script is), not in the agent's log
    const everything = JSON.stringify(events) + logged.join('\n');
    expect(everything).toContain('user set password 3 *** 16');
    expect(everything).not.toContain(creds!.password);

    // the plan was handed out once: a second stage-1 in the same boot finds nothing pending
    const again = await createAgentClient({ server: base, token }).bmcSetup(UUID);
    expect(BmcSetupOffer.parse(again)).toEqual({ pending: false });
  });

  it('finds the password lines of a plan and masks them', () => {
    const script = 'lan set 1 ipsrc static\nuser set name 3 bf\nuser set password 3 Abc123xyz0987654 16\nuser enable 3\n';
    expect(scriptSecrets(script)).toEqual(['Abc123xyz0987654']);
    expect(redactSecrets('Set User Password ... Abc123xyz0987654 ok', scriptSecrets(script))).toBe('Set User Password ... *** ok');
  });
});
