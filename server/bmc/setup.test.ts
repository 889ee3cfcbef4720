// The in-band setup plan, run for real against ipmi_sim. The agent runs it as `ipmitool -I open exec FILE`
// over /dev/ipmi0; this machine has no BMC device, so the test runs the SAME script over the simulator's LAN
// session (`ipmitool -I lanplus … exec FILE`, the commands are identical), then verifies out-of-band with the
// new user exactly as the server does after the agent reports back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildBmcSetupPlan, generateBmcPassword, verifyBmcSetup } from './setup.ts';
import { createBmcFactory } from './index.ts';
import { startIpmiSim, type IpmiSim } from '../../test/harness/ipmisim.ts';

let sim: IpmiSim;
beforeAll(async () => {
  sim = await startIpmiSim({ password: 'factory-pw' });
});
afterAll(() => sim.stop());

const runScript = (file: string) =>
  new Promise<{ code: number; out: string }>((resolve) =>
    execFile('ipmitool', ['-I', 'lanplus', '-C', '3', '-H', sim.host, '-p', String(sim.port), '-U', sim.username, '-E', 'exec', file], { env: { PATH: process.env.PATH!, IPMI_PASSWORD: sim.password } }, (err, stdout, stderr) => resolve({ code: err ? 1 : 0, out: `${stdout}${stderr}` })),
  );

describe('in-band BMC setup plan', () => {
  it('sets address and a new admin user; the server then logs in out-of-band with them', async () => {
    const { plan, password } = buildBmcSetupPlan({ address: '10.20.30.40', netmask: '255.255.255.0', gateway: '10.20.30.1', username: 'bootfarm', port: sim.port });
    expect(plan.redacted).not.toContain(password);
    expect(plan.redacted).toContain('user set password 3 *** 16');
    const file = join(sim.dir, 'plan.txt');
    await writeFile(file, plan.script, { mode: 0o600 });
    const r = await runScript(file);
    expect(r.out).toContain('Setting LAN IP Address to 10.20.30.40');
    expect(r.out).toContain('Set User Password command successful (user 3)');

    const factory = createBmcFactory();
    // ipmi_sim keeps listening on 127.0.0.1 whatever address the plan set; the address is checked in `lan print`
    const ok = await verifyBmcSetup({ driver: 'ipmi', address: sim.host, port: plan.expect.port, username: plan.expect.username, password }, factory);
    expect(ok).toEqual({ ok: true, power: 'off' });

    const bad = await verifyBmcSetup({ driver: 'ipmi', address: sim.host, port: plan.expect.port, username: plan.expect.username, password: 'Wrong0password' }, factory);
    expect(bad.ok).toBe(false);
    if (!bad.ok) {
      expect(bad.kind).toBe('auth');
      expect(bad.message).not.toContain('Wrong0password');
    }
  });

  it('refuses input that would break the exec script, and generates 16-character passwords', () => {
    expect(() => buildBmcSetupPlan({ address: '10.0.0.1', netmask: '255.0.0.0', username: 'a b' })).toThrow();
    expect(() => buildBmcSetupPlan({ address: '10.0.0.1', netmask: '255.0.0.0', username: 'ok', password: 'has space1' })).toThrow();
    expect(() => buildBmcSetupPlan({ address: '10.0.0.300', netmask: '255.0.0.0', username: 'ok' })).toThrow();
    expect(generateBmcPassword()).toMatch(/^[A-Za-z0-9]{16}$/);
    const { plan } = buildBmcSetupPlan({ address: '10.0.0.1', netmask: '255.0.0.0', username: 'ok', vlan: 42 });
    expect(plan.script).toContain('lan set 1 vlan id 42');
  });
});
