// The compute OS as a hypervisor (issue 16 item 2): what it can host (CPUs, memory, KVM, QEMU) and the guests it
// runs, each a daemonized QEMU with its own directory under /run/bootfarm/guests/<name>/ (spec.json, qemu.pid,
// qmp.sock, serial.log). QEMU is driven directly: argv to start, QMP to ask (images/build.ts says why not libvirt).
// Parsers are pure; the probes take `exec`, `qmp` and paths so the tests hand in their own.
import { access, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { constants } from 'node:fs';
import { join } from 'node:path';
import type { Guest, HypervisorCapacity } from '../../server/contract/agent.ts';
import type { Exec } from '../exec.ts';
import { qmp as realQmp } from './qmp.ts';

export const QEMU = 'qemu-system-x86_64';

export interface HypervisorPaths {
  cpuinfo: string;
  meminfo: string;
  kvmDevice: string;
  /** one directory per guest */
  guestsDir: string;
}

export const DEFAULT_HYPERVISOR_PATHS: HypervisorPaths = { cpuinfo: '/proc/cpuinfo', meminfo: '/proc/meminfo', kvmDevice: '/dev/kvm', guestsDir: '/run/bootfarm/guests' };

export interface HypervisorDeps {
  exec: Exec;
  qmp?: typeof realQmp;
  paths?: Partial<HypervisorPaths>;
  /** is this PID alive (default: signal 0) */
  alive?: (pid: number) => boolean;
}

/** `processor : N` lines of /proc/cpuinfo: the logical CPUs the kernel brought up. */
export function parseCpuCount(cpuinfo: string): number {
  return cpuinfo.split('\n').filter((l) => /^processor\s*:/.test(l)).length;
}

/** MemTotal of /proc/meminfo (kB, as the kernel writes it: KiB) in MiB. */
export function parseMemTotalMiB(meminfo: string): number | undefined {
  const m = /^MemTotal:\s+(\d+)\s*kB/m.exec(meminfo);
  return m ? Math.floor(Number(m[1]) / 1024) : undefined;
}

/** "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)" → "7.2.22". */
export function parseQemuVersion(out: string): string | undefined {
  return /QEMU emulator version (\S+)/.exec(out)?.[1];
}

const defaultAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, owned by someone else
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

export type HostCapacity = Omit<HypervisorCapacity, 'guests'>;

/**
 * What the host offers, probed once per boot: CPUs and memory from /proc, QEMU's version, and whether KVM is usable —
 * /dev/kvm present *and* QEMU able to create a VM with it (`-accel kvm -machine none`, asked over QMP `query-kvm`,
 * then `quit`). A /dev/kvm that exists is not enough: on this project's build machine it is a nested paravirtual
 * device that QEMU cannot use (FACTS.md).
 */
export async function probeHost(deps: HypervisorDeps & { workDir: string }): Promise<HostCapacity> {
  const paths = { ...DEFAULT_HYPERVISOR_PATHS, ...deps.paths };
  const cpus = Math.max(1, parseCpuCount(await readFile(paths.cpuinfo, 'utf8').catch(() => '')));
  const memoryMiB = Math.max(1, parseMemTotalMiB(await readFile(paths.meminfo, 'utf8').catch(() => '')) ?? 1);
  const v = await deps.exec(QEMU, ['--version'], { timeoutMs: 10_000 });
  const version = v.exitCode === 0 ? parseQemuVersion(v.stdout) : undefined;
  if (!version) return { cpus, memoryMiB, kvm: false, kvmDetail: `no QEMU: ${(v.stderr || v.stdout).trim().split('\n').at(-1)?.slice(0, 200) ?? 'no output'}` };
  const qemu = { version };
  if (!(await access(paths.kvmDevice, constants.R_OK | constants.W_OK).then(() => true, () => false))) {
    return { cpus, memoryMiB, kvm: false, kvmDetail: `no usable ${paths.kvmDevice}: the CPU has no VT-x/AMD-V, it is off in the firmware, or kvm_intel/kvm_amd did not load`, qemu };
  }
  const dir = join(deps.workDir, 'kvm-probe');
  await mkdir(dir, { recursive: true });
  const sock = join(dir, 'qmp.sock');
  const r = await deps.exec(QEMU, ['-accel', 'kvm', '-machine', 'none', '-nodefaults', '-no-user-config', '-display', 'none', '-qmp', `unix:${sock},server=on,wait=off`, '-pidfile', join(dir, 'qemu.pid'), '-daemonize'], { timeoutMs: 20_000 });
  if (r.exitCode !== 0) return { cpus, memoryMiB, kvm: false, kvmDetail: `QEMU cannot use ${paths.kvmDevice}: ${(r.stderr.trim().split('\n').at(-1) ?? `exit ${r.exitCode}`).slice(0, 240)}`, qemu };
  try {
    const [kvm] = (await (deps.qmp ?? realQmp)(sock, [{ execute: 'query-kvm' }, { execute: 'quit' }])) as [{ enabled?: boolean; present?: boolean }];
    return kvm?.enabled ? { cpus, memoryMiB, kvm: true, qemu } : { cpus, memoryMiB, kvm: false, kvmDetail: `QEMU's query-kvm: ${JSON.stringify(kvm)}`, qemu };
  } catch (err) {
    return { cpus, memoryMiB, kvm: false, kvmDetail: `KVM probe: ${(err as Error).message}`.slice(0, 300), qemu };
  }
}

export interface GuestSpec {
  name: string;
  vcpus: number;
  memoryMiB: number;
  accel: 'kvm' | 'tcg';
  kernel: string;
  /** a Linux guest's initramfs and command line; a Multiboot kernel (agent/hypervisor/multiboot.ts) has neither */
  initrd?: string;
  append?: string;
}

/**
 * QEMU's argv for a guest in `dir`: no default devices, no display, no NIC (its ROM would be needed, and a guest
 * network is not this step), COM1 to a file the agent reads, QMP on a unix socket, daemonized with a pidfile so the
 * guest outlives the exec call. QEMU's default CPU model either way (not `-cpu host`: on the test rack the "host" is
 * TCG's emulated `max` CPU under nested KVM, and the default is what was measured to work); under TCG a 128 MiB
 * translation cache.
 */
export function qemuArgs(spec: GuestSpec, dir: string): string[] {
  return [
    '-name', `guest=${spec.name}`,
    '-machine', 'pc',
    // TCG's translation cache defaults to 1 GiB (reserved, filled as code is translated): bounded here, so a guest on
    // a node without KVM cannot take the compute OS's memory (the rack's nodes have 1 GiB in all)
    '-accel', spec.accel === 'tcg' ? 'tcg,tb-size=128' : 'kvm',
    '-smp', String(spec.vcpus),
    '-m', String(spec.memoryMiB),
    '-nodefaults', '-no-user-config',
    '-vga', 'none', '-display', 'none',
    '-nic', 'none',
    '-serial', `file:${join(dir, 'serial.log')}`,
    '-qmp', `unix:${join(dir, 'qmp.sock')},server=on,wait=off`,
    '-pidfile', join(dir, 'qemu.pid'),
    '-daemonize',
    '-kernel', spec.kernel,
    ...(spec.initrd ? ['-initrd', spec.initrd] : []),
    ...(spec.append ? ['-append', spec.append] : []),
  ];
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** Starts a guest; returns its directory (serial.log there) once QEMU has daemonized. Refuses a name that runs. */
export async function startGuest(deps: HypervisorDeps, spec: GuestSpec): Promise<{ dir: string; serial: string }> {
  if (!NAME.test(spec.name)) throw new Error(`guest name ${JSON.stringify(spec.name)}: 1–64 letters, digits, "_", "." or "-"`);
  const paths = { ...DEFAULT_HYPERVISOR_PATHS, ...deps.paths };
  const dir = join(paths.guestsDir, spec.name);
  const pid = await readPid(dir);
  if (pid && (deps.alive ?? defaultAlive)(pid)) throw new Error(`guest ${spec.name} is already running (pid ${pid})`);
  await mkdir(dir, { recursive: true });
  const serial = join(dir, 'serial.log');
  await writeFile(serial, '');
  await writeFile(join(dir, 'spec.json'), `${JSON.stringify({ ...spec, startedAt: new Date().toISOString() })}\n`);
  const r = await deps.exec(QEMU, qemuArgs(spec, dir), { timeoutMs: 60_000 });
  if (r.exitCode !== 0 || r.timedOut) throw new Error(`${QEMU} for guest ${spec.name}: ${r.timedOut ? 'timed out' : `exit ${r.exitCode}`}: ${r.stderr.trim().split('\n').slice(-3).join(' | ').slice(0, 400)}`);
  return { dir, serial };
}

async function readPid(dir: string): Promise<number | undefined> {
  const n = Number((await readFile(join(dir, 'qemu.pid'), 'utf8').catch(() => '')).trim());
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

/** The guests whose QEMU is alive, by name, with QEMU's run state (`unknown` when QMP does not answer). */
export async function listGuests(deps: HypervisorDeps): Promise<Guest[]> {
  const paths = { ...DEFAULT_HYPERVISOR_PATHS, ...deps.paths };
  const names = (await readdir(paths.guestsDir).catch(() => [] as string[])).filter((n) => NAME.test(n)).sort();
  const out: Guest[] = [];
  for (const name of names) {
    const dir = join(paths.guestsDir, name);
    const pid = await readPid(dir);
    // a guest that powered off took its QEMU with it (no -no-shutdown): it is no longer a guest of this node
    if (!pid || !(deps.alive ?? defaultAlive)(pid)) continue;
    const spec = JSON.parse(await readFile(join(dir, 'spec.json'), 'utf8').catch(() => '{}')) as Partial<GuestSpec>;
    let status = 'unknown';
    try {
      const [s] = (await (deps.qmp ?? realQmp)(join(dir, 'qmp.sock'), [{ execute: 'query-status' }], { timeoutMs: 3000 })) as [{ status?: string }];
      if (s?.status && /^[a-z][a-z-]{0,31}$/.test(s.status)) status = s.status;
    } catch {
      // a QEMU busy starting, or wedged: it exists, its state is not known
    }
    out.push({ name, status, ...(spec.vcpus ? { vcpus: spec.vcpus } : {}), ...(spec.memoryMiB ? { memoryMiB: spec.memoryMiB } : {}) });
  }
  return out;
}
