// The hypervisor self-test (issue 16 item 2): boot one small guest on the node and see it run. Two guests:
//  - linux: the compute image's own kernel (fetched from the server's /images/<digest>, checked against the digest
//    on the command line) with an initramfs made here from the compute OS's busybox: its /init prints the banner on
//    COM1 and idles. Proves userspace; the choice whenever KVM is usable.
//  - multiboot: a few dozen bytes that print the banner on COM1 and halt (multiboot.ts). The choice without KVM: on
//    the test rack the node is itself a TCG VM, and Linux under TCG inside TCG took minutes to reach userspace
//    (measured: agent/README.md), too long for a CI run.
// Either way the guest stays up (idle) as the node's first running guest, listed in heartbeats until the node reboots.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Fetch } from '../client.ts';
import { downloadVerified } from '../kexec/index.ts';
import type { Sleep } from '../retry.ts';
import { newcArchive } from './cpio.ts';
import { startGuest, type HypervisorDeps } from './index.ts';
import { multibootBanner } from './multiboot.ts';

export const SELFTEST_GUEST = 'selftest';
export const GUEST_BANNER = 'BOOTFARM-GUEST-UP';

/** The guest's PID 1: the banner with the guest's own uptime and kernel release, then idle forever (PID 1 must not exit). */
export const GUEST_INIT = `#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox echo "${GUEST_BANNER} uptime=$(/bin/busybox cut -d' ' -f1 /proc/uptime) kernel=$(/bin/busybox uname -r)"
exec /bin/busybox sleep 2147483647
`;

/** /init, /bin/busybox, /proc, and /dev/console (the kernel opens it for init's stdout before any devtmpfs exists). */
export function guestInitramfs(busybox: Uint8Array): Uint8Array {
  return newcArchive([
    { path: 'bin', type: 'dir', mode: 0o755 },
    { path: 'bin/busybox', type: 'file', mode: 0o755, data: busybox },
    { path: 'dev', type: 'dir', mode: 0o755 },
    { path: 'dev/console', type: 'char', mode: 0o600, major: 5, minor: 1 },
    { path: 'init', type: 'file', mode: 0o755, data: new TextEncoder().encode(GUEST_INIT) },
    { path: 'proc', type: 'dir', mode: 0o755 },
  ]);
}

/** The banner line in a serial log, with the guest's uptime when it printed it. */
export function findBanner(serial: string): { line: string; guestUptime?: number; kernel?: string } | undefined {
  const line = serial.split(/\r?\n/).find((l) => l.includes(GUEST_BANNER));
  if (!line) return undefined;
  const up = Number(/uptime=([\d.]+)/.exec(line)?.[1]);
  const kernel = /kernel=(\S+)/.exec(line)?.[1];
  return { line: line.trim().slice(0, 300), ...(Number.isFinite(up) ? { guestUptime: up } : {}), ...(kernel ? { kernel } : {}) };
}

export interface SelfTestOptions extends HypervisorDeps {
  fetch: Fetch;
  sleep: Sleep;
  /** milliseconds, monotonic enough for a duration */
  now: () => number;
  guest: 'linux' | 'multiboot';
  /** the Linux guest's kernel */
  kernelUrl?: string;
  kernelSha256?: string;
  /** the busybox the guest runs (the compute OS's own, statically linked) */
  busybox?: string;
  workDir: string;
  kvm: boolean;
  timeoutMs?: number;
  pollMs?: number;
  memoryMiB?: number;
}

export type SelfTestResult =
  | { ok: true; guest: string; kind: 'linux' | 'multiboot'; accel: 'kvm' | 'tcg'; seconds: number; banner: string; guestUptime?: number; kernel?: string }
  | { ok: false; guest: string; kind: 'linux' | 'multiboot'; accel: 'kvm' | 'tcg'; seconds: number; error: string; serialTail?: string };

export async function hypervisorSelfTest(o: SelfTestOptions): Promise<SelfTestResult> {
  const accel = o.kvm ? 'kvm' : 'tcg';
  const t0 = o.now();
  const seconds = () => Math.round((o.now() - t0) / 100) / 10;
  const kind = o.guest;
  const fail = (error: string, serialTail?: string): SelfTestResult => ({ ok: false, guest: SELFTEST_GUEST, kind, accel, seconds: seconds(), error, ...(serialTail ? { serialTail } : {}) });
  let serial: string;
  try {
    await mkdir(o.workDir, { recursive: true });
    const base = { name: SELFTEST_GUEST, vcpus: 1, memoryMiB: o.memoryMiB ?? 128, accel } as const;
    if (kind === 'linux') {
      if (!o.kernelUrl || !o.kernelSha256) throw new Error('the Linux guest needs the compute kernel: no bootfarm.kernel= digest on the command line');
      const kernel = join(o.workDir, 'selftest-vmlinuz');
      const initrd = join(o.workDir, 'selftest-initrd.cpio');
      await downloadVerified(o.fetch, o.kernelUrl, o.kernelSha256, kernel);
      await writeFile(initrd, guestInitramfs(await readFile(o.busybox ?? '/bin/busybox')));
      // quiet: under nested TCG every console line costs; panic=-1: a guest kernel that panics ends its QEMU at once
      ({ serial } = await startGuest(o, { ...base, kernel, initrd, append: 'console=ttyS0 quiet panic=-1' }));
    } else {
      const kernel = join(o.workDir, 'selftest-multiboot.bin');
      await writeFile(kernel, multibootBanner(`${GUEST_BANNER} kernel=multiboot`));
      ({ serial } = await startGuest(o, { ...base, memoryMiB: o.memoryMiB ?? 16, kernel }));
    }
  } catch (err) {
    return fail((err as Error).message);
  }
  const deadline = t0 + (o.timeoutMs ?? 600_000);
  for (;;) {
    const text = await readFile(serial, 'utf8').catch(() => '');
    const banner = findBanner(text);
    if (banner) return { ok: true, guest: SELFTEST_GUEST, kind, accel, seconds: seconds(), banner: banner.line, ...(banner.guestUptime !== undefined ? { guestUptime: banner.guestUptime } : {}), ...(banner.kernel ? { kernel: banner.kernel } : {}) };
    if (o.now() >= deadline) return fail(`no "${GUEST_BANNER}" on the guest's serial console within ${Math.round((o.timeoutMs ?? 600_000) / 1000)} s`, text.slice(-1500));
    await o.sleep(o.pollMs ?? 2000);
  }
}
