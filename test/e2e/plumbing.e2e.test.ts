// Proof that the rack's plumbing works before the whole product is there: a QEMU node on the rack bridge,
// powered on through its own IPMI BMC (ipmi_sim → chassis_control → QEMU), PXE boots with QEMU's ROM iPXE,
// gets an address from dnsmasq (DHCP only; bootfarm's own DHCP replaces it in rack.e2e.test.ts) and fetches
// /boot.ipxe and /ipxe/${uuid} from the real bootfarm server in the namespace. Also: the BMC powers the node
// off, tgtd answers with CHAP configured, lldpd advertises on the node's port.
//
// Everything real; no mocks. The host has no iSCSI initiator (FACTS.md), so the tgtd check is the target's own
// view plus a TCP connect to 3260 inside the namespace; the guest login is covered by rack.e2e.test.ts.
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRack, repoRoot, type Rack } from './rack.ts';
import { startBootfarmDhcp, startBootfarmTftp, startNginx, waitTcp } from './services.ts';
import { run, waitUntil, type Managed } from './proc.ts';
import { SERIAL_MARKERS, formatTimingTable } from './timing.ts';
import { requireFiles } from '../../test/harness/require.ts';

describe('e2e rack plumbing', () => {
  let rack: Rack;
  let dnsmasq: Managed;

  beforeAll(async () => {
    rack = await createRack({ nodes: [{ name: 'node0' }, { name: 'uefi0', firmware: 'uefi' }] });
    await rack.startServer({ port: 8080 });
    dnsmasq = rack.startDnsmasq(`${rack.server!.url}/boot.ipxe`);
  });

  afterAll(async () => {
    await rack?.destroy();
  });

  it('powers a node on through its BMC, which PXE boots with ROM iPXE and runs the server’s script', async () => {
    const node = rack.nodes[0]!;
    expect(node.running()).toBe(false);
    const on = await node.bmc.ipmitool(['chassis', 'power', 'on']);
    expect(on.out).toMatch(/Chassis Power Control: Up\/On/);
    await waitUntil('QEMU started by the BMC', 10_000, () => (node.running() ? true : undefined), { context: () => rack.context(node) });
    const status = await node.bmc.ipmitool(['chassis', 'power', 'status']);
    expect(status.out).toMatch(/Chassis Power is on/);

    // iPXE runs /boot.ipxe, which chains to /ipxe/${uuid}: the node's UUID reaches the server from SMBIOS
    await node.waitSerial(SERIAL_MARKERS.dhcp, 60_000);
    await node.waitSerial(SERIAL_MARKERS.ipxeScript, 30_000);
    const discovered = await rack.waitEvent(node.spec.uuid, 'discovered', (e) => e.toState === 'discovered', 30_000, node);
    expect(discovered).toMatchObject({ kind: 'transition', fromState: null, toState: 'discovered', actor: 'ipxe' });
    // /boot.ipxe passes what iPXE knows from SMBIOS and the NIC in the query of /ipxe/${uuid}
    // (`${netX/mac:uristring}` once broke this in Debian's iPXE 1.0.0: the MAC's raw bytes ended the line)
    expect(discovered.data).toMatchObject({ mac: node.spec.mac });
    const shown = await rack.server!.api.get<{ node: Record<string, unknown> }>(`/api/v1/nodes/${node.spec.uuid}`);
    expect(shown.node).toMatchObject({ uuid: node.spec.uuid, state: 'discovered', serial: node.spec.serial, manufacturer: node.spec.manufacturer, product: node.spec.product });
    // the console shows iPXE fetching the per-node script by UUID
    await node.waitSerial(new RegExp(`/ipxe/${node.spec.uuid}`), 30_000);
    console.log(await rack.timingTable(node));

    const off = await node.bmc.ipmitool(['chassis', 'power', 'off']);
    expect(off.out).toMatch(/Chassis Power Control: Down\/Off/);
    await waitUntil('QEMU stopped by the BMC', 10_000, () => (node.running() ? undefined : true), { context: () => rack.context(node) });
    expect((await node.bmc.ipmitool(['chassis', 'power', 'status'])).out).toMatch(/Chassis Power is off/);
  });

  it(`bootfarm’s own DHCP (boot/dhcp, full mode) answers the ROM iPXE in place of dnsmasq`, async () => {
    const node = rack.nodes[0]!;
    await dnsmasq.stop();
    const dhcp = await startBootfarmDhcp({ netns: rack.net.netns, dir: rack.dir, repoRoot, iface: rack.net.bridge, serverIp: rack.net.ip, httpBase: rack.server!.url });
    try {
      const boots = node.serial.boots();
      expect((await node.bmc.ipmitool(['chassis', 'power', 'on'])).out).toMatch(/Up\/On/);
      await waitUntil('a new boot in the serial log', 10_000, () => (node.serial.boots() > boots ? true : undefined));
      await node.waitSerial(SERIAL_MARKERS.dhcp, 60_000);
      // an iPXE client is handed the script URL itself (the chain-loop breaker), no TFTP next-server needed
      await node.waitSerial(new RegExp(`Filename: ${rack.server!.url.replace(/\./g, '\\.')}/boot\\.ipxe`), 5_000);
      await node.waitSerial(new RegExp(`/ipxe/${node.spec.uuid}`), 30_000);
      expect(node.serial.lastBoot()).toMatch(/net0: 10\.77\.0\.1\d\d\/255\.255\.255\.0/);
      console.log(await rack.timingTable(node));
    } finally {
      await node.bmc.ipmitool(['chassis', 'power', 'off']);
      await dhcp.stop();
    }
    await waitUntil('QEMU stopped by the BMC', 10_000, () => (node.running() ? undefined : true));
  });

  it('serves one CHAP-protected LUN per node from tgtd inside the namespace', async () => {
    const tgtd = rack.tgtd!;
    const shown = tgtd.show();
    const lun = tgtd.luns[0]!;
    expect(shown).toContain(`Target 1: ${lun.target}`);
    expect(shown).toMatch(new RegExp(`LUN: ${lun.lun}[\\s\\S]*Backing store path: ${lun.file.replace(/[.]/g, '\\.')}`));
    // CHAP: the account is bound to the target
    expect(shown).toMatch(new RegExp(`Account information:\\s*\\n\\s*${tgtd.chapUser}`));
    await waitTcp(rack.net.netns, rack.net.ip, 3260);
  });

  // The guest side of iSCSI, before the server hands out compute profiles: boot the compute image straight from
  // a static iPXE script with the bootfarm.iscsi.* parameters the server will give it, and watch it log in to
  // tgtd with CHAP, format its blank LUN and mount it. The host cannot do this itself (no initiator here).
  const computeDir = join(repoRoot, 'build/images/compute');
  it(`the compute OS logs in to its tgtd LUN with CHAP, formats and mounts it`, async () => {
    requireFiles('build the images first: make images (make e2e does)', join(computeDir, 'vmlinuz'), join(computeDir, 'initrd.img'));
    const node = rack.nodes[0]!;
    const tgtd = rack.tgtd!;
    const lun = tgtd.luns[0]!;
    const www = join(rack.dir, 'www-compute');
    mkdirSync(www, { recursive: true });
    symlinkSync(join(computeDir, 'vmlinuz'), join(www, 'vmlinuz'));
    symlinkSync(join(computeDir, 'initrd.img'), join(www, 'initrd.img'));
    const base = `http://${rack.net.ip}:8082`;
    const args = [
      'console=ttyS0,115200', 'bootfarm.mode=compute', 'BOOTIF=01-${netX/mac:hexhyp}',
      `bootfarm.server=${base}`, `bootfarm.uuid=${node.spec.uuid}`, 'bootfarm.token=plumbing-only',
      `bootfarm.iscsi.portal=${tgtd.portal}`, `bootfarm.iscsi.target=${lun.target}`, `bootfarm.iscsi.lun=${lun.lun}`,
      `bootfarm.iscsi.initiator=iqn.2026-11.io.bootfarm.node:${node.spec.uuid}`, `bootfarm.iscsi.user=${tgtd.chapUser}`, `bootfarm.iscsi.password=${tgtd.chapPassword}`,
    ];
    writeFileSync(join(www, 'compute.ipxe'), `#!ipxe\nkernel ${base}/vmlinuz initrd=initrd.img ${args.join(' ')}\ninitrd --name initrd.img ${base}/initrd.img\nboot\n`);
    startNginx({ netns: rack.net.netns, dir: rack.dir, ip: rack.net.ip, port: 8082, root: www });
    await waitTcp(rack.net.netns, rack.net.ip, 8082);
    await dnsmasq.stop(); // the proof's dnsmasq hands out /boot.ipxe; this one the compute script
    const dns = rack.startDnsmasq(`${base}/compute.ipxe`);
    try {
      expect(run(['dumpe2fs', '-h', lun.file]).status).not.toBe(0); // blank before
      const boots = node.serial.boots();
      expect((await node.bmc.ipmitool(['chassis', 'power', 'on'])).out).toMatch(/Up\/On/);
      await waitUntil('a new boot in the serial log', 10_000, () => (node.serial.boots() > boots ? true : undefined));
      await node.waitSerial(/Linux version \d/, 90_000);
      await node.waitSerial(/iscsi: login \S+ at [\d.]+:3260 lun 1 as \S+ \(CHAP user bfe2e\)/, 90_000);
      await node.waitSerial(/iscsi: \S+ is blank: mkfs\.ext4/, 60_000);
      await node.waitSerial(/iscsi: \S+ mounted at \/var\/lib\/bootfarm/, 60_000);
      // the write went through iSCSI into the LUN's backing file on this side
      const fs = run(['dumpe2fs', '-h', lun.file]);
      expect(fs.status, fs.stderr).toBe(0);
      expect(fs.stdout).toMatch(/Filesystem volume name:\s+bootfarm-state/);
      // and tgtd shows the guest's session under the CHAP-bound target
      expect(tgtd.show()).toMatch(new RegExp(`Initiator: iqn\\.2026-11\\.io\\.bootfarm\\.node:${node.spec.uuid}`));
      const t0 = node.powerOns().at(-1)!;
      const at = (re: RegExp) => node.serial.seenAt(re);
      console.log(
        formatTimingTable('compute OS booted straight from nginx (no stage-1), to its iSCSI state disk', [
          { phase: 'power-on', at: 0, source: 'BMC chassis_control' },
          { phase: 'DHCP', at: (at(SERIAL_MARKERS.dhcp) ?? NaN) - t0, source: 'serial: iPXE "Configuring … ok"' },
          { phase: 'kernel', at: (at(SERIAL_MARKERS.kernel) ?? NaN) - t0, source: 'serial: "Linux version" (after 8 MB + 57 MB over HTTP)' },
          { phase: 'iSCSI login', at: (at(/iscsi: login /) ?? NaN) - t0, source: 'serial: "iscsi: login …"' },
          { phase: 'mounted', at: (at(/mounted at \/var\/lib\/bootfarm/) ?? NaN) - t0, source: 'serial: "iscsi: … mounted"' },
        ]),
      );
    } finally {
      await node.bmc.ipmitool(['chassis', 'power', 'off']);
      await dns.stop();
    }
    await waitUntil('QEMU stopped by the BMC', 10_000, () => (node.running() ? undefined : true));
  });

  // OVMF's own PXE client (the NIC has no option ROM) gets snponly.efi by TFTP from bootfarm's TFTP module, which
  // then does DHCP again as iPXE and fetches the server's scripts. DHCP from dnsmasq isolates the TFTP part.
  it(`a UEFI node (OVMF PXE) gets snponly.efi from bootfarm’s TFTP (boot/tftp) and runs the server’s script`, async () => {
    requireFiles('apt-get install ovmf ipxe (deps/e2e.txt; make test installs them)', '/usr/share/ovmf/OVMF.fd', '/usr/lib/ipxe/snponly.efi');
    const node = rack.nodes[1]!;
    await dnsmasq.stop();
    const tftp = await startBootfarmTftp({ netns: rack.net.netns, dir: rack.dir, repoRoot, address: rack.net.ip });
    const dns = rack.startDnsmasq(`${rack.server!.url}/boot.ipxe`, undefined, rack.net.ip);
    try {
      expect((await node.bmc.ipmitool(['chassis', 'power', 'on'])).out).toMatch(/Up\/On/);
      await node.waitSerial(SERIAL_MARKERS.ipxeScript, 90_000);
      await node.waitSerial(new RegExp(`/ipxe/${node.spec.uuid}`), 30_000);
      await rack.waitEvent(node.spec.uuid, 'discovered', (e) => e.toState === 'discovered', 30_000, node);
      // iPXE under EFI says which platform it is
      expect(node.serial.lastBoot()).toMatch(/iPXE/);
      console.log(await rack.timingTable(node));
    } finally {
      await node.bmc.ipmitool(['chassis', 'power', 'off']);
      await dns.stop();
      await tftp.stop();
    }
    const stats = JSON.parse(/^STATS (.*)$/m.exec(tftp.output())?.[1] ?? '{}') as { transfersCompleted?: number; bytesSent?: number };
    expect(stats.transfersCompleted).toBeGreaterThanOrEqual(1);
    expect(stats.bytesSent).toBeGreaterThan(100_000); // snponly.efi is ~170 KB
    await waitUntil('QEMU stopped by the BMC', 10_000, () => (node.running() ? undefined : true));
  });

  it('advertises an LLDP neighbour with a system name and port description on the node’s port', async () => {
    const lldp = rack.lldpd!;
    const cfg = lldp.cli(['-f', 'json0', 'show', 'interfaces']);
    const parsed = JSON.parse(cfg) as { lldp: { interface: { name: string; chassis: { name: { value: string }[] }[]; port: { descr?: { value: string }[] }[] }[] }[] };
    const iface = parsed.lldp[0]!.interface.find((i) => i.name === rack.nodes[0]!.spec.tap);
    expect(iface?.chassis[0]?.name[0]?.value).toBe(lldp.systemName);
    expect(iface?.port[0]?.descr?.[0]?.value).toBe(rack.nodes[0]!.portDescription);
  });
});
