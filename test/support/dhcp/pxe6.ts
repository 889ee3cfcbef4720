// One OVMF VM doing UEFI PXE over IPv6 against the whole bootfarm server (issue 19 item 3), for
// boot/dhcp6/pxe6.qemu.test.ts. Everything lives in one network namespace made here and removed by cleanup():
//
//   [VM virtio-net]─tap─┐
//                       bridge fd5b:0:0:6::1/64 ── bootfarm (`server/cli.ts serve`: DHCPv6 on the bridge, TFTP and
//   veth (carrier) ─────┘                          HTTP on fd5b:0:0:6::1), tcpdump on the bridge, radvd if asked
//
// Why a bridge: a tap has no carrier until QEMU opens it, and libuv's interface list (os.networkInterfaces(), which
// the DHCPv6 server checks at start) leaves out interfaces that are not running, so the server refused to start on
// the bare tap ("there is no interface"). A bridge with a veth port that is up has carrier before QEMU starts.
//
// Firmware: Debian's OVMF 2022.11, the 4M code/vars pair (the VARS copied to the temp dir, as a real NVRAM).
// fw_cfg opt/org.tianocore/IPv4PXESupport=n (read by OVMF's PxeBcPcds at start, as in ovmf.ts) removes the
// "UEFI PXEv4" boot entry, so with -boot order=n the first network entry is "UEFI PXEv6" (measured: the boot log
// reads `BdsDxe: loading Boot0002 "UEFI PXEv6 (MAC:525400BF0607)"`). With IPv4 PXE left on, the VM would first
// spend its DHCPv4 timeout on a link with no DHCPv4 server. The NIC has no option ROM (romfile=): OVMF's own
// NetworkPkg does PXE, as on real UEFI servers.
//
// Router advertisements: OVMF's PXEv6 does not need one; it sends its Solicit straight away and boots from the
// stateful DHCPv6 answer alone (measured with no router on the link). But after its Reply, EDK2's PxeBcSetIp6Address
// waits up to PXEBC_IP6_ROUTE_TABLE_TIMEOUT (10 s, NetworkPkg/UefiPxeBcDxe/PxeBcDhcp6.h) for a gateway in its IPv6
// route table before it uses the address: measured ~13 s from Solicit to TFTP with no RA (or an RA with router
// lifetime 0), ~1.3 s when an RA names a default router. Debian's iPXE (1.0.0+git-20190125) does wait for an RA:
// without one it never sends a DHCPv6 Solicit and prints "No configuration methods succeeded". With `ra: true`,
// radvd advertises fd5b:0:0:6::/64 with the Managed and Other flags, no autonomous prefix (no SLAAC address beside
// the lease) and a router lifetime of 600 s, as a boot network's router would: the firmware skips its 10 s wait and
// iPXE asks DHCPv6 and goes on to /boot.ipxe over IPv6.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab, type Proc, ip, repoRoot, sh } from './netns.ts';
import { type Udp6, readUdp6 } from './pcap.ts';

export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';
export const SNPONLY = '/usr/lib/ipxe/snponly.efi';

export interface Pxe6Options {
  /** run radvd on the bridge (Managed + Other flags) */
  ra: boolean;
  mac?: string;
  /** SMBIOS UUID of the VM: iPXE asks for /ipxe/<this> */
  uuid?: string;
}

export interface Pxe6Boot {
  net: { prefix: string; server: string; bridge: string };
  mac: string;
  uuid: string;
  server: Proc;
  qemu: Proc;
  radvd?: Proc;
  serialLog: string;
  pcap: string;
  /** wall clock (ms since the epoch) when QEMU was started: power-on */
  poweredOn: number;
  /** the server's log lines that parsed as JSON */
  serverLog(): Record<string, unknown>[];
  /** the serial console so far, escape sequences removed */
  serial(): string;
  /** ms from power-on until `re` first showed on the serial console (polled every 100 ms) */
  waitSerial(re: RegExp, timeoutMs: number): Promise<number>;
  /** ms from power-on to the `time` of the first server log line `pred` accepts */
  waitServer(pred: (l: Record<string, unknown>) => boolean, timeoutMs: number): Promise<{ ms: number; line: Record<string, unknown> }>;
  /** IPv6 UDP datagrams seen on the bridge so far */
  packets(): Udp6[];
  /** GET on the server from inside the namespace (curl) */
  get(path: string): string;
  cleanup(): Promise<void>;
}

const json = (l: string): Record<string, unknown> | undefined => {
  try {
    const v = JSON.parse(l) as unknown;
    return v && typeof v === 'object' ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
};

export async function startPxe6Boot({ ra, mac = '52:54:00:bf:06:07', uuid = '6b1d0f19-6e4b-4c3e-9a1f-5254bf060607' }: Pxe6Options): Promise<Pxe6Boot> {
  const lab = new Lab();
  const dir = mkdtempSync(join(tmpdir(), 'bfpxe6-'));
  const cleanup = async () => {
    await lab.cleanup();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const S = lab.ns('p6');
    const net = { prefix: 'fd5b:0:0:6::/64', server: 'fd5b:0:0:6::1', bridge: `bfp6b${lab.id}` };
    const tap = `bfp6t${lab.id}`;
    const va = `bfp6v${lab.id}`;
    const vb = `bfp6w${lab.id}`;
    ip('-n', S, 'link', 'add', net.bridge, 'type', 'bridge');
    ip('-n', S, 'tuntap', 'add', tap, 'mode', 'tap');
    ip('-n', S, 'link', 'add', va, 'type', 'veth', 'peer', 'name', vb);
    for (const port of [tap, va]) ip('-n', S, 'link', 'set', port, 'master', net.bridge);
    for (const l of [tap, va, vb, net.bridge]) ip('-n', S, 'link', 'set', l, 'up');
    // nodad: usable at once, the server binds it before DAD would have finished
    ip('-n', S, 'addr', 'add', `${net.server}/64`, 'dev', net.bridge, 'nodad');

    const pcap = join(dir, 'bridge.pcap');
    // -U and --immediate-mode: each packet written as it is seen (the test reads the file while tcpdump runs); -Z root: keep writing into
    // the 0700 temp dir after tcpdump would drop to its own user
    const tcpdump = lab.run(S, ['tcpdump', '-i', net.bridge, '-n', '-U', '--immediate-mode', '-Z', 'root', '-w', pcap, 'udp']);
    await tcpdump.waitFor((l) => l.includes('listening on'), 15_000);

    let radvd: Proc | undefined;
    if (ra) {
      const conf = join(dir, 'radvd.conf');
      writeFileSync(
        conf,
        // Managed: addresses by DHCPv6; no autonomous prefix; a default router, which ends EDK2's 10 s route wait
        `interface ${net.bridge} {\n  AdvSendAdvert on;\n  AdvManagedFlag on;\n  AdvOtherConfigFlag on;\n  MinRtrAdvInterval 3;\n  MaxRtrAdvInterval 10;\n  AdvDefaultLifetime 600;\n  prefix ${net.prefix} { AdvOnLink on; AdvAutonomous off; };\n};\n`,
      );
      // radvd wants forwarding on before it advertises; the setting is this namespace's own
      sh('ip', ['netns', 'exec', S, 'sysctl', '-q', '-w', 'net.ipv6.conf.all.forwarding=1']);
      radvd = lab.run(S, ['radvd', '-n', '-C', conf, '-p', join(dir, 'radvd.pid'), '-m', 'stderr', '-d', '1']);
      await radvd.waitFor((l) => l.includes('started'), 15_000);
    }

    const config = join(dir, 'bootfarm.json');
    writeFileSync(
      config,
      JSON.stringify({
        dataDir: join(dir, 'data'),
        log: { level: 'debug' },
        http: { host: net.server, port: 8080 },
        auth: { tokens: [{ name: 'admin', role: 'admin', token: 'pxe6-qemu-admin-token-0123456789abcdef' }] },
        fleet: { enabled: false },
        tftp: { address: [net.server], port: 69 },
        // preference 255: the firmware takes this Advertise at once instead of collecting others for a second
        dhcp6: { enabled: true, interface: net.bridge, serverAddress: net.server, httpBase: `http://[${net.server}]:8080`, preference: 255, pools: [{ prefix: net.prefix, range: { start: 'fd5b:0:0:6::100', end: 'fd5b:0:0:6::1ff' } }] },
      }),
    );
    const server = lab.run(S, ['env', `BOOTFARM_CONFIG=${config}`, 'node', '--import', 'tsx', join(repoRoot, 'server/cli.ts'), 'serve']);
    await server.waitFor((l) => json(l)?.['msg'] === 'DHCPv6 serving', 90_000);

    const vars = join(dir, 'OVMF_VARS_4M.fd');
    writeFileSync(vars, readFileSync(OVMF_VARS));
    const serialLog = join(dir, 'serial.log');
    const poweredOn = Date.now();
    // power-on; TCG, no KVM on this machine (FACTS.md)
    const qemu = lab.run(S, [
      'qemu-system-x86_64', '-accel', 'tcg', '-m', '256', '-nographic', '-display', 'none', '-monitor', 'none', '-serial', `file:${serialLog}`,
      '-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`, '-drive', `if=pflash,format=raw,unit=1,file=${vars}`,
      '-fw_cfg', 'name=opt/org.tianocore/IPv4PXESupport,string=n', '-uuid', uuid,
      '-netdev', `tap,id=n0,ifname=${tap},script=no,downscript=no`, '-device', `virtio-net-pci,netdev=n0,mac=${mac},romfile=`, '-boot', 'order=n',
    ]);

    const serial = () => {
      try {
        return readFileSync(serialLog, 'latin1').replace(/\x1b\[[0-9;=?]*[A-Za-z]/g, '');
      } catch {
        return '';
      }
    };
    const serverLog = () => server.lines.map(json).filter((l): l is Record<string, unknown> => l !== undefined);
    return {
      net,
      mac,
      uuid,
      server,
      qemu,
      radvd,
      serialLog,
      pcap,
      poweredOn,
      serverLog,
      serial,
      async waitSerial(re, timeoutMs) {
        const until = Date.now() + timeoutMs;
        for (;;) {
          if (re.test(serial())) return Date.now() - poweredOn;
          if (Date.now() > until) throw new Error(`serial console: no ${re} within ${timeoutMs} ms`);
          if (qemu.child.exitCode !== null) throw new Error(`QEMU exited (${qemu.child.exitCode}) before ${re} showed: ${qemu.lines.slice(-5).join(' | ')}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      },
      async waitServer(pred, timeoutMs) {
        const l = json(await server.waitFor((s) => { const j = json(s); return j !== undefined && pred(j); }, timeoutMs))!;
        return { ms: Date.parse(String(l['time'])) - poweredOn, line: l };
      },
      packets: () => (statSync(pcap, { throwIfNoEntry: false }) ? readUdp6(pcap) : []),
      get: (path) => sh('ip', ['netns', 'exec', S, 'curl', '-sS', '-m', '10', `http://[${net.server}]:8080${path}`]),
      cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
