// The compute OS's hypervisor side (issue 16 item 2): parsers over captured output, the newc writer checked by
// GNU cpio itself, QMP against a unix-socket peer that speaks the protocol, guests and the self-test with exec and
// QMP handed in. QEMU itself runs on the test rack (test/e2e/rack.e2e.test.ts scenario 1), never here.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Exec, ExecResult } from '../exec.ts';
import { fixture } from '../../test/support/agent/fixtures.ts';
import { newcArchive } from './cpio.ts';
import { listGuests, parseCpuCount, parseMemTotalMiB, parseQemuVersion, probeHost, qemuArgs, startGuest, type GuestSpec } from './index.ts';
import { qmp, QmpError } from './qmp.ts';
import { findBanner, GUEST_BANNER, guestInitramfs, hypervisorSelfTest } from './selftest.ts';
import { multibootBanner } from './multiboot.ts';

const ok = (command: string, stdout = '', stderr = ''): ExecResult => ({ command, exitCode: 0, signal: null, stdout, stderr, timedOut: false });
const failed = (command: string, exitCode: number, stderr: string): ExecResult => ({ command, exitCode, signal: null, stdout: '', stderr, timedOut: false });

/** QEMU 7.2.22's greeting, captured on this machine 2026-12-03 from the self-test's own argv (the Multiboot guest under
 * TCG); the answers are as captured too: query-status {"status":"running","singlestep":false,"running":true}, query-kvm
 * {"enabled":false,"present":true} (this host's /dev/kvm is there, QEMU runs TCG), quit {} */
const GREETING = { QMP: { version: { qemu: { micro: 22, minor: 2, major: 7 }, package: 'Debian 1:7.2+dfsg-7+deb12u18+b3' }, capabilities: ['oob'] } };

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'bfhv-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('capacity parsers', () => {
  it('counts the CPUs and reads MemTotal of a QEMU guest (-smp 2 -m 256) and the version line of Debian 12 QEMU', () => {
    expect(parseCpuCount(fixture('cpuinfo-qemu-tcg.txt'))).toBe(2);
    expect(parseMemTotalMiB(fixture('meminfo-qemu-tcg.txt'))).toBe(218); // 223388 kB
    expect(parseQemuVersion(fixture('qemu-version.txt'))).toBe('7.2.22');
    expect(parseQemuVersion('sh: qemu-system-x86_64: not found')).toBeUndefined();
    expect(parseMemTotalMiB('MemFree: 1 kB')).toBeUndefined();
  });
});

describe('newc cpio writer', () => {
  it('writes an archive GNU cpio lists and extracts byte for byte, with a character device and modes kept', () => {
    const data = new Uint8Array(5000).map((_, i) => i % 251);
    const arc = newcArchive([
      { path: 'bin', type: 'dir', mode: 0o755 },
      { path: 'bin/tool', type: 'file', mode: 0o755, data },
      { path: 'dev', type: 'dir', mode: 0o755 },
      { path: 'dev/console', type: 'char', mode: 0o600, major: 5, minor: 1 },
      { path: 'init', type: 'file', mode: 0o644, data: new TextEncoder().encode('odd-length\n') },
    ]);
    expect(arc.length % 4).toBe(0);
    const file = join(dir, 'a.cpio');
    writeFileSync(file, arc);
    const list = spawnSync('cpio', ['-itv', '--quiet', '-F', file], { encoding: 'utf8' });
    expect(list.status, list.stderr).toBe(0);
    const lines = list.stdout.trim().split('\n');
    expect(lines.map((l) => l.split(/\s+/).at(-1))).toEqual(['bin', 'bin/tool', 'dev', 'dev/console', 'init']);
    expect(lines[1]).toMatch(/^-rwxr-xr-x .* 5000 /);
    expect(lines[3]).toMatch(/^crw------- .* 5,\s+1 /);
    const out = join(dir, 'x');
    mkdirSync(out);
    // --no-absolute-filenames and no device nodes needed to compare contents: extract the files only
    const ex = spawnSync('cpio', ['-id', '--quiet', '-F', file, 'bin/tool', 'init'], { cwd: out, encoding: 'utf8' });
    expect(ex.status, ex.stderr).toBe(0);
    expect(new Uint8Array(readFileSync(join(out, 'bin/tool')))).toEqual(data);
    expect(readFileSync(join(out, 'init'), 'utf8')).toBe('odd-length\n');
  });

  it('refuses absolute paths', () => {
    expect(() => newcArchive([{ path: '/init', type: 'dir', mode: 0o755 }])).toThrow(/bad path "\/init"/);
  });

  it("builds the self-test guest's initramfs with /init printing the banner and a /dev/console", () => {
    const file = join(dir, 'g.cpio');
    writeFileSync(file, guestInitramfs(new TextEncoder().encode('not really busybox')));
    const list = spawnSync('cpio', ['-it', '--quiet', '-F', file], { encoding: 'utf8' });
    expect(list.stdout.trim().split('\n')).toEqual(['bin', 'bin/busybox', 'dev', 'dev/console', 'init', 'proc']);
  });
});

/** A unix-socket peer speaking QMP: greeting, capabilities, then `answers[execute]` (or an error for the rest). */
function fakeQmp(path: string, answers: Record<string, unknown>, seen: string[] = []): Promise<Server> {
  const srv = createServer((c) => {
    c.write(`${JSON.stringify(GREETING)}\r\n`);
    let buf = '';
    let negotiated = false;
    c.on('data', (d) => {
      buf += d.toString();
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const cmd = JSON.parse(buf.slice(0, nl)) as { execute: string };
        buf = buf.slice(nl + 1);
        seen.push(cmd.execute);
        if (cmd.execute === 'qmp_capabilities') {
          negotiated = true;
          c.write('{"return": {}}\r\n');
        } else if (!negotiated) c.write('{"error": {"class": "CommandNotFound", "desc": "Expecting capabilities negotiation with \'qmp_capabilities\'"}}\r\n');
        else if (cmd.execute === 'quit') {
          c.write('{"return": {}}\r\n{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}\r\n');
          c.end();
        } else if (cmd.execute in answers) {
          // an asynchronous event first: the client must skip it
          c.write(`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "RTC_CHANGE", "data": {"offset": 0}}\r\n{"return": ${JSON.stringify(answers[cmd.execute])}}\r\n`);
        } else c.write(`{"error": {"class": "CommandNotFound", "desc": "The command ${cmd.execute} has not been found"}}\r\n`);
      }
    });
  });
  return new Promise((resolve) => srv.listen(path, () => resolve(srv)));
}

describe('QMP client', () => {
  let srv: Server | undefined;
  afterEach(() => srv?.close());

  it('negotiates capabilities, skips events, returns each answer in order and accepts quit closing the socket', async () => {
    const sock = join(dir, 'qmp.sock');
    const seen: string[] = [];
    srv = await fakeQmp(sock, { 'query-status': { status: 'running', singlestep: false, running: true }, 'query-kvm': { enabled: false, present: true } }, seen);
    const r = await qmp(sock, [{ execute: 'query-status' }, { execute: 'query-kvm' }, { execute: 'quit' }]);
    expect(r).toEqual([{ status: 'running', singlestep: false, running: true }, { enabled: false, present: true }, {}]);
    expect(seen).toEqual(['qmp_capabilities', 'query-status', 'query-kvm', 'quit']);
  });

  it("names QEMU's error class and words, a missing socket, and a peer that never answers", async () => {
    const sock = join(dir, 'qmp.sock');
    srv = await fakeQmp(sock, {});
    await expect(qmp(sock, [{ execute: 'query-nothing' }])).rejects.toThrow(/QMP query-nothing: CommandNotFound: The command query-nothing has not been found/);
    await expect(qmp(join(dir, 'absent.sock'), [{ execute: 'query-status' }])).rejects.toThrow(QmpError);
    const mute = createServer(() => undefined);
    const mutePath = join(dir, 'mute.sock');
    await new Promise<void>((r) => mute.listen(mutePath, () => r()));
    try {
      await expect(qmp(mutePath, [{ execute: 'query-status' }], { timeoutMs: 200 })).rejects.toThrow(/no answer within 200 ms \(step greeting\)/);
    } finally {
      mute.close();
    }
  });
});

describe('host capacity', () => {
  const paths = () => ({ cpuinfo: join(dir, 'cpuinfo'), meminfo: join(dir, 'meminfo'), kvmDevice: join(dir, 'kvm'), guestsDir: join(dir, 'guests') });
  beforeEach(() => {
    writeFileSync(join(dir, 'cpuinfo'), fixture('cpuinfo-qemu-tcg.txt'));
    writeFileSync(join(dir, 'meminfo'), fixture('meminfo-qemu-tcg.txt'));
  });
  const qemuExec = (probe: (args: readonly string[]) => ExecResult, calls: string[] = []): Exec => async (cmd, args) => {
    calls.push([cmd, ...args].join(' '));
    if (args[0] === '--version') return ok(cmd, fixture('qemu-version.txt'));
    return probe(args);
  };

  it('without /dev/kvm: kvm false, and why; QEMU is not started for the probe', async () => {
    const calls: string[] = [];
    const h = await probeHost({ exec: qemuExec(() => ok('qemu'), calls), paths: paths(), workDir: dir });
    expect(h).toEqual({ cpus: 2, memoryMiB: 218, kvm: false, kvmDetail: expect.stringMatching(/^no usable .*\/kvm: the CPU has no VT-x\/AMD-V/), qemu: { version: '7.2.22' } });
    expect(calls).toEqual(['qemu-system-x86_64 --version']);
  });

  it('with /dev/kvm: QEMU opens a VM with -accel kvm and QMP query-kvm says enabled', async () => {
    writeFileSync(join(dir, 'kvm'), '');
    const calls: string[] = [];
    const asked: unknown[] = [];
    const h = await probeHost({
      exec: qemuExec(() => ok('qemu'), calls),
      qmp: async (_sock, cmds) => {
        asked.push(...cmds.map((c) => c.execute));
        return [{ enabled: true, present: true }, {}];
      },
      paths: paths(),
      workDir: dir,
    });
    expect(h).toEqual({ cpus: 2, memoryMiB: 218, kvm: true, qemu: { version: '7.2.22' } });
    expect(calls[1]).toMatch(/^qemu-system-x86_64 -accel kvm -machine none .*-daemonize$/);
    expect(asked).toEqual(['query-kvm', 'quit']);
  });

  it("with a /dev/kvm QEMU cannot use (this build machine's nested device): kvm false with QEMU's words", async () => {
    writeFileSync(join(dir, 'kvm'), '');
    const h = await probeHost({ exec: qemuExec(() => failed('qemu', 1, 'qemu-system-x86_64: -accel kvm: failed to initialize kvm: Operation not supported\n')), paths: paths(), workDir: dir });
    expect(h.kvm).toBe(false);
    expect(h.kvmDetail).toMatch(/QEMU cannot use .*kvm: qemu-system-x86_64: -accel kvm: failed to initialize kvm: Operation not supported/);
  });

  it('without QEMU: no qemu, kvm false', async () => {
    const h = await probeHost({ exec: async (cmd) => ({ command: cmd, exitCode: null, signal: null, stdout: '', stderr: `spawn ${cmd}: ENOENT`, timedOut: false }), paths: paths(), workDir: dir });
    expect(h).toMatchObject({ cpus: 2, kvm: false, kvmDetail: `no QEMU: spawn qemu-system-x86_64: ENOENT` });
    expect(h.qemu).toBeUndefined();
  });
});

describe('guests', () => {
  const spec: GuestSpec = { name: 'selftest', vcpus: 1, memoryMiB: 128, accel: 'tcg', kernel: '/run/k', initrd: '/run/i', append: 'console=ttyS0 quiet' };

  it('runs QEMU daemonized with no default devices, COM1 to a file and QMP on a socket (whole argv)', () => {
    expect(qemuArgs(spec, '/run/bootfarm/guests/selftest').join(' ')).toBe(
      '-name guest=selftest -machine pc -accel tcg,tb-size=128 -smp 1 -m 128 -nodefaults -no-user-config -vga none -display none -nic none ' +
        '-serial file:/run/bootfarm/guests/selftest/serial.log -qmp unix:/run/bootfarm/guests/selftest/qmp.sock,server=on,wait=off ' +
        '-pidfile /run/bootfarm/guests/selftest/qemu.pid -daemonize -kernel /run/k -initrd /run/i -append console=ttyS0 quiet',
    );
    expect(qemuArgs({ ...spec, accel: 'kvm' }, '/g').slice(0, 6)).toEqual(['-name', 'guest=selftest', '-machine', 'pc', '-accel', 'kvm']);
  });

  it('lists the guests whose QEMU is alive with their QMP status; a powered-off one is gone; a running name is not started twice', async () => {
    const guestsDir = join(dir, 'guests');
    const alive = new Set([101]);
    const exec: Exec = async (cmd, args) => {
      const d = join(guestsDir, String(args[1]).replace('guest=', ''));
      writeFileSync(join(d, 'qemu.pid'), `${args[1] === 'guest=selftest' ? 101 : 102}\n`);
      return ok(cmd);
    };
    const deps = { exec, paths: { guestsDir }, alive: (pid: number) => alive.has(pid), qmp: async (sock: string) => [{ status: sock.includes('selftest') ? 'running' : 'paused', running: true }] };
    await startGuest(deps, spec);
    await startGuest(deps, { ...spec, name: 'other', memoryMiB: 64 });
    await expect(startGuest(deps, spec)).rejects.toThrow(/guest selftest is already running \(pid 101\)/);
    await expect(startGuest(deps, { ...spec, name: '../x' })).rejects.toThrow(/guest name/);
    expect(await listGuests(deps)).toEqual([{ name: 'selftest', status: 'running', vcpus: 1, memoryMiB: 128 }]);
    alive.add(102);
    expect(await listGuests(deps)).toEqual([
      { name: 'other', status: 'paused', vcpus: 1, memoryMiB: 64 },
      { name: 'selftest', status: 'running', vcpus: 1, memoryMiB: 128 },
    ]);
    // QMP not answering: the guest exists, its state is unknown
    expect(await listGuests({ ...deps, qmp: async () => Promise.reject(new QmpError('x')) })).toEqual([
      { name: 'other', status: 'unknown', vcpus: 1, memoryMiB: 64 },
      { name: 'selftest', status: 'unknown', vcpus: 1, memoryMiB: 128 },
    ]);
  });

  it('a QEMU that fails to start is an error with its words', async () => {
    const exec: Exec = async () => failed('qemu', 1, 'qemu-system-x86_64: -kernel /run/k: could not open kernel file\n');
    await expect(startGuest({ exec, paths: { guestsDir: join(dir, 'guests') } }, spec)).rejects.toThrow(/for guest selftest: exit 1: qemu-system-x86_64: -kernel \/run\/k: could not open kernel file/);
  });
});

describe('self-test', () => {
  const kernel = new TextEncoder().encode('a kernel image');
  const sha = '2c7b7d6f1f9ab4b7d8b1aa0a4bb3a47cbd4d6a52e1cbd77ee1a5cd1d0e1a1b34';
  const realSha = createHash('sha256').update(kernel).digest('hex');
  const fetchKernel = async () => new Response(kernel);

  it('finds the banner with the guest uptime and kernel among boot noise', () => {
    expect(findBanner(`SeaBIOS\r\n${GUEST_BANNER} uptime=41.27 kernel=6.1.0-57-amd64\r\n`)).toEqual({ line: `${GUEST_BANNER} uptime=41.27 kernel=6.1.0-57-amd64`, guestUptime: 41.27, kernel: '6.1.0-57-amd64' });
    expect(findBanner('Kernel panic - not syncing')).toBeUndefined();
  });

  function clock() {
    let t = 0;
    return { now: () => t, sleep: async (ms: number) => void (t += ms) };
  }

  it('downloads and checks the kernel, starts the guest under TCG and reports when the banner appears', async () => {
    const c = clock();
    const argv: string[][] = [];
    let polls = 0;
    writeFileSync(join(dir, 'busybox'), 'bb');
    const exec: Exec = async (cmd, args) => {
      argv.push([cmd, ...args]);
      return ok(cmd);
    };
    const serial = join(dir, 'guests/selftest/serial.log');
    const r = await hypervisorSelfTest({
      exec,
      fetch: fetchKernel,
      sleep: async (ms) => {
        await c.sleep(ms);
        // the guest prints its banner on the third poll
        if (++polls === 3) writeFileSync(serial, `early noise\n${GUEST_BANNER} uptime=33.10 kernel=6.1.0-57-amd64\n`);
      },
      now: c.now,
      guest: 'linux',
      kernelUrl: 'http://s/images/x',
      kernelSha256: realSha,
      busybox: join(dir, 'busybox'),
      workDir: dir,
      kvm: false,
      paths: { guestsDir: join(dir, 'guests') },
      pollMs: 2000,
    });
    expect(r).toEqual({ ok: true, guest: 'selftest', kind: 'linux', accel: 'tcg', seconds: 6, banner: `${GUEST_BANNER} uptime=33.10 kernel=6.1.0-57-amd64`, guestUptime: 33.1, kernel: '6.1.0-57-amd64' });
    expect(argv[0]).toEqual(expect.arrayContaining(['-accel', 'tcg,tb-size=128', '-kernel', join(dir, 'selftest-vmlinuz'), '-initrd', join(dir, 'selftest-initrd.cpio')]));
    expect(readFileSync(join(dir, 'selftest-vmlinuz'), 'utf8')).toBe('a kernel image');
  });

  it('fails with the serial tail when no banner comes in time, and on a kernel whose digest is wrong', async () => {
    const c = clock();
    writeFileSync(join(dir, 'busybox'), 'bb');
    const base = { guest: 'linux' as const, exec: (async (cmd: string) => ok(cmd)) as Exec, fetch: fetchKernel, sleep: c.sleep, now: c.now, kernelUrl: 'http://s/images/x', busybox: join(dir, 'busybox'), workDir: dir, kvm: false, paths: { guestsDir: join(dir, 'guests') } };
    const slow = await hypervisorSelfTest({ ...base, kernelSha256: realSha, timeoutMs: 10_000 });
    expect(slow).toMatchObject({ ok: false, accel: 'tcg', error: `no "${GUEST_BANNER}" on the guest's serial console within 10 s` });
    expect(slow.seconds).toBeGreaterThanOrEqual(10);
    const bad = await hypervisorSelfTest({ ...base, kernelSha256: sha });
    expect(bad).toMatchObject({ ok: false, error: expect.stringMatching(/sha256 is [0-9a-f]{64}, the profile says 2c7b7d6f/) });
  });
});

describe('the Multiboot banner guest', () => {
  it('has a valid Multiboot header (a.out kludge: loaded at 1 MiB, entry after the header)', () => {
    const b = multibootBanner(`${GUEST_BANNER} kernel=multiboot`);
    const dv = new DataView(b.buffer);
    const w = (i: number) => dv.getUint32(i * 4, true);
    expect(w(0)).toBe(0x1badb002);
    expect((w(0) + w(1) + w(2)) >>> 0).toBe(0);
    expect(w(1) & 0x10000).toBe(0x10000);
    expect([w(3), w(4), w(5), w(6), w(7)]).toEqual([0x100000, 0x100000, 0, 0, 0x100020]);
    expect(new TextDecoder().decode(b.subarray(0x35))).toBe(`${GUEST_BANNER} kernel=multiboot\r\n\0`);
    expect(() => multibootBanner('two\nlines')).toThrow(/one line/);
  });

  it('disassembles (GNU objdump, i386) to: print the string at 0x100035 on COM1, then cli; hlt forever', () => {
    const file = join(dir, 'mb.bin');
    writeFileSync(file, multibootBanner('x'));
    const r = spawnSync('objdump', ['-D', '-b', 'binary', '-mi386', '--start-address=0x20', '--stop-address=0x35', file], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const ins = r.stdout.split('\n').filter((l) => /^\s+[0-9a-f]+:\t/.test(l)).map((l) => l.split('\t').at(-1)!.replace(/\s+/g, ' ').trim());
    expect(ins).toEqual(['mov $0x100035,%esi', 'mov $0x3f8,%dx', 'lods %ds:(%esi),%al', 'test %al,%al', 'je 0x31', 'out %al,(%dx)', 'jmp 0x29', 'cli', 'hlt', 'jmp 0x31']);
  });

  it('without KVM the self-test starts it: no kernel download, no initrd, 16 MiB', async () => {
    let t = 0;
    const argv: string[][] = [];
    const serial = join(dir, 'guests/selftest/serial.log');
    const r = await hypervisorSelfTest({
      guest: 'multiboot',
      exec: async (cmd, args) => {
        argv.push([...args]);
        writeFileSync(serial, `SeaBIOS (version 1.16.2-debian-1.16.2-1)\r\nBooting from ROM..\r\n${GUEST_BANNER} kernel=multiboot\r\n`);
        return ok(cmd);
      },
      fetch: async () => {
        throw new Error('no download for the Multiboot guest');
      },
      sleep: async (ms) => void (t += ms),
      now: () => t,
      workDir: dir,
      kvm: false,
      paths: { guestsDir: join(dir, 'guests') },
    });
    expect(r).toEqual({ ok: true, guest: 'selftest', kind: 'multiboot', accel: 'tcg', seconds: 0, banner: `${GUEST_BANNER} kernel=multiboot`, kernel: 'multiboot' });
    expect(argv[0]).toEqual(expect.arrayContaining(['-m', '16', '-kernel', join(dir, 'selftest-multiboot.bin')]));
    expect(argv[0]).not.toContain('-initrd');
    expect(argv[0]).not.toContain('-append');
  });
});
