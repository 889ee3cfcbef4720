// The BMC probes against a real BMC: OpenIPMI's ipmi_sim (test/harness/ipmisim.ts). On a node ipmitool talks
// in-band through /dev/ipmi0; here the same commands go over IPMI LAN to the simulator, so only the transport
// arguments differ (added by the exec wrapper below).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startIpmiSim, type IpmiSim } from '../../test/harness/ipmisim.ts';
import { spawnExec, type Exec } from '../exec.ts';
import { collectBmcInfo, collectBmcLan } from './ipmitool.ts';

describe('ipmitool probes against ipmi_sim', () => {
  let sim: IpmiSim;
  let exec: Exec;
  beforeAll(async () => {
    sim = await startIpmiSim();
    const base = spawnExec();
    exec = (cmd, args, opts) =>
      cmd === 'ipmitool' ? base(cmd, ['-I', 'lanplus', '-C', '3', '-H', sim.host, '-p', String(sim.port), '-U', sim.username, '-P', sim.password, ...args], opts) : base(cmd, args, opts);
  });
  afterAll(async () => {
    await sim?.stop();
  });

  it('reads LAN settings and firmware', async () => {
    expect(await collectBmcLan(exec)).toEqual({ ipSource: 'Unspecified' });
    expect(await collectBmcInfo(exec)).toMatchObject({ firmwareVersion: '9.08', ipmiVersion: '2.0' });
  });

  it('fails with the command and ipmitool’s complaint when the BMC refuses the login', async () => {
    const base = spawnExec();
    const wrong: Exec = (cmd, args, opts) => base(cmd, ['-I', 'lanplus', '-C', '3', '-H', sim.host, '-p', String(sim.port), '-U', sim.username, '-P', 'wrong-password', ...args], opts);
    await expect(collectBmcLan(wrong)).rejects.toThrow(/ipmitool .*lan print 1: exit 1/);
  });
});
