// One real IPMI BMC per rack node: OpenIPMI's ipmi_sim serving IPMI v2.0 LAN (RMCP+) on the rack namespace's
// 127.0.0.1, whose chassis_control program is the node's QEMU power program (qemu.ts). The bootfarm server runs
// in the same namespace and drives it with ipmitool exactly as it would a data-centre BMC.
//
// test/harness/ipmisim.ts starts ipmi_sim in the caller's namespace and probes it from there; the rack needs both
// inside its namespace, so this file starts it there with the harness's lan.conf and emu files.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runAsync, startManaged, sleep, type Managed } from './proc.ts';
import { EMU, lanConf } from '../harness/ipmisim.ts';

export interface Bmc {
  host: '127.0.0.1';
  port: number;
  username: string;
  password: string;
  pid: number;
  proc: Managed;
  /** runs ipmitool against this BMC inside the namespace; returns stdout+stderr and the exit status */
  ipmitool(args: string[]): Promise<{ status: number | null; out: string }>;
  stop(): Promise<void>;
}

/** ipmitool inside the namespace. `-C 3`: without it every command takes ~10 s here (FACTS.md). */
export async function ipmitoolIn(netns: string, port: number, username: string, password: string, args: string[], timeoutMs = 20_000) {
  const r = await runAsync(['ipmitool', '-I', 'lanplus', '-C', '3', '-H', '127.0.0.1', '-p', String(port), '-U', username, '-E', '-N', '1', '-R', '2', ...args], {
    netns,
    timeoutMs,
    env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', IPMI_PASSWORD: password },
  });
  return { status: r.status, out: r.stdout + r.stderr };
}

/**
 * Starts ipmi_sim for one node on a fixed UDP port of the namespace's loopback (the namespace is the rack's
 * own, so ports cannot collide with other suites). `control` is the chassis_control program.
 */
export async function startBmc({ netns, dir, port, control, username = 'admin', password = 'bfe2e-bmc-pass', device = '0x20' }: { netns: string; dir: string; port: number; control: string; username?: string; password?: string; device?: string }): Promise<Bmc> {
  mkdirSync(join(dir, 'state'), { recursive: true });
  writeFileSync(join(dir, 'lan.conf'), lanConf(port, username, password, `${control} ${device}`, 'bfe2e'));
  writeFileSync(join(dir, 'node.emu'), EMU);
  const proc = startManaged(`ipmi_sim:${port}`, ['ipmi_sim', '-c', join(dir, 'lan.conf'), '-f', join(dir, 'node.emu'), '-s', join(dir, 'state'), '-n'], { netns, logFile: join(dir, 'ipmi_sim.log') });
  const ipmitool = (args: string[]) => ipmitoolIn(netns, port, username, password, args);
  for (let i = 0; i < 60; i++) {
    if (proc.exited()) break;
    const r = await ipmitoolIn(netns, port, username, password, ['chassis', 'power', 'status'], 5000);
    if (/Chassis Power is/.test(r.out)) {
      return { host: '127.0.0.1', port, username, password, pid: proc.pid, proc, ipmitool, stop: () => proc.stop() };
    }
    await sleep(100);
  }
  await proc.stop();
  throw new Error(`ipmi_sim did not answer on [${netns}] 127.0.0.1:${port}: ${proc.output().slice(-800)}`);
}
