// Builds the OS images from Debian packages, checks their manifests and reproducibility, and boots them under
// QEMU (TCG) to watch /init on the serial console. Slow (a build and two VM boots, ~1.5 min on two busy cores):
// so it is an e2e suite (vitest.e2e.config.ts: `make e2e`, part of `make test`; `make images-test` alone), never
// in the default `npx vitest run`, and it never skips: a missing tool fails the suite naming its Debian package.
//
// The agent in these images is a STAND-IN shell script (written below), not the compiled agent: the test is
// about the image (modules, NIC, DHCP, lldpd, agent start, failure report, console), and the stand-in reports
// what it sees so the console shows the agent's view. Set AGENT_BIN to boot with the real agent instead.
//
// No traffic leaves the VM: QEMU user networking with restrict=on, and the "server" and iSCSI portal the guest
// sees (10.0.2.100) are guestfwd rules to listeners this test starts on 127.0.0.1.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentEvent } from '../server/contract/agent.ts';
import { buildImages, type Manifest } from './build.ts';
import { SerialVm } from './qemu.ts';
import { requireCommand } from '../test/harness/require.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const OUT = path.join(ROOT, 'build/images-test');
const CACHE = path.join(ROOT, 'build/images-cache');
const UUID = '5c1c8e2a-6f0b-4d4e-9a51-0d3c2b1a9e77';
const TOKEN = 'tok-images-test';
const MAC = '52:54:00:b0:07:01';
// A low zstd level keeps the test's builds quick; the level changes size only, not what the test checks.
const ZSTD_LEVEL = 3;

const STAND_IN_AGENT = `#!/bin/sh
# Stand-in for build/agent/bootfarm-agent (test double written by images/boot.e2e.test.ts).
echo "stand-in agent: $1 $2 server=$BOOTFARM_SERVER uuid=$BOOTFARM_UUID iface=$BOOTFARM_IFACE ip=$BOOTFARM_IP"
pidof lldpd >/dev/null && echo "stand-in agent: lldpd is running"
[ -c /dev/ipmi0 ] && echo "stand-in agent: $(ipmitool mc info | grep 'IPMI Version')"
if [ "$2" = compute ]; then
  grep ' /var/lib/bootfarm ' /proc/mounts | sed 's/^/stand-in agent: state on /'
  echo written-by-compute > /var/lib/bootfarm/probe && sync && echo "stand-in agent: state dir writable"
fi
echo "stand-in agent: giving up with exit 3"
exit 3
`;

// QEMU's guestfwd to "tcp:HOST:PORT" is one chardev connection for the VM's life; "cmd:" spawns a program per
// guest connection. This one bridges its stdio to a listener on 127.0.0.1.
const TCP_BRIDGE = `import net from 'node:net';
const s = net.connect(Number(process.argv[2]), '127.0.0.1');
process.stdin.pipe(s);
s.pipe(process.stdout);
s.on('close', () => process.exit(0));
s.on('error', () => process.exit(1));
`;

const sha256 = (file: string): string => createHash('sha256').update(fs.readFileSync(file)).digest('hex');
describe('OS images (build + QEMU boot)', () => {
  let tmp: string;
  const fwd = (guest: string, port: number): string => `guestfwd=tcp:${guest}-cmd:node ${path.join(tmp, 'bridge.mjs')} ${port}`;
  let agentBin: string;
  let manifests: Record<string, Manifest>;
  const events: { url: string; auth: string | undefined; body: string }[] = [];
  let server: http.Server;
  let serverPort: number;
  let vm: SerialVm | undefined;
  let tgtd: ChildProcess | undefined;

  beforeAll(async () => {
    // deps/os-images.txt; make test installs them
    requireCommand('qemu-system-x86_64', 'qemu-system-x86');
    requireCommand('tgtd', 'tgt');
    requireCommand('zstd', 'zstd');
    requireCommand('cpio', 'cpio');
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bfimg-'));
    agentBin = process.env.AGENT_BIN ?? path.join(tmp, 'bootfarm-agent');
    if (!process.env.AGENT_BIN) fs.writeFileSync(agentBin, STAND_IN_AGENT, { mode: 0o755 });
    fs.writeFileSync(path.join(tmp, 'bridge.mjs'), TCP_BRIDGE);
    // Reused when build/images-test holds a build of the same inputs (packages, recipe, agent, settings).
    const built = await buildImages({ out: OUT, cache: CACHE, agentBin, zstdLevel: ZSTD_LEVEL, reuse: true, log: () => {} });
    manifests = Object.fromEntries(built.map((m) => [m.name, m]));
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        events.push({ url: `${req.method} ${req.url}`, auth: req.headers.authorization, body });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    serverPort = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await vm?.stop();
    if (tgtd?.pid !== undefined && tgtd.exitCode === null) {
      const gone = new Promise((r) => tgtd!.once('exit', r));
      process.kill(tgtd.pid, 'SIGKILL');
      await gone;
    }
    await new Promise((r) => server?.close(r));
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('lists what is in each image, with digests that match the files', () => {
    for (const name of ['stage1', 'compute'] as const) {
      const m = manifests[name]!;
      const dir = path.join(OUT, name);
      expect(sha256(path.join(dir, 'vmlinuz'))).toBe(m.kernel.sha256);
      expect(sha256(path.join(dir, 'initrd.img'))).toBe(m.initrd.sha256);
      expect(fs.statSync(path.join(dir, 'initrd.img')).size).toBe(m.initrd.size);
      // zstd frame magic (RFC 8878 §3.1.1): the kernel's RD_ZSTD decompressor reads it.
      expect(fs.readFileSync(path.join(dir, 'initrd.img')).subarray(0, 4).toString('hex')).toBe('28b52ffd');
      expect(m.kernel.package).toMatch(/^linux-image-6\.1\.\S+-amd64=/);
      expect(m.agent.sha256).toBe(sha256(agentBin));
      const paths = new Set(m.files.map((f) => f.path));
      for (const p of ['/init', '/bin/busybox', '/bin/sh', '/bin/bootfarm-agent', '/etc/udhcpc/default.script', '/lib64/ld-linux-x86-64.so.2', '/lib/x86_64-linux-gnu/libc.so.6', '/dev/console']) {
        expect(paths, `${name} has ${p}`).toContain(p);
      }
      for (const mod of ['virtio_ring', 'virtio', 'virtio_pci_modern_dev', 'virtio_pci_legacy_dev', 'virtio_pci', 'failover', 'net_failover', 'virtio_net', 'e1000e', 'igb', 'ixgbe', 'i40e', 'ice', 'mlx5_core', 'bnxt_en']) {
        expect(m.modules.load, `${name} loads ${mod}`).toContain(mod);
      }
    }
    const s1 = manifests.stage1!;
    expect(s1.packages.map((p) => p.name)).toEqual(expect.arrayContaining(['busybox-static', 'lldpd', 'dmidecode', 'ethtool', 'ipmitool', 'kexec-tools', 'libc6', 'libxenmisc4.17']));
    for (const p of ['/usr/sbin/lldpd', '/usr/sbin/lldpcli', '/usr/sbin/dmidecode', '/sbin/ethtool', '/usr/bin/ipmitool', '/sbin/kexec', '/lib/x86_64-linux-gnu/libxenctrl.so.4.17']) {
      expect(s1.files.map((f) => f.path)).toContain(p);
    }
    expect(s1.modules.load).toEqual(expect.arrayContaining(['ipmi_msghandler', 'ipmi_devintf', 'ipmi_si']));
    const c = manifests.compute!;
    expect(c.files.map((f) => f.path)).toEqual(expect.arrayContaining(['/sbin/iscsistart', '/sbin/mke2fs', '/sbin/mkfs.ext4', '/etc/mke2fs.conf']));
    expect(c.modules.load).toEqual(expect.arrayContaining(['iscsi_tcp', 'libiscsi', 'libiscsi_tcp', 'scsi_transport_iscsi', 'scsi_mod', 'sd_mod', 'crc32c_generic', 'ext4', 'jbd2', 'mbcache', 'crc16']));
    // Each module is loaded after everything it depends on.
    expect(c.modules.load.indexOf('scsi_transport_iscsi')).toBeLessThan(c.modules.load.indexOf('iscsi_tcp'));
  });

  it('builds the same bytes from the same inputs (a second, fresh build)', async () => {
    const again = await buildImages({ out: path.join(tmp, 'again'), cache: CACHE, agentBin, images: ['stage1'], zstdLevel: ZSTD_LEVEL, log: () => {} });
    expect(again[0]!.initrd.sha256).toBe(manifests.stage1!.initrd.sha256);
    expect(again[0]!.kernel.sha256).toBe(manifests.stage1!.kernel.sha256);
    expect(fs.readFileSync(path.join(tmp, 'again/stage1/manifest.json'), 'utf8')).toBe(fs.readFileSync(path.join(OUT, 'stage1/manifest.json'), 'utf8'));
  }, 120_000);

  it('boots stage-1: modules, boot NIC by BOOTIF, DHCP, lldpd, agent; a failed agent leaves a report and a console', async () => {
    const dir = path.join(OUT, 'stage1');
    await vm?.stop();
    vm = new SerialVm({
      kernel: path.join(dir, 'vmlinuz'),
      initrd: path.join(dir, 'initrd.img'),
      // initrd= is what EFI iPXE adds; /init must ignore it.
      append: `console=ttyS0 initrd=initrd.img bootfarm.server=http://10.0.2.100 bootfarm.token=${TOKEN} bootfarm.uuid=${UUID} BOOTIF=01-${MAC.replaceAll(':', '-')}`,
      args: [
        // A second NIC first on the bus: the boot NIC must be chosen by BOOTIF's MAC, not by order.
        '-nic', 'user,model=virtio-net-pci,mac=52:54:00:b0:07:99,restrict=on',
        '-nic', `user,model=virtio-net-pci,mac=${MAC},restrict=on,${fwd('10.0.2.100:80', serverPort)}`,
        // An IPMI BMC (KCS) so ipmi_si finds its hardware, as on a server.
        '-device', 'ipmi-bmc-sim,id=bmc0', '-device', 'isa-ipmi-kcs,bmc=bmc0',
      ],
    });
    await vm.waitFor(/bootfarm: stage1 \/init started \(image dev\+[0-9a-f]{12}, kernel 6\.1\.\S+-amd64/, 90_000);
    await vm.waitFor(new RegExp(`cmdline server=http://10\\.0\\.2\\.100 uuid=${UUID} mode=stage1`), 10_000);
    // up to the line's end: the serial log can hold the line's first half only (a clean-clone CI run matched
    // "… 0 not loaded" before ", 1 skipped (…)" had arrived, and read the optional group as missing)
    const mods = await vm.waitFor(/modules loaded: (\d+) ok, (\d+) not loaded(?: \([^)]*\))?(?:, (\d+) skipped \(([^)]*)\))?\r?\n/, 60_000);
    expect(Number(mods[2])).toBe(0);
    // this VM boots the kernel directly (no EFI): efivarfs, which only loads with EFI runtime services, is skipped
    expect(mods[4]).toBe('efivarfs: not an EFI boot');
    expect(Number(mods[1]) + Number(mods[3])).toBe(manifests.stage1!.modules.load.length);
    await vm.waitFor(/module virtio_net is loaded/, 5_000);
    const nic = await vm.waitFor(/boot NIC (\S+) \((\S+), driver (\S+)\)/, 20_000);
    expect(nic[2]).toBe(MAC);
    expect(nic[3]).toBe('virtio_net');
    await vm.waitFor(new RegExp(`nic ${nic[1]} up, address 10\\.0\\.2\\.15/24`), 30_000);
    await vm.waitFor(/lldpd started \(pid \d+\)/, 20_000);
    await vm.waitFor(/starting agent: \/bin\/bootfarm-agent --mode stage1 \(server http:\/\/10\.0\.2\.100\)/, 10_000);
    await vm.waitFor(new RegExp(`stand-in agent: --mode stage1 server=http://10\\.0\\.2\\.100 uuid=${UUID} iface=${nic[1]} ip=10\\.0\\.2\\.15/24`), 20_000);
    await vm.waitFor(/stand-in agent: lldpd is running/, 5_000);
    await vm.waitFor(/stand-in agent: IPMI Version\s+: 2\.0/, 20_000);

    // The failure report: on the console (with the agent log tail) and to the server as an agent-error event.
    await vm.waitFor(/FAILED at agent: agent \(stage1\) exited with code 3/, 20_000);
    await vm.waitFor(/----- last 20 lines of \/var\/log\/bootfarm-agent\.log -----\s+stand-in agent: --mode stage1/, 5_000);
    await vm.waitFor(/agent-error event posted to http:\/\/10\.0\.2\.100/, 30_000);
    expect(events).toHaveLength(1);
    expect(events[0]!.url).toBe(`POST /api/v1/agent/${UUID}/events`);
    expect(events[0]!.auth).toBe(`Bearer ${TOKEN}`);
    const event = AgentEvent.parse(JSON.parse(events[0]!.body));
    expect(event.phase).toBe('agent-error');
    expect(event.message).toBe('agent (stage1) exited with code 3');
    expect(String(event.data?.logTail)).toContain('stand-in agent: giving up with exit 3');

    // A live console, not a reboot: it answers, and leaving it runs the agent again in the same boot.
    const consoleAt = (await vm.waitFor(/rescue console on ttyS0/, 10_000)).index;
    // busybox ash's prompt; its line editor follows it with a cursor-position query (ESC [6n)
    await vm.waitFor(/\/ # /, 20_000, consoleAt);
    vm.write('echo alive-$((6*7))\n');
    await vm.waitFor(/alive-42/, 20_000, consoleAt);
    vm.write('exit\n');
    await vm.waitFor(/rescue console closed: retrying[\s\S]*starting agent: \/bin\/bootfarm-agent --mode stage1/, 20_000, consoleAt);
    await vm.waitFor(/FAILED at agent[\s\S]*rescue console on ttyS0/, 20_000, consoleAt + 1);
    expect(vm.console.match(/Linux version 6\.1/g)).toHaveLength(1);
    await vm.stop();
    vm = undefined;
  }, 240_000);

  it('boots compute: static ip=, iSCSI login with CHAP to a real target, mkfs.ext4 on the blank LUN, state mounted, agent in compute mode', async () => {
    // tgtd (user-space iSCSI target) on loopback with its own control port; a 64 MiB blank LUN file.
    const ctl = String(2000 + Math.floor(Math.random() * 5000));
    const portal = await freePort();
    const lun = path.join(tmp, 'lun1.img');
    fs.writeFileSync(lun, '');
    fs.truncateSync(lun, 64 << 20);
    tgtd = spawn('tgtd', ['-f', '-C', ctl, '--iscsi', `portal=127.0.0.1:${portal}`], { stdio: 'ignore' });
    const iqn = 'iqn.2026-11.test.bootfarm:node-b00701';
    const tgtadm = (...a: string[]): string => execFileSync('tgtadm', ['-C', ctl, '--lld', 'iscsi', ...a], { encoding: 'utf8' });
    await until(() => {
      try {
        execFileSync('tgtadm', ['-C', ctl, '--lld', 'iscsi', '--op', 'show', '--mode', 'target'], { stdio: 'ignore' });
        return true;
      } catch {
        return false;
      }
    }, 10_000);
    tgtadm('--op', 'new', '--mode', 'target', '--tid', '1', '-T', iqn);
    tgtadm('--op', 'new', '--mode', 'logicalunit', '--tid', '1', '--lun', '1', '-b', lun);
    tgtadm('--op', 'bind', '--mode', 'target', '--tid', '1', '-I', 'ALL');
    tgtadm('--op', 'new', '--mode', 'account', '--user', 'node-b00701', '--password', 'chap-secret-1234');
    tgtadm('--op', 'bind', '--mode', 'account', '--tid', '1', '--user', 'node-b00701');

    const dir = path.join(OUT, 'compute');
    await vm?.stop();
    vm = new SerialVm({
      kernel: path.join(dir, 'vmlinuz'),
      initrd: path.join(dir, 'initrd.img'),
      append: [
        'console=ttyS0 bootfarm.mode=compute',
        // Static address from ip= (no BOOTIF: the device field picks the NIC), as a server may write for compute.
        `bootfarm.server=http://10.0.2.100 bootfarm.token=${TOKEN} bootfarm.uuid=${UUID} ip=10.0.2.15::10.0.2.2:255.255.255.0:node:eth0:off`,
        `bootfarm.iscsi.portal=10.0.2.101:3260 bootfarm.iscsi.target=${iqn} bootfarm.iscsi.lun=1`,
        'bootfarm.iscsi.initiator=iqn.2026-11.test.bootfarm:initiator-b00701 bootfarm.iscsi.user=node-b00701 bootfarm.iscsi.password=chap-secret-1234',
      ].join(' '),
      args: ['-nic', `user,model=virtio-net-pci,mac=${MAC},restrict=on,${fwd('10.0.2.100:80', serverPort)},${fwd('10.0.2.101:3260', portal)}`],
    });
    await vm.waitFor(/bootfarm: compute \/init started/, 90_000);
    await vm.waitFor(/modules loaded: \d+ ok/, 60_000);
    await vm.waitFor(/boot NIC eth0 \(52:54:00:b0:07:01, driver virtio_net\)/, 30_000);
    await vm.waitFor(/nic eth0 up, static 10\.0\.2\.15\/24/, 10_000);
    await vm.waitFor(/iscsi: login iqn\.2026-11\.test\.bootfarm:node-b00701 at 10\.0\.2\.101:3260 lun 1 .*CHAP user node-b00701/, 10_000);
    const dev = await vm.waitFor(/iscsi: LUN 1 is (\/dev\/sd[a-z]) \(131072 sectors\)/, 40_000);
    await vm.waitFor(new RegExp(`iscsi: ${dev[1]} is blank: mkfs\\.ext4`), 10_000);
    await vm.waitFor(new RegExp(`iscsi: ${dev[1]} mounted at /var/lib/bootfarm`), 60_000);
    await vm.waitFor(/starting agent: \/bin\/bootfarm-agent --mode compute/, 10_000);
    await vm.waitFor(new RegExp(`stand-in agent: state on ${dev[1]} /var/lib/bootfarm ext4`), 20_000);
    await vm.waitFor(/stand-in agent: state dir writable/, 20_000);
    await vm.waitFor(/FAILED at agent: agent \(compute\) exited with code 3/, 20_000);
    await vm.stop();
    vm = undefined;
    // The LUN now holds an ext4 file system: superblock magic 0xEF53 at byte 1024 + 56.
    const sb = Buffer.alloc(2);
    const fd = fs.openSync(lun, 'r');
    fs.readSync(fd, sb, 0, 2, 1080);
    fs.closeSync(fd);
    expect(sb.readUInt16LE(0)).toBe(0xef53);
  }, 240_000);
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = http.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Polls a readiness check (a daemon's control socket) with a bound; the check itself is the event waited on. */
async function until(ready: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ready()) {
    if (Date.now() > end) throw new Error(`not ready within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
