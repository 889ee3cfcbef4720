// The in-band BMC setup routes through the real app (createApp + bmcSetupMount) over a migrated PGlite, with a
// real BMC: OpenIPMI's ipmi_sim. The agent's half is played by HTTP calls plus ipmitool running the plan's
// script. On a node the agent runs it in-band (`ipmitool -I open exec FILE`, /dev/ipmi0); this host has no
// /dev/ipmi0, so the test runs the SAME script over the simulator's LAN session (`-I lanplus … exec FILE`,
// identical commands). The server's out-of-band verification is the real one: ipmitool over lanplus.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startIpmiSim, type IpmiSim } from '../../test/harness/ipmisim.ts';
import { bootToken, client, FixedCatalog, TEST_KEY, testConfig, TOKENS } from '../../test/fakes/app.ts';
import { createTestDb } from '../../test/fakes/db.ts';
import { createBmcFactory } from '../bmc/index.ts';
import { FakeClock } from '../clock.ts';
import type { DbHandle } from '../db/index.ts';
import { allowAll } from '../domain/inspection.ts';
import { createLogger } from '../log.ts';
import { createSecrets } from '../secrets.ts';
import { createBmcStore } from '../store/bmcs.ts';
import { createNodeStore } from '../store/nodes.ts';
import { createApp } from './app.ts';
import { bmcSetupMount } from './bmc-setup.ts';
import { createBmcSetupStore } from '../store/bmc-setups.ts';

const UUID = '4c4c4544-0042-3510-8052-b4c04f4e4d40';
const OTHER = '4c4c4544-0042-3510-8052-b4c04f4e4d41';

let db: DbHandle;
let sim: IpmiSim;
let app: ReturnType<typeof createApp>;
let api: ReturnType<typeof client>;
/** the node's own address: its stage-1 agent calls come from where its /ipxe request came from */
const NODE_IP = '10.0.0.21';
let nodeApi: ReturnType<typeof client>;
let nodes: ReturnType<typeof createNodeStore>;
let bmcs: ReturnType<typeof createBmcStore>;
let logText = '';
const clock = new FakeClock('2026-11-21T09:00:00Z');

beforeAll(async () => {
  [db, sim] = await Promise.all([createTestDb(), startIpmiSim({ password: 'factory-pw' })]);
  nodes = createNodeStore(db.db, { clock });
  bmcs = createBmcStore(db.db, createSecrets(TEST_KEY), { clock });
  // every log line at debug level is kept, to prove the password never reaches the log
  const log = createLogger({ level: 'debug', destination: new Writable({ write: (chunk, _e, cb) => ((logText += String(chunk)), cb()) }) as never });
  app = createApp(
    { config: testConfig(), db, nodes, bmcs, images: new FixedCatalog(), inspection: allowAll, log, clock },
    { extra: [bmcSetupMount({ nodes, bmcs, setups: createBmcSetupStore(db.db, { secrets: createSecrets(TEST_KEY), clock }), clock, createBmc: createBmcFactory(), log })] },
  );
  api = client(app);
  nodeApi = client(app, { from: NODE_IP });
});

/** A stage-1 token of a boot the server started (as a rebuild or power action would), fetched from `from`. */
async function serverStartedBoot(uuid: string, from = NODE_IP): Promise<string> {
  await client(app, { from }).get(`/ipxe/${uuid}`);
  await nodes.expectBoot(uuid, 'test: the server power-cycled the node');
  return bootToken(app, uuid, { from });
}

afterAll(async () => {
  await sim?.stop();
  await db?.close();
});

/** What the agent does with the plan, over LAN instead of /dev/ipmi0 (see the header). */
async function runPlan(script: string): Promise<{ code: number; out: string }> {
  const file = join(sim.dir, `plan-${Date.now()}.txt`);
  await writeFile(file, script, { mode: 0o600 });
  return new Promise((resolve) =>
    execFile('ipmitool', ['-I', 'lanplus', '-C', '3', '-H', sim.host, '-p', String(sim.port), '-U', sim.username, '-E', 'exec', file], { env: { PATH: process.env.PATH!, IPMI_PASSWORD: sim.password } }, (err, stdout, stderr) =>
      resolve({ code: err ? 1 : 0, out: `${stdout}${stderr}` }),
    ),
  );
}

const request = (uuid: string, body: unknown, token = TOKENS.admin) => api.post(`/api/v1/nodes/${uuid}/bmc/setup`, { token, body });
// ipmi_sim listens on 127.0.0.1 whatever the plan sets, so the plan sets 127.0.0.1 and the verify reaches it
const good = () => ({ address: '127.0.0.1', netmask: '255.0.0.0', gateway: '127.0.0.1', username: 'bootfarm', port: sim.port });

describe('in-band BMC setup', () => {
  let token: string;
  let firstPassword: string;

  it('takes a request only from an admin, with valid input, for a known node, and never returns the password', async () => {
    token = await serverStartedBoot(UUID);
    expect((await request(UUID, good(), TOKENS.operator)).status).toBe(403);
    expect((await api.post(`/api/v1/nodes/${UUID}/bmc/setup`, { body: good() })).status).toBe(401);
    const bad = await request(UUID, { ...good(), address: '10.0.0.300' });
    expect(bad.status).toBe(400);
    expect(bad.json.error.message).toMatch(/^address: an IPv4 address/);
    // the password is the server's to make: a body that brings one is refused
    expect((await request(UUID, { ...good(), password: 'Mine12345' })).status).toBe(400);
    expect((await request(OTHER, good())).status).toBe(404);
    expect((await api.post(`/api/v1/nodes/${UUID}/bmc/setup`, { token: TOKENS.admin, raw: '{"address":' })).status).toBe(400);

    const res = await request(UUID, good());
    expect(res.status).toBe(202);
    expect(res.json).toMatchObject({ uuid: UUID, state: 'pending', expect: { address: '127.0.0.1', port: sim.port, username: 'bootfarm' }, requestedBy: 'api:admin' });
    expect(res.json.redacted).toContain('user set password 3 *** 16');
    expect(res.text).not.toMatch(/user set password 3 [A-Za-z0-9]{16}/);
    const status = await api.get(`/api/v1/nodes/${UUID}/bmc/setup`, { token: TOKENS.viewer });
    expect(status.json).toMatchObject({ setupId: res.json.setupId, state: 'pending' });
  });

  it('hands the plan to the node once, runs it on a real BMC, verifies out-of-band and only then stores the credentials', async () => {
    expect((await nodeApi.get(`/api/v1/agent/${UUID}/bmc-setup`)).status).toBe(401);
    expect((await nodeApi.get(`/api/v1/agent/${UUID}/bmc-setup`, { token: 'not-this-boot' })).status).toBe(403);
    const offer = await nodeApi.get(`/api/v1/agent/${UUID}/bmc-setup`, { token });
    expect(offer.status).toBe(200);
    expect(offer.json).toMatchObject({ pending: true, plan: { version: 1, interface: 'open', channel: 1, userId: 3 } });
    const { setupId, plan } = offer.json as { setupId: string; plan: { script: string } };
    firstPassword = /user set password 3 (\S+) 16/.exec(plan.script)![1]!;
    expect(firstPassword).toMatch(/^[A-Za-z0-9]{16}$/);
    // once: the same boot (or a replay) asking again gets nothing
    expect((await nodeApi.get(`/api/v1/agent/${UUID}/bmc-setup`, { token })).json).toEqual({ pending: false });
    expect(await bmcs.get(UUID)).toBeNull();

    const ran = await runPlan(plan.script);
    expect(ran.out).toContain('Set User Password command successful (user 3)');

    expect((await nodeApi.post(`/api/v1/agent/${UUID}/bmc-setup`, { token, body: { setupId: 'someone-else', exitCode: 0 } })).status).toBe(409);
    const t0 = Date.now();
    const done = await nodeApi.post(`/api/v1/agent/${UUID}/bmc-setup`, { token, body: { setupId, exitCode: 0, output: ran.out, durationMs: 900 } });
    const verifyMs = Date.now() - t0;
    expect(done.status, done.text).toBe(200);
    expect(done.json).toEqual({ setupId, ok: true, state: 'verified', message: `logged in out-of-band as bootfarm at 127.0.0.1:${sim.port} (power off); credentials stored` });
    console.log(`out-of-band verification against ipmi_sim: ${verifyMs} ms`);
    // a result is taken once
    expect((await nodeApi.post(`/api/v1/agent/${UUID}/bmc-setup`, { token, body: { setupId, exitCode: 0 } })).status).toBe(409);

    const creds = await bmcs.getCredentials(UUID);
    expect(creds).toMatchObject({ driver: 'ipmi', address: '127.0.0.1', port: sim.port, username: 'bootfarm', password: firstPassword });
    const shown = await api.get(`/api/v1/nodes/${UUID}/bmc`, { token: TOKENS.viewer });
    expect(shown.json.bmc).toMatchObject({ username: 'bootfarm', address: '127.0.0.1' });
    expect(shown.text).not.toContain(firstPassword);
  });

  it('does not store credentials the BMC refuses, and says why', async () => {
    const req = await request(UUID, good());
    const offer = await nodeApi.get(`/api/v1/agent/${UUID}/bmc-setup`, { token });
    const secondPassword = /user set password 3 (\S+) 16/.exec(offer.json.plan.script)![1]!;
    expect(secondPassword).not.toBe(firstPassword);
    // the script is NOT run (a BMC that ignored it; ipmitool would still exit 0): the new password cannot log in
    const res = await nodeApi.post(`/api/v1/agent/${UUID}/bmc-setup`, { token, body: { setupId: req.json.setupId, exitCode: 0, output: `echoed ${secondPassword}` } });
    expect(res.json).toMatchObject({ ok: false, state: 'failed' });
    expect(res.json.message).toMatch(/^out-of-band login as bootfarm at 127\.0\.0\.1:\d+ failed \(auth\): .*; credentials not stored$/);
    expect(res.text).not.toContain(secondPassword);
    expect((await bmcs.getCredentials(UUID))!.password).toBe(firstPassword);

    // a failed run on the node is not verified at all
    const third = await request(UUID, good());
    await nodeApi.get(`/api/v1/agent/${UUID}/bmc-setup`, { token });
    const failed = await nodeApi.post(`/api/v1/agent/${UUID}/bmc-setup`, { token, body: { setupId: third.json.setupId, exitCode: 1, output: 'Could not open device at /dev/ipmi0' } });
    expect(failed.json).toMatchObject({ ok: false, state: 'failed', message: 'ipmitool exited 1 on the node; credentials not stored' });

    const events = (await api.get(`/api/v1/nodes/${UUID}/events`, { token: TOKENS.viewer })).json.events.slice().reverse() as { kind: string; reason: string; data: unknown }[];
    const bmc = events.filter((e) => e.kind === 'bmc').map((e) => e.reason.replace(/[0-9a-f-]{36}/g, 'ID').replace(/:\d{4,5}/g, ':PORT'));
    expect(bmc).toEqual([
      'BMC setup ID requested: channel 1 127.0.0.1/255.0.0.0, user 3 bootfarm',
      'BMC setup ID handed to the stage-1 agent',
      'BMC enrolled: ipmi 127.0.0.1:PORT as bootfarm',
      'BMC setup ID verified: logged in out-of-band as bootfarm at 127.0.0.1:PORT (power off); credentials stored',
      'BMC setup ID requested: channel 1 127.0.0.1/255.0.0.0, user 3 bootfarm',
      'BMC setup ID handed to the stage-1 agent',
      expect.stringMatching(/^BMC setup ID failed: out-of-band login as bootfarm at 127\.0\.0\.1:PORT failed \(auth\)/),
      'BMC setup ID requested: channel 1 127.0.0.1/255.0.0.0, user 3 bootfarm',
      'BMC setup ID handed to the stage-1 agent',
      'BMC setup ID failed: ipmitool exited 1 on the node; credentials not stored',
    ]);
    const all = JSON.stringify(events) + logText;
    expect(logText.length).toBeGreaterThan(0);
    for (const pw of [firstPassword, secondPassword]) expect(all).not.toContain(pw);
  });

  it('drops a request that no stage-1 picked up within the hour', async () => {
    await request(UUID, good());
    clock.advance(61 * 60_000);
    // (the old stage-1 token expired meanwhile too: 30 min without use)
    expect((await nodeApi.get(`/api/v1/agent/${UUID}/bmc-setup`, { token })).status).toBe(403);
    token = await serverStartedBoot(UUID);
    expect((await nodeApi.get(`/api/v1/agent/${UUID}/bmc-setup`, { token })).json).toEqual({ pending: false });
    expect((await api.get(`/api/v1/nodes/${UUID}/bmc/setup`, { token: TOKENS.viewer })).json).toMatchObject({ state: 'expired', message: 'not completed within 60 min' });
  });

  it('withholds the plan from a boot the server did not start, from any other address, and takes the result only from the attempt that got it', async () => {
    const U = '4c4c4544-0042-3510-8052-b4c04f4e4d42';
    const withheld = async () => ((await api.get(`/api/v1/nodes/${U}/events`, { token: TOKENS.viewer })).json.events.slice().reverse() as { kind: string; reason: string }[]).filter((e) => e.reason.includes('withheld')).map((e) => e.reason);

    // a node that is not active hands a stage-1 token to anyone who asks: not enough for a secret
    const unasked = await bootToken(app, U, { from: NODE_IP });
    const req = await request(U, good());
    expect((await nodeApi.get(`/api/v1/agent/${U}/bmc-setup`, { token: unasked })).json).toEqual({ pending: false });
    expect((await withheld()).at(-1)).toMatch(/withheld from boot attempt \d+: this boot was not started by the server/);

    // the server starts the boot; someone else fetches /ipxe first, from elsewhere
    await nodes.expectBoot(U, 'test: rebuild');
    const intruder = await bootToken(app, U, { from: '10.0.0.99' });
    const real = await bootToken(app, U, { from: NODE_IP });
    // the intruder's attempt was server-started too, but the real node's address also holds one: nobody gets it
    expect((await client(app, { from: '10.0.0.99' }).get(`/api/v1/agent/${U}/bmc-setup`, { token: intruder })).json).toEqual({ pending: false });
    expect((await withheld()).at(-1)).toMatch(/other addresses \(10\.0\.0\.21\) hold open boot attempts/);
    // the real node's token used from another address
    expect((await client(app, { from: '10.0.0.98' }).get(`/api/v1/agent/${U}/bmc-setup`, { token: real })).json).toEqual({ pending: false });
    expect((await withheld()).at(-1)).toMatch(/asked from 10\.0\.0\.98, but the boot attempt's \/ipxe request came from 10\.0\.0\.21/);
    expect((await api.get(`/api/v1/nodes/${U}/bmc/setup`, { token: TOKENS.viewer })).json.state).toBe('pending');

    // the intruder's attempt ends (the same address asks again and supersedes it … here: it expires)
    clock.advance(31 * 60_000);
    await nodeApi.get(`/api/v1/agent/${U}/bmc-setup`, { token: real }).catch(() => undefined);
    await nodes.expectBoot(U, 'test: rebuild again');
    const fresh = await bootToken(app, U, { from: NODE_IP });
    const offer = await nodeApi.get(`/api/v1/agent/${U}/bmc-setup`, { token: fresh });
    expect(offer.json).toMatchObject({ pending: true, setupId: req.json.setupId });
    // once
    expect((await nodeApi.get(`/api/v1/agent/${U}/bmc-setup`, { token: fresh })).json).toEqual({ pending: false });
    // the result only from the attempt that got the plan, from its address
    const other = await bootToken(app, U, { from: '10.0.0.97' });
    expect((await client(app, { from: '10.0.0.97' }).post(`/api/v1/agent/${U}/bmc-setup`, { token: other, body: { setupId: req.json.setupId, exitCode: 1 } })).status).toBe(403);
    const done = await nodeApi.post(`/api/v1/agent/${U}/bmc-setup`, { token: fresh, body: { setupId: req.json.setupId, exitCode: 1, output: 'no /dev/ipmi0' } });
    expect(done.json).toMatchObject({ ok: false, state: 'failed' });
  });
});
