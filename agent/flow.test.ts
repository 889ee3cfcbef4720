import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AgentApiError } from './client.ts';
import type { Exec } from './exec.ts';
import { iscsiState, networkRetryDelay, NETWORK_RETRY_CAP_MS, runAgent, redactCmdline, type FlowDeps } from './flow.ts';
import type { FirmwareStep } from './firmware/index.ts';
import { DigestMismatchError } from './kexec/index.ts';
import { FixtureExec, fixture } from '../test/support/agent/fixtures.ts';
import { FakeIp } from '../test/support/agent/fake-ip.ts';
import { createTestServer, freePort, sha256, type TestServer } from '../test/support/agent/test-server.ts';

const UUID = '4c4c4544-0042-3510-8052-b4c04f4e4d32';
const TOKEN = 'stage1-token-abc';
const LSBLK = 'lsblk -J -b -d -o NAME,SIZE,TYPE,MODEL,SERIAL,ROTA,TRAN,WWN,VENDOR';

// the QEMU guest's captured outputs (test/fixtures/agent/README.md); this machine has no SMBIOS or LLDP peer
const qemuNode = () =>
  new FixtureExec({
    dmidecode: 'dmidecode-qemu-smbios.txt',
    'ethtool -i eth0': 'ethtool-i-virtio_net.txt',
    'ethtool -i ifb0': 'ethtool-i-ifb.txt',
    'ethtool -i ifb1': 'ethtool-i-ifb.txt',
    [LSBLK]: 'lsblk-host-columns.json',
    'lldpcli -f json0 show neighbors details': 'lldpcli-json0-two-neighbors.json',
  });

/** sleep that returns at once and remembers what it was asked; `onSleep` lets a test act "during" the wait */
function fakeSleep(onSleep?: (ms: number, n: number) => Promise<void> | void) {
  const calls: number[] = [];
  const sleep = async (ms: number) => {
    calls.push(ms);
    await onSleep?.(ms, calls.length);
  };
  return { calls, sleep };
}

describe('stage-1 flow against a test server', () => {
  let dir: string;
  let srv: TestServer;
  let url: string;
  let printed: string[];
  let logged: string[];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'bfagent-flow-'));
    printed = [];
    logged = [];
  });
  afterEach(async () => {
    await srv?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function start(opts: Partial<Parameters<typeof createTestServer>[0]> = {}) {
    srv = createTestServer({ token: TOKEN, uuid: UUID, ...opts });
    url = await srv.listen(await freePort());
  }
  function deps(extra: Partial<FlowDeps> = {}, cmdline = `console=ttyS0 BOOTIF=01-02-fc-00-00-00-01 bootfarm.server=${url} bootfarm.token=${TOKEN} bootfarm.mode=stage1 bootfarm.lldpwait=0`): FlowDeps {
    writeFileSync(join(dir, 'cmdline'), cmdline + '\n');
    return {
      exec: qemuNode().exec,
      fetch: (i, init) => fetch(i, init),
      sleep: fakeSleep().sleep,
      now: () => new Date('2026-11-21T08:00:00Z'),
      random: () => 0.5,
      // no efi directory and no lockdown file: a BIOS boot of an unlocked kernel, whatever this machine is
      paths: { cmdline: join(dir, 'cmdline'), workDir: join(dir, 'work'), efi: join(dir, 'efi'), lockdown: join(dir, 'lockdown') },
      log: (l) => logged.push(l),
      print: (l) => printed.push(l),
      ...extra,
    };
  }

  it('registers, fetches the profile, downloads and verifies, and prints the kexec commands on a dry run', async () => {
    await start();
    const r = await runAgent(deps({ dryRun: true }));
    expect(r.outcome).toBe('kexec');
    expect(srv.got.registers).toHaveLength(1);
    const facts = srv.got.registers[0]!.facts;
    expect(facts.system).toMatchObject({ uuid: UUID, serial: 'BF-SN-000123', product: 'R740-Test' });
    expect(facts.nics.find((n) => n.name === 'eth0')?.boot).toBe(true);
    expect(srv.got.events.map((e) => e.phase)).toEqual(['stage1-started', 'facts-collected', 'registered', 'profile-fetched', 'image-downloaded', 'kexec-started']);
    expect(readFileSync(join(dir, 'work', 'kernel'))).toEqual(srv.kernel);
    expect(readFileSync(join(dir, 'work', 'initrd'))).toEqual(srv.initrd);
    const k = join(dir, 'work', 'kernel');
    const i = join(dir, 'work', 'initrd');
    expect(printed).toEqual([
      `dry-run: kexec -l ${k} --initrd=${i} '--append=console=ttyS0 bootfarm.server=${url} bootfarm.uuid=${UUID} bootfarm.token=per-boot-secret bootfarm.mode=compute bootfarm.kernel=${sha256(srv.kernel)} bootfarm.initrd=${sha256(srv.initrd)}'`,
      'dry-run: kexec -e',
    ]);
    // the per-boot token goes to kexec but never into the event log
    const kexecEvent = srv.got.events.find((e) => e.phase === 'kexec-started')!;
    expect(JSON.stringify(kexecEvent)).not.toContain('per-boot-secret');
    expect(kexecEvent.data?.['cmdline']).toContain('bootfarm.token=<redacted>');
  });

  it('bootfarm.dryrun=1 on the kernel command line is a dry run too', async () => {
    await start();
    await runAgent(deps({}, `bootfarm.server=${url} bootfarm.token=${TOKEN} bootfarm.dryrun=1`));
    expect(printed).toHaveLength(2);
  });

  it('keeps retrying the registration while the server is down, with growing jittered delays, then reports what happened before', async () => {
    const port = await freePort();
    srv = createTestServer({ token: TOKEN, uuid: UUID });
    srv.setBaseUrl(`http://127.0.0.1:${port}`);
    url = `http://127.0.0.1:${port}`;
    // the server comes up during the 4th wait
    const s = fakeSleep(async (_ms, n) => {
      if (n === 4) await srv.listen(port);
    });
    const r = await runAgent(deps({ sleep: s.sleep, random: () => 0.999, backoff: { baseMs: 100, capMs: 500 }, dryRun: true }));
    expect(r.outcome).toBe('kexec');
    // full jitter: random × min(cap, base × 2^attempt) with random ≈ 1
    expect(s.calls).toEqual([99, 199, 399, 499]);
    expect(logged.filter((l) => l.startsWith('register:')).length).toBe(4);
    expect(logged.find((l) => l.startsWith('register:'))).toMatch(/ECONNREFUSED/);
    expect(srv.got.registers).toHaveLength(1);
    // stage1-started and facts-collected were queued while the server was down and arrived afterwards
    expect(srv.got.events.map((e) => e.phase).slice(0, 3)).toEqual(['stage1-started', 'facts-collected', 'registered']);
  });

  it('waits and registers again while the server says hold', async () => {
    await start({ registerAnswers: [{ next: 'hold', state: 'maintenance', reason: 'held by ops' }, { next: 'provision' }] });
    const s = fakeSleep();
    await runAgent(deps({ sleep: s.sleep, holdSeconds: 7, dryRun: true }));
    expect(srv.got.registers).toHaveLength(2);
    expect(s.calls).toEqual([7000]);
    expect(srv.got.events.filter((e) => e.phase === 'registered').map((e) => e.data?.['next'])).toEqual(['hold', 'provision']);
  });

  it('registers again with fresh facts while held: a re-patched cable is what the server sees (issue 16 item 5)', async () => {
    await start({ registerAnswers: [{ next: 'hold', state: 'ready', reason: 'cabling: bfag-b0 expected on leaf-sw01 Ethernet1/7, no LLDP neighbour seen' }, { next: 'provision' }] });
    const table: Record<string, string> = {
      dmidecode: 'dmidecode-qemu-smbios.txt',
      'ethtool -i eth0': 'ethtool-i-virtio_net.txt',
      [LSBLK]: 'lsblk-host-columns.json',
      'lldpcli -f json0 show neighbors details': 'lldpcli-json0-no-neighbors.json',
    };
    // the cable goes in while the agent waits
    const s = fakeSleep(() => void (table['lldpcli -f json0 show neighbors details'] = 'lldpcli-json0-two-neighbors.json'));
    await runAgent(deps({ exec: new FixtureExec(table).exec, sleep: s.sleep, holdSeconds: 7, dryRun: true }));
    expect(srv.got.registers.map((r) => r.facts.lldp?.length ?? 0)).toEqual([0, 2]);
    expect(srv.got.registers[1]!.facts.lldp![0]).toMatchObject({ interface: 'bfag-b0', systemName: 'leaf-sw01.rack12.example' });
  });

  it('powers off when the server says the node is inventory only, and never asks for a profile', async () => {
    await start({ registerAnswers: [{ next: 'poweroff', state: 'ready', reason: 'inventory only' }] });
    const r = await runAgent(deps({ dryRun: true }));
    expect(r).toEqual({ outcome: 'poweroff', reason: 'inventory only' });
    expect(printed).toEqual(['dry-run: poweroff -f']);
    expect(srv.got.requests).not.toContain(`GET /api/v1/agent/${UUID}/profile`);
    expect(srv.got.events.find((e) => e.phase === 'poweroff')?.message).toBe('powering off: inventory only');
  });

  it('hands the register response to the firmware step, which may reboot instead of provisioning', async () => {
    await start({ registerAnswers: [{ next: 'firmware', state: 'firmware-updating', reason: 'BIOS 2.7.1 < 2.9.0' }] });
    const seen: string[] = [];
    const firmware: FirmwareStep = async ({ register, report }) => {
      seen.push(`${register.next}: ${register.reason}`);
      await report('firmware-updating', 'flashing BIOS');
      return { action: 'reboot', reason: 'BIOS flashed' };
    };
    const r = await runAgent(deps({ firmware, dryRun: true }));
    expect(r).toEqual({ outcome: 'reboot', reason: 'BIOS flashed' });
    expect(seen).toEqual(['firmware: BIOS 2.7.1 < 2.9.0']);
    expect(printed).toEqual(['dry-run: reboot']);
    expect(srv.got.requests).not.toContain(`GET /api/v1/agent/${UUID}/profile`);
    expect(srv.got.events.map((e) => e.phase)).toContain('firmware-updated');
  });

  it('the default firmware step reports that it cannot update and goes on', async () => {
    await start({ registerAnswers: [{ next: 'firmware', state: 'firmware-updating', reason: 'NIC firmware' }] });
    const r = await runAgent(deps({ dryRun: true }));
    expect(r.outcome).toBe('kexec');
    expect(srv.got.events.find((e) => e.phase === 'firmware-check')?.message).toMatch(/no firmware step/);
  });

  it('retries a 503 from the profile endpoint', async () => {
    await start({ profileFailures: 2 });
    const s = fakeSleep();
    const r = await runAgent(deps({ sleep: s.sleep, dryRun: true }));
    expect(r.outcome).toBe('kexec');
    expect(srv.got.requests.filter((x) => x.endsWith('/profile'))).toHaveLength(3);
    expect(logged.some((l) => /profile: .*503 image_unavailable/.test(l))).toBe(true);
  });

  it('refuses a kernel whose sha256 does not match, reports agent-error and does not kexec', async () => {
    await start({ kernelSha256: 'f'.repeat(64) });
    await expect(runAgent(deps({ dryRun: true, attempts: 3 }))).rejects.toThrow(DigestMismatchError);
    expect(printed).toEqual([]);
    const err = srv.got.events.find((e) => e.phase === 'agent-error');
    expect(err?.message).toMatch(/sha256 is [0-9a-f]{64}, the profile says f{64}/);
    expect(srv.got.requests.filter((x) => x.startsWith('GET /images/'))).toHaveLength(3);
  });

  it('does not retry a 401 (wrong token) and says why', async () => {
    await start();
    await expect(runAgent(deps({}, `bootfarm.server=${url} bootfarm.token=wrong`))).rejects.toThrow(AgentApiError);
    expect(srv.got.requests.filter((x) => x.endsWith('/register'))).toHaveLength(1);
  });

  it('without --dry-run runs kexec -l then kexec -e through exec, and fails if kexec -e returns', async () => {
    await start();
    const base = qemuNode();
    const ran: string[][] = [];
    const exec: Exec = async (cmd, args, opts) => {
      if (cmd !== 'kexec') return base.exec(cmd, args, opts);
      ran.push([cmd, ...args]);
      return { command: cmd, exitCode: 0, signal: null, stdout: '', stderr: '', timedOut: false };
    };
    await expect(runAgent(deps({ exec }))).rejects.toThrow(/kexec -e returned/);
    const k = join(dir, 'work', 'kernel');
    expect(ran).toEqual([
      ['kexec', '-l', k, `--initrd=${join(dir, 'work', 'initrd')}`, expect.stringMatching(/^--append=console=ttyS0 .*bootfarm\.token=per-boot-secret/)],
      ['kexec', '-e'],
    ]);
    expect(srv.got.events.at(-1)?.phase).toBe('agent-error');
  });

  describe('kexec on a locked-down kernel', () => {
    const ok = { exitCode: 0, signal: null, stdout: '', stderr: '', timedOut: false };
    /** kexec calls are recorded; `kexec -s` answers with `loadResult` */
    function kexecExec(loadResult: { exitCode: number; stderr: string }) {
      const base = qemuNode();
      const ran: string[][] = [];
      const exec: Exec = async (cmd, args, opts) => {
        if (cmd !== 'kexec') return base.exec(cmd, args, opts);
        ran.push([cmd, ...args]);
        return { ...ok, command: [cmd, ...args].join(' '), ...(args[0] === '-s' ? loadResult : {}) };
      };
      return { exec, ran };
    }
    /** efivarfs as the kernel shows it: attribute word 0x06, then the UINT8 value */
    function secureBoot(value: number) {
      mkdirSync(join(dir, 'efi', 'efivars'), { recursive: true });
      writeFileSync(join(dir, 'efi', 'efivars', 'SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c'), Uint8Array.of(6, 0, 0, 0, value));
    }
    const load = (fileLoad: boolean) => [
      'kexec',
      ...(fileLoad ? ['-s'] : []),
      '-l',
      join(dir, 'work', 'kernel'),
      `--initrd=${join(dir, 'work', 'initrd')}`,
      expect.stringMatching(/^--append=console=ttyS0 /),
    ];

    const cases: Array<[string, () => void, boolean]> = [
      ['lockdown=integrity: kexec -s (kexec_file_load)', () => writeFileSync(join(dir, 'lockdown'), 'none [integrity] confidentiality\n'), true],
      ['lockdown=confidentiality: kexec -s', () => writeFileSync(join(dir, 'lockdown'), 'none integrity [confidentiality]\n'), true],
      ['Secure Boot enabled, no lockdown file: kexec -s', () => secureBoot(1), true],
      ['Secure Boot disabled and lockdown=none: plain kexec -l', () => (secureBoot(0), writeFileSync(join(dir, 'lockdown'), '[none] integrity confidentiality\n')), false],
    ];
    it.each(cases)('%s', async (_name, setup, fileLoad) => {
      await start();
      setup();
      const { exec, ran } = kexecExec({ exitCode: 0, stderr: '' });
      await expect(runAgent(deps({ exec }))).rejects.toThrow(/kexec -e returned/);
      expect(ran).toEqual([load(fileLoad), ['kexec', '-e']]);
      expect(srv.got.events.find((e) => e.phase === 'kexec-started')?.data?.['fileLoad']).toBe(fileLoad);
    });

    it('reports kexec-refused with the reason and the missing fallback when kexec_file_load rejects an unsigned kernel, and does not kexec -e', async () => {
      await start();
      secureBoot(1);
      writeFileSync(join(dir, 'lockdown'), 'none [integrity] confidentiality\n');
      // kexec-tools 2.0.x on a lockdown kernel given an unsigned bzImage: kexec_file_load fails with EKEYREJECTED
      const { exec, ran } = kexecExec({ exitCode: 255, stderr: 'kexec_file_load failed: Key was rejected by service\n' });
      await expect(runAgent(deps({ exec }))).rejects.toThrow(/kexec_file_load\) refused the compute kernel/);
      expect(ran).toEqual([load(true)]);
      const ev = srv.got.events.find((e) => e.phase === 'kexec-refused')!;
      expect(ev.message).toMatch(/^kexec -s \(kexec_file_load\) refused the compute kernel: Secure Boot is enabled and kernel lockdown is integrity, so kexec_load is not allowed/);
      expect(ev.message).toContain('Key was rejected by service');
      expect(ev.message).toMatch(/BMC-driven reboot into the compute kernel, is not implemented yet$/);
      expect(ev.data).toMatchObject({ secureBoot: 'enabled', lockdown: 'integrity' });
      expect(srv.got.events.at(-1)?.phase).toBe('agent-error');
    });
  });

  it('fails clearly without bootfarm.server=', async () => {
    await start();
    await expect(runAgent(deps({}, 'console=ttyS0 bootfarm.token=x'))).rejects.toThrow(/bootfarm.server= is missing/);
  });
});

describe('compute flow against a test server', () => {
  let dir: string;
  let srv: TestServer;
  let url: string;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bfagent-compute-'));
    writeFileSync(join(dir, 'boot_id'), '9f0c6a43-5a8b-4a55-9f0e-3c1e5b0f7d21\n');
    writeFileSync(join(dir, 'uptime'), '123.45 200.00\n');
    writeFileSync(join(dir, 'loadavg'), '0.42 0.30 0.20 1/100 1234\n');
    writeFileSync(join(dir, 'cpuinfo'), fixture('cpuinfo-qemu-tcg.txt'));
    writeFileSync(join(dir, 'meminfo'), fixture('meminfo-qemu-tcg.txt'));
  });
  afterEach(async () => {
    await srv?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function deps(cmdline: string, extra: Partial<FlowDeps> = {}): FlowDeps {
    writeFileSync(join(dir, 'cmdline'), cmdline);
    const ip = new FakeIp().exec;
    return {
      // ip, arping and hostname answered from captures: the compute flow applies the detail's network first; QEMU's
      // version line for the hypervisor capacity (no /dev/kvm here, so QEMU is never started)
      exec: async (cmd, args, o) => (cmd === 'qemu-system-x86_64' && args[0] === '--version' ? { command: cmd, exitCode: 0, signal: null, stdout: fixture('qemu-version.txt'), stderr: '', timedOut: false } : ip(cmd, args, o)),
      fetch: (i, init) => fetch(i, init),
      sleep: fakeSleep().sleep,
      now: () => new Date(),
      paths: {
        cmdline: join(dir, 'cmdline'), bootId: join(dir, 'boot_id'), uptime: join(dir, 'uptime'), loadavg: join(dir, 'loadavg'), productUuid: '/nonexistent', resolvConf: join(dir, 'resolv.conf'), networkApplied: join(dir, 'network-applied'),
        cpuinfo: join(dir, 'cpuinfo'), meminfo: join(dir, 'meminfo'), kvmDevice: join(dir, 'no-kvm'), guestsDir: join(dir, 'guests'), workDir: join(dir, 'work'),
      },
      log: () => {},
      print: () => {},
      ...extra,
    };
  }

  it('reports installed with the booted digests and boot id, then beats every N seconds', async () => {
    srv = createTestServer({ token: 'per-boot', uuid: UUID });
    url = await srv.listen(await freePort());
    const k = 'a'.repeat(64);
    const i = 'b'.repeat(64);
    const s = fakeSleep();
    const r = await runAgent(
      deps(`bootfarm.server=${url} bootfarm.uuid=${UUID} bootfarm.token=per-boot bootfarm.mode=compute bootfarm.kernel=${k} bootfarm.initrd=${i} bootfarm.heartbeat=15`, { sleep: s.sleep, maxHeartbeats: 3 }),
    );
    expect(r).toEqual({ outcome: 'heartbeats-done', beats: 3 });
    expect(srv.got.installed).toEqual([{ kernelDigest: k, initrdDigest: i, bootId: '9f0c6a43-5a8b-4a55-9f0e-3c1e5b0f7d21' }]);
    expect(srv.got.heartbeats).toHaveLength(3);
    const hypervisor = { cpus: 2, memoryMiB: 218, kvm: false, kvmDetail: expect.stringMatching(/^no usable .*no-kvm/), qemu: { version: '7.2.22' }, guests: [] };
    expect(srv.got.heartbeats[0]).toEqual({ uptimeSeconds: 123.45, load1: 0.42, iscsi: 'none', kernelDigest: k, initrdDigest: i, network: { addresses: [] }, hypervisor });
    // the capacity goes with the first beat, then only when it changes (or every HEARTBEAT_CAPACITY_EVERY beats)
    expect(srv.got.heartbeats.map((h) => h.hypervisor !== undefined)).toEqual([true, false, false]);
    expect(s.calls).toEqual([15000, 15000]);
    // the test server's detail has a hostname and nothing else to configure; the read-back goes with the first beat only
    expect(srv.got.events.map((e) => e.phase)).toEqual(['compute-started', 'network-configured']);
    expect(srv.got.heartbeats.map((h) => h.network)).toEqual([{ addresses: [] }, undefined, undefined]);
  });

  it('reboots (dry run: prints) when a heartbeat answer says reboot', async () => {
    srv = createTestServer({ token: 't', uuid: UUID, heartbeatAnswers: ['continue', 'reboot'] });
    url = await srv.listen(await freePort());
    const printed: string[] = [];
    const r = await runAgent(deps(`bootfarm.server=${url} bootfarm.uuid=${UUID} bootfarm.token=t bootfarm.dryrun=1`, { mode: 'compute', print: (l) => printed.push(l) }));
    expect(r.outcome).toBe('reboot');
    expect(printed).toEqual(['dry-run: hostname hv-test-01', 'dry-run: reboot -f']);
    expect(srv.got.events.map((e) => e.phase)).toEqual(['compute-started', 'network-planned', 'reboot-requested']);
  });

  it('keeps beating when the server refuses installed', async () => {
    srv = createTestServer({ token: 't', uuid: UUID, refuseInstalled: true });
    url = await srv.listen(await freePort());
    const r = await runAgent(deps(`bootfarm.server=${url} bootfarm.uuid=${UUID} bootfarm.token=t bootfarm.mode=compute`, { maxHeartbeats: 2 }));
    expect(r).toEqual({ outcome: 'heartbeats-done', beats: 2 });
    expect(srv.got.events.find((e) => e.phase === 'agent-error')?.message).toMatch(/409 invalid_transition: node is failed/);
  });

  it('runs the hypervisor self-test the profile asks for beside the heartbeats: without KVM the Multiboot guest, then heartbeats list it running', async () => {
    srv = createTestServer({ token: 't', uuid: UUID });
    url = await srv.listen(await freePort());
    const alive = new Set<number>();
    const d = deps(`bootfarm.server=${url} bootfarm.uuid=${UUID} bootfarm.token=t bootfarm.mode=compute bootfarm.selftest=hypervisor,disk`, { maxHeartbeats: 3 });
    const base = d.exec;
    const started: string[][] = [];
    d.exec = async (cmd, args, o) => {
      if (cmd !== 'qemu-system-x86_64' || args[0] === '--version') return base(cmd, args, o);
      // the guest's QEMU: daemonized, its banner on COM1 at once
      started.push([...args]);
      const gdir = join(dir, 'guests', 'selftest');
      writeFileSync(join(gdir, 'qemu.pid'), '4242\n');
      writeFileSync(join(gdir, 'serial.log'), 'BOOTFARM-GUEST-UP kernel=multiboot\r\n');
      alive.add(4242);
      return { command: cmd, exitCode: 0, signal: null, stdout: '', stderr: '', timedOut: false };
    };
    d.alive = (pid) => alive.has(pid);
    d.qmp = async () => [{ status: 'running', running: true }];
    const r = await runAgent(d);
    expect(r).toEqual({ outcome: 'heartbeats-done', beats: 3 });
    expect(started, JSON.stringify(srv.got.events)).toHaveLength(1);
    expect(started[0]).toEqual(expect.arrayContaining(['-accel', 'tcg,tb-size=128', '-kernel', join(dir, 'work', 'selftest-multiboot.bin')]));
    const events = srv.got.events.filter((e) => /selftest/.test(e.phase));
    expect(events.map((e) => e.phase)).toEqual(['hypervisor-selftest', 'selftest-unknown']);
    expect(events[0]!.data).toMatchObject({ ok: true, kind: 'multiboot', accel: 'tcg', banner: 'BOOTFARM-GUEST-UP kernel=multiboot' });
    // the capacity went again once the guest showed up
    const withGuest = srv.got.heartbeats.filter((h) => h.hypervisor?.guests.length);
    expect(withGuest[0]!.hypervisor!.guests).toEqual([{ name: 'selftest', status: 'running', vcpus: 1, memoryMiB: 16 }]);
  });

  it('keeps beating through server errors', async () => {
    const port = await freePort();
    srv = createTestServer({ token: 't', uuid: UUID });
    let up = false;
    // installed retries until the server is up; heartbeats 1–2 go to a dead server and are only logged
    const s = fakeSleep(async (_ms, n) => {
      if (n === 1 && !up) {
        up = true;
        await srv.listen(port);
      }
      if (n === 2) await srv.close();
      if (n === 4) await srv.listen(port);
    });
    const logged: string[] = [];
    const r = await runAgent(deps(`bootfarm.server=http://127.0.0.1:${port} bootfarm.uuid=${UUID} bootfarm.token=t bootfarm.mode=compute`, { sleep: s.sleep, maxHeartbeats: 4, log: (l) => logged.push(l), backoff: { baseMs: 1, capMs: 1 } }));
    expect(r).toEqual({ outcome: 'heartbeats-done', beats: 2 });
    expect(logged.filter((l) => l.startsWith('heartbeat:'))).toHaveLength(2);
  });
});

describe('compute flow: the network from the detail (issue 16 item 1)', () => {
  let dir: string;
  let srv: TestServer;
  let url: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'bfagent-net-'));
  });
  afterEach(async () => {
    await srv?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const prod = (address: string) => ({ network: 'prod', interface: 'bfnc0', device: 'bfnc0', address, family: 4 as const, gateway: '10.77.0.1' });
  /** the captured fresh namespace with IPv4 addresses on bfnc0, as `ip -j addr show` prints them */
  const addrsOnNic = (...addrs: string[]) =>
    JSON.stringify(
      (JSON.parse(fixture('ip-j-addr-fresh.json')) as { ifname: string }[]).map((l) =>
        l.ifname !== 'bfnc0' ? l : { ...l, addr_info: addrs.map((a) => ({ family: 'inet', local: a.split('/')[0], prefixlen: Number(a.split('/')[1]), scope: 'global', label: 'bfnc0', valid_life_time: 4294967295, preferred_life_time: 4294967295 })) },
      ),
    );
  function deps(fake: FakeIp, extra: Partial<FlowDeps> = {}): FlowDeps {
    writeFileSync(join(dir, 'cmdline'), `bootfarm.server=${url} bootfarm.uuid=${UUID} bootfarm.token=t bootfarm.mode=compute`);
    return {
      exec: fake.exec,
      fetch: (i, init) => fetch(i, init),
      sleep: fakeSleep().sleep,
      now: () => new Date(),
      paths: { cmdline: join(dir, 'cmdline'), bootId: '/nonexistent', uptime: '/nonexistent', loadavg: '/nonexistent', productUuid: '/nonexistent', resolvConf: join(dir, 'resolv.conf'), networkApplied: join(dir, 'network-applied') },
      log: () => {},
      print: () => {},
      backoff: { baseMs: 1, capMs: 1 },
      ...extra,
    };
  }

  it('applies the detail before installed; an answered ARP probe goes to the server and its replacement is used; the read-back rides the first beat and the one after a change', async () => {
    srv = createTestServer({
      token: 't',
      uuid: UUID,
      detail: { hostname: 'hv-r12-08', addresses: [prod('10.77.0.9/24')], routes: [{ to: 'default', via: '10.77.0.1', device: 'bfnc0' }], dns: ['10.77.0.53'] },
      replacements: [prod('10.77.0.10/24')],
    });
    url = await srv.listen(await freePort());
    const fake = new FakeIp({ arping: { '10.77.0.9': 'arping-D-reply' } });
    const exec: Exec = async (cmd, args, o) => {
      const r = await fake.exec(cmd, args, o);
      if (`${cmd} ${args.join(' ')}` === 'ip addr add 10.77.0.10/24 dev bfnc0') fake.addr = addrsOnNic('10.77.0.10/24');
      return r;
    };
    // someone adds an address by hand while the agent waits for its second beat
    const s = fakeSleep((_ms, n) => void (n === 1 && (fake.addr = addrsOnNic('10.77.0.10/24', '10.77.0.99/24'))));
    const r = await runAgent(deps(fake, { exec, sleep: s.sleep, maxHeartbeats: 3 }));
    expect(r).toEqual({ outcome: 'heartbeats-done', beats: 3 });
    expect(srv.got.requests.filter((x) => !x.endsWith('/events') && !x.endsWith('/heartbeat'))).toEqual([
      `GET /api/v1/agent/${UUID}/detail`,
      `POST /api/v1/agent/${UUID}/addresses/conflict`,
      `POST /api/v1/agent/${UUID}/installed`,
    ]);
    expect(srv.got.conflicts).toEqual([{ address: '10.77.0.9', network: 'prod', how: 'arp-probe', detail: 'answered by 06:72:6d:72:e3:ca' }]);
    // two rounds; FakeIp does not simulate the kernel, so the second re-plans the link and route against the same capture
    expect(fake.changes).toEqual([
      'ip link set bfnc0 up',
      'ip -4 route replace default via 10.77.0.1 dev bfnc0',
      'ip link set bfnc0 up',
      'ip addr add 10.77.0.10/24 dev bfnc0',
      'ip -4 route replace default via 10.77.0.1 dev bfnc0',
    ]);
    expect(fake.changes).not.toContain('ip addr add 10.77.0.9/24 dev bfnc0');
    expect(fake.hostname).toBe('hv-r12-08');
    expect(readFileSync(join(dir, 'resolv.conf'), 'utf8')).toContain('nameserver 10.77.0.53\n');
    // the marker that stops udhcpc's hook from flushing the applied addresses on a renew
    expect(JSON.parse(readFileSync(join(dir, 'network-applied'), 'utf8')).addresses).toEqual(['10.77.0.10/24 bfnc0']);
    expect(srv.got.events.map((e) => e.phase)).toEqual(['compute-started', 'address-conflict', 'network-configured']);
    expect(srv.got.events[1]!.message).toBe('10.77.0.9/24 on bfnc0 is in use by another host (arp-probe: answered by 06:72:6d:72:e3:ca); the server replaced it with 10.77.0.10/24');
    expect(srv.got.heartbeats.map((h) => h.network)).toEqual([
      { addresses: [{ device: 'bfnc0', address: '10.77.0.10/24' }] },
      { addresses: [{ device: 'bfnc0', address: '10.77.0.10/24' }, { device: 'bfnc0', address: '10.77.0.99/24' }] },
      undefined,
    ]);
  });

  it('a network that cannot be applied is an event, and the heartbeats go on (busybox ip: no -j)', async () => {
    srv = createTestServer({ token: 't', uuid: UUID, detail: { addresses: [prod('10.77.0.9/24')] } });
    url = await srv.listen(await freePort());
    const fake = new FakeIp({ fail: { 'ip -j -d link show': { exitCode: 1, stderr: "ip: invalid option -- 'j'\n" } } });
    const r = await runAgent(deps(fake, { maxHeartbeats: 2 }));
    expect(r).toEqual({ outcome: 'heartbeats-done', beats: 2 });
    const failed = srv.got.events.find((e) => e.phase === 'network-failed');
    expect(failed?.message).toMatch(/reading the network state: ip -j -d link show: exit 1: ip: invalid option -- 'j'/);
    expect(fake.changes).toEqual([]);
    // nothing applied: udhcpc keeps applying the boot lease
    expect(existsSync(join(dir, 'network-applied'))).toBe(false);
    expect(srv.got.installed).toHaveLength(1);
    expect(srv.got.heartbeats.map((h) => h.network)).toEqual([undefined, undefined]);
  });

  it('retries the detail through a 503; a conflict the server cannot replace is reported and the beats go on', async () => {
    srv = createTestServer({ token: 't', uuid: UUID, detailFailures: 2, detail: { addresses: [prod('10.77.0.9/24')] } });
    url = await srv.listen(await freePort());
    const fake = new FakeIp({ arping: { '10.77.0.9': 'arping-D-reply' } });
    const r = await runAgent(deps(fake, { maxHeartbeats: 1, attempts: 3 }));
    expect(r).toEqual({ outcome: 'heartbeats-done', beats: 1 });
    expect(srv.got.requests.filter((x) => x.endsWith('/detail'))).toHaveLength(3);
    expect(srv.got.events.find((e) => e.phase === 'network-failed')?.message).toMatch(/asking the server for a replacement of 10\.77\.0\.9\/24: .*409 pool_exhausted/);
    expect(fake.changes).not.toContain('ip addr add 10.77.0.9/24 dev bfnc0');
    expect(srv.got.heartbeats[0]!.network).toEqual({ addresses: [] });
  });
});

describe('compute flow: a network not in place is tried again on a later beat', () => {
  let dir: string;
  let srv: TestServer;
  let url: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'bfagent-netretry-'));
  });
  afterEach(async () => {
    await srv?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const BEAT = 30_000;
  const prod = (address: string) => ({ network: 'prod', interface: 'bfnc0', device: 'bfnc0', address, family: 4 as const, gateway: '10.77.0.1' });
  const addrsOnNic = (...addrs: string[]) =>
    JSON.stringify(
      (JSON.parse(fixture('ip-j-addr-fresh.json')) as { ifname: string }[]).map((l) =>
        l.ifname !== 'bfnc0' ? l : { ...l, addr_info: addrs.map((a) => ({ family: 'inet', local: a.split('/')[0], prefixlen: Number(a.split('/')[1]), scope: 'global', label: 'bfnc0', valid_life_time: 4294967295, preferred_life_time: 4294967295 })) },
      ),
    );
  /** FakeIp whose `ip addr add` and `ip link set bfnc0 up` land in its next read, so a second plan sees the first one's work */
  function kernelish(init: ConstructorParameters<typeof FakeIp>[0] = {}, have: string[] = []) {
    const fake = new FakeIp({ ...init, addr: addrsOnNic(...have) });
    const exec: Exec = async (cmd, args, o) => {
      const r = await fake.exec(cmd, args, o);
      const line = `${cmd} ${args.join(' ')}`;
      const m = /^ip addr add (\S+) dev bfnc0$/.exec(line);
      if (m) fake.addr = addrsOnNic(...(have = [...have, m[1]!]));
      if (line === 'ip link set bfnc0 up') fake.link = JSON.stringify((JSON.parse(fixture('ip-j-d-link-fresh.json')) as { ifname: string; flags: string[] }[]).map((l) => (l.ifname === 'bfnc0' ? { ...l, flags: [...l.flags, 'UP'] } : l)));
      return r;
    };
    return { fake, exec };
  }
  /** the heartbeat loop's clock: each sleep moves it on, so "ten beats later" is ten sleeps later */
  function clocked(onSleep?: (n: number) => Promise<void> | void) {
    let t = Date.parse('2026-12-03T12:00:00Z');
    const s = fakeSleep(async (ms, n) => {
      t += ms;
      await onSleep?.(n);
    });
    return { sleep: s.sleep, now: () => new Date(t) };
  }
  function deps(exec: Exec, extra: Partial<FlowDeps> = {}): FlowDeps {
    writeFileSync(join(dir, 'cmdline'), `bootfarm.server=${url} bootfarm.uuid=${UUID} bootfarm.token=t bootfarm.mode=compute`);
    return {
      exec,
      fetch: (i, init) => fetch(i, init),
      sleep: fakeSleep().sleep,
      now: () => new Date(),
      random: () => 0.5,
      paths: { cmdline: join(dir, 'cmdline'), bootId: '/nonexistent', uptime: '/nonexistent', loadavg: '/nonexistent', productUuid: '/nonexistent', resolvConf: join(dir, 'resolv.conf'), networkApplied: join(dir, 'network-applied') },
      log: () => {},
      print: () => {},
      attempts: 1,
      backoff: { baseMs: 1, capMs: 1 },
      ...extra,
    };
  }
  /** the heartbeat number (1-based) before which each detail request went, from the server's request log */
  const detailBeats = () => {
    const out: number[] = [];
    let beats = 0;
    for (const r of srv.got.requests) {
      if (r.endsWith('/heartbeat')) beats++;
      if (r.endsWith('/detail')) out.push(beats + 1);
    }
    return out;
  };

  it('server down at bring-up, up later: the detail is fetched and applied about ten beats on, and the read-back follows', async () => {
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    srv = createTestServer({ token: 't', uuid: UUID, detail: { hostname: 'hv-r12-08', addresses: [prod('10.77.0.9/24')], dns: ['10.77.0.53'] } });
    // down for the bring-up (detail, installed) and the first three beats
    const clock = clocked(async (n) => void (n === 3 && (await srv.listen(port))));
    const { fake, exec } = kernelish();
    const r = await runAgent(deps(exec, { ...clock, maxHeartbeats: 14 }));
    expect(r).toEqual({ outcome: 'heartbeats-done', beats: 11 });
    // the bring-up request and beats 1–3 went to a server that was down; the retry goes before the 11th beat (random
    // 0.5: ×1.0), the 8th the server saw
    expect(detailBeats()).toEqual([8]);
    expect(fake.changes).toContain('ip addr add 10.77.0.9/24 dev bfnc0');
    expect(fake.hostname).toBe('hv-r12-08');
    expect(readFileSync(join(dir, 'resolv.conf'), 'utf8')).toContain('nameserver 10.77.0.53\n');
    expect(JSON.parse(readFileSync(join(dir, 'network-applied'), 'utf8')).addresses).toEqual(['10.77.0.9/24 bfnc0']);
    // the bring-up events were kept and posted once the server answered
    expect(srv.got.events.map((e) => e.phase)).toEqual(['compute-started', 'network-failed', 'agent-error', 'network-configured']);
    // beats 4–10 reached the server without a read-back (nothing applied to read back); the 11th carries it
    const network = srv.got.heartbeats.map((h) => h.network);
    expect(network.slice(0, 7)).toEqual(Array(7).fill(undefined));
    expect(network[7]).toEqual({ addresses: [{ device: 'bfnc0', address: '10.77.0.9/24' }] });
    expect(network.slice(8)).toEqual([undefined, undefined, undefined]);
  });

  it('a detail that keeps failing (5xx) is asked for ever less often, one request per try, and applied once it answers', async () => {
    url = `http://127.0.0.1:${await freePort()}`;
    srv = createTestServer({ token: 't', uuid: UUID, detailFailures: 3, detail: { addresses: [prod('10.77.0.9/24')] } });
    url = await srv.listen(Number(new URL(url).port));
    const { fake, exec } = kernelish();
    const r = await runAgent(deps(exec, { ...clocked(), maxHeartbeats: 80 }));
    expect(r).toEqual({ outcome: 'heartbeats-done', beats: 80 });
    // bring-up, then 10, 20 and 40 beats apart: the fourth request is answered, and nothing is fetched after it
    expect(detailBeats()).toEqual([1, 11, 31, 71]);
    expect(fake.changes.filter((c) => c.startsWith('ip addr add'))).toEqual(['ip addr add 10.77.0.9/24 dev bfnc0']);
    expect(srv.got.events.map((e) => e.phase)).toEqual(['compute-started', 'network-failed', 'network-configured']);
  });

  it('a network applied at bring-up is never fetched again: no re-fetch storm', async () => {
    srv = createTestServer({ token: 't', uuid: UUID, detail: { addresses: [prod('10.77.0.9/24')] } });
    url = await srv.listen(await freePort());
    const { exec } = kernelish();
    const r = await runAgent(deps(exec, { ...clocked(), maxHeartbeats: 200 }));
    expect(r).toEqual({ outcome: 'heartbeats-done', beats: 200 });
    expect(detailBeats()).toEqual([1]);
  });

  it('a step refused for the boot path is not run on the retry; once nothing else is missing the agent stops asking', async () => {
    // the boot lease 192.168.50.23 on bfnc0 is the address the node reaches its server from (ip route get)
    srv = createTestServer({ token: 't', uuid: UUID, detail: { addresses: [prod('10.77.0.9/24')] } });
    url = await srv.listen(await freePort());
    const { fake, exec: inner } = kernelish({ arping: { '10.77.0.9': 'arping-D-reply' } }, ['192.168.50.23/24']);
    const routeGet = JSON.stringify([{ dst: '127.0.0.1', dev: 'bfnc0', prefsrc: '192.168.50.23', flags: [], uid: 0, cache: [] }]);
    const exec: Exec = async (cmd, args, o) => {
      if (`${cmd} ${args.join(' ')}` === 'ip -j route get 127.0.0.1') return { command: 'ip -j route get 127.0.0.1', exitCode: 0, signal: null, stdout: routeGet, stderr: '', timedOut: false };
      // the ARP probe finds 10.77.0.9 taken at bring-up only (the squatter has gone by the retry)
      if (cmd === 'arping' && detailBeats().length > 1) fake.arping = {};
      return inner(cmd, args, o);
    };
    const r = await runAgent(deps(exec, { ...clocked(), maxHeartbeats: 40 }));
    expect(r).toEqual({ outcome: 'heartbeats-done', beats: 40 });
    // bring-up: the address conflicted (no replacement: 409) and the boot address's delete was refused; the retry on
    // beat 11 adds the address; the check on beat 31 finds only the refused step left, and the agent stops there
    expect(detailBeats()).toEqual([1, 11, 31]);
    expect(fake.changes).not.toContain('ip addr del 192.168.50.23/24 dev bfnc0');
    expect(fake.changes.filter((c) => c.startsWith('ip addr add'))).toEqual(['ip addr add 10.77.0.9/24 dev bfnc0']);
    const failed = srv.got.events.filter((e) => e.phase === 'network-failed').map((e) => e.message);
    expect(failed).toHaveLength(2);
    expect(failed[0]).toMatch(/not run: 192\.168\.50\.23\/24 on bfnc0 is the address the node reaches 127\.0\.0\.1 from: it stays; conflict on 10\.77\.0\.9\/24: .*409 pool_exhausted/);
    expect(failed[1]).toBe('ip addr del 192.168.50.23/24 dev bfnc0: not run: 192.168.50.23/24 on bfnc0 is the address the node reaches 127.0.0.1 from: it stays');
  });
});

describe('networkRetryDelay', () => {
  it('is about ten beats, doubles with each failed try, and stops at the cap', () => {
    expect([0, 1, 2, 3].map((n) => networkRetryDelay(n, 30_000, () => 0.5))).toEqual([300_000, 600_000, 1_200_000, 2_400_000]);
    expect(networkRetryDelay(30, 30_000, () => 0.5)).toBe(NETWORK_RETRY_CAP_MS);
    expect(networkRetryDelay(0, 30_000, () => 0)).toBe(150_000);
    expect(networkRetryDelay(0, 30_000, () => 0.999999)).toBe(450_000);
  });

  it('spreads 1,000 nodes that failed together over ten-odd beats instead of one', () => {
    const perBeat = new Map<number, number>();
    for (let i = 0; i < 1000; i++) {
      const beat = Math.floor(networkRetryDelay(0, 30_000, () => i / 1000) / 30_000);
      perBeat.set(beat, (perBeat.get(beat) ?? 0) + 1);
    }
    expect(Math.min(...perBeat.keys())).toBe(5);
    expect(Math.max(...perBeat.keys())).toBe(14);
    expect(Math.max(...perBeat.values())).toBeLessThanOrEqual(100);
  });
});

describe('iscsiState', () => {
  it('is up only when a session to the profile\'s target exists', async () => {
    const d = mkdtempSync(join(tmpdir(), 'bfagent-iscsi-'));
    try {
      // the layout of /sys/class/iscsi_session on a logged-in compute node
      mkdirSync(join(d, 'session1'));
      writeFileSync(join(d, 'session1', 'targetname'), 'iqn.2026-11.bootfarm:other\n');
      expect(await iscsiState(d, 'iqn.2026-11.bootfarm:node1')).toBe('down');
      mkdirSync(join(d, 'session2'));
      writeFileSync(join(d, 'session2', 'targetname'), 'iqn.2026-11.bootfarm:node1\n');
      expect(await iscsiState(d, 'iqn.2026-11.bootfarm:node1')).toBe('up');
      expect(await iscsiState(d, undefined)).toBe('none');
      expect(await iscsiState('/nonexistent', 'iqn.x')).toBe('down');
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});

describe('redactCmdline', () => {
  it('hides the token and the iSCSI password', () => {
    expect(redactCmdline('a bootfarm.token=s3cr3t b bootfarm.iscsi.password=pw c')).toBe('a bootfarm.token=<redacted> b bootfarm.iscsi.password=<redacted> c');
  });
});
