// Issue 19 item 3, last sentence: a node on an IPv6-only boot network reaches active. The product rack (product.ts)
// with `ipv6Only`: the bridge has fd00:77::1/64 and no IPv4 address at all; radvd advertises fd00:77::/64 with the
// Managed flag (iPXE asks DHCPv6) and the autonomous flag (the stage-1 and compute OS autoconfigure: Debian's
// busybox-static has no DHCPv6 client); the server answers DHCPv6 only (its DHCPv4 is off), serves HTTP on [::]:8080
// and names itself http://[fd00:77::1]:8080; tgtd's portal is [fd00:77::1]:3260. PostgreSQL and Ceph sit on the
// namespace's loopback, which is not the boot network.
//
// One BIOS node (SeaBIOS + the NIC ROM's iPXE, which has IPv6): power-on by its BMC → iPXE (DHCPv4 times out, DHCPv6
// with user class iPXE answers with /boot.ipxe) → /ipxe/<uuid> → stage-1 kernel + initrd over IPv6 → /init's SLAAC
// address → agent registers → profile → kexec → compute's SLAAC → iSCSI login to [fd00:77::1]:3260 → installed →
// heartbeats → active. Phase times are printed (README "Firmware and boot paths" keeps them).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requirePieces, startProductRack, type ProductRack } from './product.ts';
import { run, waitUntil } from './proc.ts';
import { SERIAL_MARKERS } from './timing.ts';

const SLAAC = /bootfarm: nic (\S+) up, IPv6 (fd00:77::[0-9a-f:]+)\/64 \(autoconfigured from a router advertisement in [\d.]+ s\)/;
const ISCSI_LOGIN = /bootfarm: iscsi: login \S+ at \[fd00:77::1\]:3260 lun 1/;
const ISCSI_MOUNTED = /bootfarm: iscsi: \S+ mounted at \/var\/lib\/bootfarm/;

describe('rack: an IPv6-only boot network — a BIOS node boots to active with no IPv4 on the link', () => {
  beforeAll(() => requirePieces('build/images', 'TFTP', 'image store', 'fleet'));
  let pr: ProductRack | undefined;
  beforeAll(async () => {
    pr = await startProductRack({ nodes: [{ name: 'v6n0' }], ipv6Only: true });
  });
  afterAll(async () => {
    await pr?.stop();
  });

  it('DHCPv6 → iPXE script → stage-1 (SLAAC) → registered → kexec → compute (SLAAC, iSCSI over IPv6) → active', { timeout: 480_000 }, async () => {
    const rack = pr!.rack;
    const node = rack.nodes[0]!;
    const { uuid } = node.spec;
    const api = rack.server!.api;
    try {
      // the link has no IPv4 at all: nothing on the bridge but the IPv6 address (and its link-local)
      expect(run(['ip', '-4', '-o', 'addr', 'show', 'dev', rack.net.bridge], { netns: rack.net.netns }).stdout.trim()).toBe('');
      expect(run(['ip', '-6', '-o', 'addr', 'show', 'dev', rack.net.bridge, 'scope', 'global'], { netns: rack.net.netns }).stdout).toContain('fd00:77::1/64');
      expect(rack.server!.url).toBe('http://[fd00:77::1]:8080');

      expect((await node.bmc.ipmitool(['chassis', 'bootdev', 'pxe'])).out).toMatch(/Set Boot Device to pxe/);
      expect((await node.bmc.ipmitool(['chassis', 'power', 'on'])).out).toMatch(/Up\/On/);
      await waitUntil('QEMU running', 10_000, () => (node.running() ? true : undefined), { context: () => rack.context(node) });

      // iPXE fetched its scripts over IPv6 (the DHCPv6 answer named the bracketed URL)
      await node.waitSerial(/http:\/\/\[fd00:77::1\]:8080\/boot\.ipxe\.*\s*ok/, 120_000);
      await rack.waitEvent(uuid, 'iPXE script served', (e) => e.kind === 'phase' && e.reason === 'ipxe-script', 60_000, node);
      await node.waitSerial(SERIAL_MARKERS.kernel, 120_000);
      // stage-1: the boot NIC autoconfigured, no DHCPv4 tried
      await node.waitSerial(SLAAC, 120_000);
      await rack.waitEvent(uuid, 'agent registered', (e) => e.kind === 'phase' && e.reason === 'registered', 180_000, node);
      // the compute OS is the second kernel after the same power-on
      await waitUntil('kexec into the compute OS', 240_000, () => (node.serial.seenAt(SERIAL_MARKERS.kernel, { nth: 1 }) ? true : undefined), { intervalMs: 500, context: () => rack.context(node) });
      await node.waitSerial(ISCSI_MOUNTED, 180_000);
      const active = await rack.waitEvent(uuid, 'active', (e) => e.toState === 'active', 180_000, node);
      expect(active.toState).toBe('active');

      const boot = node.serial.lastBoot();
      const kernels = [...boot.matchAll(new RegExp(SERIAL_MARKERS.kernel.source, 'g'))].map((m) => m.index);
      expect(kernels.length).toBeGreaterThanOrEqual(2);
      const kexecAt = kernels[1]!;
      const stage1 = boot.slice(0, kexecAt);
      const compute = boot.slice(kexecAt);
      // both OSes: an address from fd00:77::/64 on the boot NIC, and never a DHCPv4 attempt
      const s1 = SLAAC.exec(stage1);
      const c1 = SLAAC.exec(compute);
      expect(s1, 'stage-1 autoconfigured').not.toBeNull();
      expect(c1, 'compute autoconfigured').not.toBeNull();
      for (const os of [stage1, compute]) {
        expect(os).toMatch(/cmdline server=http:\/\/\[fd00:77::1\]:8080 /);
        expect(os).not.toMatch(/bootfarm: dhcp (bound|leasefail)|got no lease/);
      }
      // SLAAC from the node's MAC (EUI-64, RFC 4291 appendix A): the same address in both OSes
      expect(c1![2]).toBe(s1![2]);
      expect(compute).toMatch(ISCSI_LOGIN);
      expect(compute).toMatch(ISCSI_MOUNTED);

      // the server's view: active, heartbeating, the compute image booted
      const d = await api.get<{ node: { state: string; lastHeartbeat: string | null; imageName: string | null } }>(`/api/v1/nodes/${uuid}`);
      expect(d.node.state).toBe('active');
      expect(d.node.lastHeartbeat).not.toBeNull();
      // iPXE's address came from bootfarm's DHCPv6 (stateful, leases in PostgreSQL), never from DHCPv4
      const metrics = (await api.raw('GET', '/metrics')).text;
      expect(Number(/^bootfarm_dhcp6_messages_total\{[^}]*event="replied"[^}]*\} (\d+)/m.exec(metrics)?.[1] ?? 0)).toBeGreaterThan(0);
      // the LUN the compute OS logged in to over IPv6 holds its state file system
      const lun = rack.tgtd!.luns[0]!;
      expect(run(['dumpe2fs', '-h', lun.file]).stdout).toMatch(/^Filesystem volume name:\s+bootfarm-state$/m);

      // times after power-on
      const on = node.powerOns().at(-1)!;
      const at = (re: RegExp, nth = 0) => {
        const t = node.serial.seenAt(re, { nth });
        return t === undefined ? 'n/a' : `${((t - on) / 1000).toFixed(1)} s`;
      };
      const ev = async (pred: (e: { kind: string; reason: string | null; toState: string | null }) => boolean) => {
        const e = (await rack.events(uuid)).find(pred);
        return e ? `${((Date.parse(e.at) - on) / 1000).toFixed(1)} s` : 'n/a';
      };
      console.log(
        [
          `IPv6-only rack, BIOS node ${uuid}: times after power-on`,
          `  /boot.ipxe over IPv6        ${at(/boot\.ipxe\.*\s*ok/)}`,
          `  stage-1 kernel              ${at(SERIAL_MARKERS.kernel)}`,
          `  stage-1 SLAAC address       ${at(SLAAC)}`,
          `  registered                  ${await ev((e) => e.kind === 'phase' && e.reason === 'registered')}`,
          `  compute kernel (kexec)      ${at(SERIAL_MARKERS.kernel, 1)}`,
          `  compute SLAAC address       ${at(SLAAC, 1)}`,
          `  iSCSI LUN mounted           ${at(ISCSI_MOUNTED)}`,
          `  active                      ${await ev((e) => e.toState === 'active')}`,
          `  SLAAC waits: stage-1 "${/in ([\d.]+ s)/.exec(s1![0])![1]}", compute "${/in ([\d.]+ s)/.exec(c1![0])![1]}"`,
        ].join('\n'),
      );
      console.log(await rack.timingTable(node));
    } catch (e) {
      console.error(rack.context(node));
      throw e;
    }
  });
});
