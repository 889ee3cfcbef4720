// One OVMF VM booting from bootfarm's DHCP server, for the UEFI HTTP boot test and the TFTP-vs-HTTP benchmark
// (issue 19 item 2). Everything runs in network namespaces made here and removed by cleanup():
//   full mode:  [VM]─tap─(ns S: our DHCP in full mode + http-probe with TFTP)
//   proxy mode: [VM]─tap─bridge─(ns S: our DHCP in proxy mode + http-probe)─veth─(ns D: dnsmasq, addresses only)
// boot 'http': OVMF's PXE is switched off through fw_cfg (opt/org.tianocore/IPv4PXESupport and IPv6PXESupport =
// n, read by OVMF's PxeBcPcds at start), so its boot order reaches the "UEFI HTTPv4" entry, which Debian's OVMF
// has (measured: 2022.11-6+deb12u2 prints ">>Start HTTP Boot over IPv4."). boot 'pxe': OVMF's default order,
// PXEv4 first (TFTP). The NIC has no option ROM (romfile=): OVMF's own network stack does the firmware part, as
// on real UEFI servers. Both get the same iPXE binary (ipxe.efi) so that only the transport differs.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab, type Proc, ip, repoRoot, sh } from './netns.ts';

const OVMF = '/usr/share/ovmf/OVMF.fd';

export interface OvmfBootOptions {
  mode: 'full' | 'proxy';
  boot: 'http' | 'pxe';
  mac?: string;
  /** radvd on the link with a prefix and router lifetime 0 (test/e2e/services.ts): Debian's iPXE 1.0.0 otherwise
   * spends ~16 s in "Configuring" waiting for IPv6 before it fetches /boot.ipxe (bench/boot/uefi-paths.ts) */
  ra?: boolean;
}

/** ms after QEMU was started (power-on) */
export interface BootTimings {
  firstOffer: number;
  binaryFetched: number;
  bootScript: number;
}

export interface OvmfBoot {
  dhcp: Proc;
  files: Proc;
  qemu: Proc;
  dnsmasq?: Proc;
  serialLog: string;
  /** performance.now() when QEMU was started (power-on); the times in BootTimings count from it */
  poweredOn: number;
  /** resolves once iPXE fetched /boot.ipxe (or, with until 'binary', once the firmware fetched ipxe.efi), with
   * when each step happened (bootScript is NaN when not waited for) */
  timings(timeoutMs: number, until?: 'script' | 'binary'): Promise<BootTimings>;
  cleanup(): Promise<void>;
}

export async function startOvmfBoot({ mode, boot, mac = '52:54:00:bf:00:19', ra = false }: OvmfBootOptions): Promise<OvmfBoot> {
  const lab = new Lab();
  const dir = mkdtempSync(join(tmpdir(), 'bfovmf-'));
  const cleanup = async () => {
    await lab.cleanup();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const S = lab.ns('o');
    const tap = `bfot${lab.id}`;
    const net = '10.71.0';
    ip('-n', S, 'tuntap', 'add', tap, 'mode', 'tap');
    let served = tap;
    let dnsmasq: Proc | undefined;
    if (mode === 'proxy') {
      // the addresses come from dnsmasq in its own namespace; ours answers boot clients beside it (proxyDHCP)
      const D = lab.ns('d');
      served = `bfob${lab.id}`;
      ip('-n', S, 'link', 'add', served, 'type', 'bridge');
      lab.link({ ns: S, name: `bfos${lab.id}` }, { ns: D, name: `bfod${lab.id}`, addr: `${net}.2/24` });
      ip('-n', S, 'link', 'set', `bfos${lab.id}`, 'master', served);
      ip('-n', S, 'link', 'set', tap, 'master', served);
      ip('-n', S, 'link', 'set', served, 'up');
      dnsmasq = lab.run(D, ['dnsmasq', '--no-daemon', '--conf-file=/dev/null', '--port=0', `--interface=bfod${lab.id}`, '--bind-interfaces', `--dhcp-range=${net}.100,${net}.110,255.255.255.0,1h`, `--dhcp-leasefile=${join(dir, 'dnsmasq.leases')}`, '--log-dhcp']);
    }
    ip('-n', S, 'addr', 'add', `${net}.1/24`, 'dev', served);
    ip('-n', S, 'link', 'set', tap, 'up');
    if (ra) {
      const conf = join(dir, 'radvd.conf');
      // not a default router, only an autonomous prefix: iPXE's autoconfiguration finishes at once (RFC 4861 6.2.1)
      writeFileSync(conf, `interface ${served} {\n  AdvSendAdvert on;\n  MinRtrAdvInterval 3;\n  MaxRtrAdvInterval 10;\n  AdvDefaultLifetime 0;\n  prefix fd71::/64 { AdvOnLink on; AdvAutonomous on; };\n};\n`);
      ip('-n', S, 'addr', 'add', 'fd71::1/64', 'dev', served, 'nodad');
      sh('ip', ['netns', 'exec', S, 'sysctl', '-q', '-w', 'net.ipv6.conf.all.forwarding=1']);
      lab.run(S, ['radvd', '-n', '-C', conf, '-p', join(dir, 'radvd.pid'), '-m', 'stderr']);
    }
    const config = join(dir, 'dhcp.json');
    writeFileSync(
      config,
      JSON.stringify({
        mode,
        interface: served,
        serverIp: `${net}.1`,
        httpBase: `http://${net}.1:8080`,
        // the same iPXE binary over TFTP (PXE) and HTTP (HTTP boot): only the transport differs
        bootfiles: { bios: 'undionly.kpxe', uefi: 'ipxe.efi', uefiHttp: 'ipxe.efi', script: 'boot.ipxe' },
        pools: mode === 'full' ? [{ subnet: `${net}.0/24`, range: { start: `${net}.100`, end: `${net}.110` }, routers: [`${net}.1`] }] : [],
        logLevel: 'debug',
      }),
    );
    const dhcp = lab.run(S, ['node', '--import', 'tsx', join(repoRoot, 'test/support/dhcp/serve.ts'), config]);
    const files = lab.run(S, ['node', '--import', 'tsx', join(repoRoot, 'test/support/dhcp/http-probe.ts'), `${net}.1`, '8080', 'tftp']);
    await dhcp.waitFor((l) => l === '{"msg":"ready"}', 60_000);
    await files.waitFor((l) => l === 'tftp listening', 60_000);
    if (dnsmasq) await dnsmasq.waitFor((l) => l.includes('DHCP, IP range'), 30_000);
    const serialLog = join(dir, 'serial.log');
    const knobs = boot === 'http' ? ['-fw_cfg', 'name=opt/org.tianocore/IPv4PXESupport,string=n', '-fw_cfg', 'name=opt/org.tianocore/IPv6PXESupport,string=n'] : [];
    // power-on: QEMU starts here; TCG, no KVM on this machine (FACTS.md)
    const t0 = performance.now();
    const at = (p: Promise<string>) => p.then(() => Math.round(performance.now() - t0));
    const firstOffer = at(dhcp.waitFor((l) => l.includes('DHCPOFFER"'), 600_000));
    const binaryFetched = at(files.waitFor((l) => l.startsWith('SENT /ipxe.efi') || l === 'TFTP done ipxe.efi', 600_000));
    const bootScript = at(files.waitFor((l) => l === 'GET /boot.ipxe', 600_000));
    for (const p of [firstOffer, binaryFetched, bootScript]) p.catch(() => undefined);
    const qemu = lab.run(S, ['qemu-system-x86_64', '-accel', 'tcg', '-m', '256', '-nographic', '-display', 'none', '-monitor', 'none', '-serial', `file:${serialLog}`, '-bios', OVMF, ...knobs, '-netdev', `tap,id=n0,ifname=${tap},script=no,downscript=no`, '-device', `virtio-net-pci,netdev=n0,mac=${mac},romfile=`, '-boot', 'order=n']);
    return {
      dhcp,
      files,
      qemu,
      dnsmasq,
      serialLog,
      poweredOn: t0,
      async timings(timeoutMs, until = 'script') {
        const limit = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no ${until === 'script' ? '/boot.ipxe' : 'ipxe.efi'} within ${timeoutMs} ms`)), timeoutMs).unref());
        const last = await Promise.race([until === 'script' ? bootScript : binaryFetched, limit]);
        return { firstOffer: await firstOffer, binaryFetched: await binaryFetched, bootScript: until === 'script' ? last : Number.NaN };
      },
      cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
