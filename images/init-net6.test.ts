// /init on an IPv6-only boot network (issue 19 item 3): the boot NIC gets its address by stateless autoconfiguration
// (bf_net_up6 in images/rootfs/common/lib/bootfarm/common.sh), and the compute OS logs in to an iSCSI portal written
// [IPv6]:port (bf_iscsi_portal in images/rootfs/compute/lib/bootfarm/iscsi.sh). Run with the host's busybox ash (the
// same 1.35 as the image's busybox-static) on the real shell library; `ip`, `iscsistart` and `sleep` are shell
// functions the test defines, so no test touches the host's network or waits on the wall clock.
//
// The `ip` answers are real output, captured on this machine (2026-12-03) in a namespace where radvd 2.19 advertised
// fd00:77::/64 (AdvManagedFlag on, AdvAutonomous on) to a veth that was just set up: busybox 1.35's `ip -6 -o addr
// show dev vb scope global` while DAD ran and after it, and iproute2 6.1's (the compute image's) likewise.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { requireCommand } from '../test/harness/require.ts';

const COMMON = path.join(import.meta.dirname, 'rootfs/common/lib/bootfarm/common.sh');
const ISCSI = path.join(import.meta.dirname, 'rootfs/compute/lib/bootfarm/iscsi.sh');

const BUSYBOX = {
  tentative: '2: vb    inet6 fd00:77::a4b0:adff:fe81:a618/64 scope global tentative dynamic flags 100 \\       valid_lft 86400sec preferred_lft 14400sec',
  ready: '2: vb    inet6 fd00:77::a4b0:adff:fe81:a618/64 scope global dynamic flags 100 \\       valid_lft 86398sec preferred_lft 14398sec',
  route: 'default via fe80::e4bb:20ff:fe36:44d1 dev vb  metric 1024  expires 0sec',
};
const IPROUTE2 = {
  tentative: '2: vb    inet6 fd00:77::6ca5:40ff:fe7a:fca5/64 scope global tentative dynamic mngtmpaddr \\       valid_lft 86400sec preferred_lft 14400sec',
  ready: '2: vb    inet6 fd00:77::6ca5:40ff:fe7a:fca5/64 scope global dynamic mngtmpaddr \\       valid_lft 86399sec preferred_lft 14399sec',
  route: 'default via fe80::e4bb:20ff:fe36:44d1 proto ra metric 1024 expires 598sec hoplimit 64 pref medium',
};

let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Sources the library with a fake `ip`: the n-th `ip -6 -o addr show … scope global` prints addrs[n] (the last one
 * from then on; "" = no global address yet), `ip -6 route show default …` prints `route`; every call is logged.
 */
function ash(script: string, { addrs = [] as string[], route = '', env = {} as Record<string, string> } = {}): { out: string; calls: string[]; dir: string } {
  dir = mkdtempSync(path.join(tmpdir(), 'bfnet6-'));
  addrs.forEach((a, i) => writeFileSync(path.join(dir, `addr.${i}`), a ? `${a}\n` : ''));
  writeFileSync(path.join(dir, 'route'), route ? `${route}\n` : '');
  writeFileSync(path.join(dir, 'n'), '0');
  mkdirSync(path.join(dir, 'run'));
  mkdirSync(path.join(dir, 'proc/eth0'), { recursive: true });
  const prelude = `
    . '${COMMON}'
    . '${ISCSI}'
    D='${dir}'
    ip() {
      echo "ip $*" >> "$D/calls"
      case "$*" in
        *"addr show"*"scope global"*)
          n=$(cat "$D/n"); [ -e "$D/addr.$n" ] && [ -e "$D/addr.$((n + 1))" ] && echo $((n + 1)) > "$D/n"
          cat "$D/addr.$n" 2>/dev/null ;;
        *"route show default"*) cat "$D/route" ;;
        *"addr show"*) echo "2: eth0    inet6 fe80::5054:ff:fe00:7/64 scope link tentative \\       valid_lft forever preferred_lft forever" ;;
      esac
    }
    sleep() { echo "sleep $*" >> "$D/calls"; }
    bf_post_error() { echo "POSTED $1: $2"; }
  `;
  const out = execFileSync('busybox', ['sh', '-c', `${prelude}\n${script}`], {
    encoding: 'utf8',
    env: { ...process.env, BOOTFARM_INIT_RUN: path.join(dir, 'run'), BF_PROC_NET6: path.join(dir, 'proc'), ...env },
    timeout: 20_000,
  });
  const calls = existsSync(path.join(dir, 'calls')) ? readFileSync(path.join(dir, 'calls'), 'utf8').trim().split('\n') : [];
  return { out, calls, dir };
}

const sleeps = (calls: string[]) => calls.filter((c) => c.startsWith('sleep ')).length;

describe('/init chooses IPv6 for an IPv6 boot network', () => {
  beforeAll(() => requireCommand('busybox', 'busybox'));

  it.each([
    ['a server URL with an IPv6 literal', 'http://[fd00:77::1]:8080', '', true],
    ['an https one', 'https://[2001:db8::10]', '', true],
    ['ip=auto6 (dracut)', 'http://boot.example', 'auto6', true],
    ['ip=dhcp6 (dracut)', 'http://boot.example', 'dhcp6', true],
    ['an IPv4 server', 'http://10.77.0.1:8080', '', false],
    ['ip=dhcp with a host name', 'http://boot.example:8080', 'dhcp', false],
    ['a static IPv4 ip=', 'http://10.0.0.1', '10.0.0.9::10.0.0.1:255.255.255.0::eth0:off', false],
  ])('%s → %s', (_name, server, ipArg, v6) => {
    dir = mkdtempSync(path.join(tmpdir(), 'bfnet6-'));
    const out = execFileSync('busybox', ['sh', '-c', `. '${COMMON}'; BF_SERVER='${server}' BF_IP='${ipArg}'; bf_want_ipv6 && echo v6 || echo v4`], { encoding: 'utf8' });
    expect(out.trim()).toBe(v6 ? 'v6' : 'v4');
  });
});

describe('bf_net_up6: the boot NIC autoconfigures from the router advertisement', () => {
  beforeAll(() => requireCommand('busybox', 'busybox'));

  it.each([
    ['busybox ip (stage-1)', BUSYBOX, 'fd00:77::a4b0:adff:fe81:a618/64'],
    ['iproute2 (compute)', IPROUTE2, 'fd00:77::6ca5:40ff:fe7a:fca5/64'],
  ])('%s: waits out DAD, then writes the address and the RA router for the agent', (_name, o, addr) => {
    // 7 polls with nothing, 5 with the address tentative, then usable: 12 waits of 0.2 s = 2.4 s
    const r = ash('BF_IFACE=eth0; bf_net_up6; echo "rc=$?"', { addrs: [...Array(7).fill(''), ...Array(5).fill(o.tentative), o.ready], route: o.route });
    expect(r.out).toContain('rc=0');
    expect(r.out).toContain(`bootfarm: nic eth0 up, IPv6 ${addr} (autoconfigured from a router advertisement in 2.4 s), router fe80::e4bb:20ff:fe36:44d1`);
    expect(sleeps(r.calls)).toBe(12);
    expect(readFileSync(path.join(r.dir, 'run/net.env'), 'utf8')).toBe(`BOOTFARM_IFACE=eth0\nBOOTFARM_IP=${addr}\nBOOTFARM_ROUTER=fe80::e4bb:20ff:fe36:44d1\n`);
    // the kernel is told to take RAs and autoconfigure on this NIC whatever its defaults were
    for (const [k, v] of [['disable_ipv6', '0'], ['accept_ra', '1'], ['autoconf', '1']]) expect(readFileSync(path.join(r.dir, 'proc/eth0', k!), 'utf8').trim()).toBe(v);
  });

  it('an RA without a default router (lifetime 0, on-link prefix only): the address is enough, router none', () => {
    const r = ash('BF_IFACE=eth0; bf_net_up6; echo "rc=$?"', { addrs: [BUSYBOX.ready], route: '' });
    expect(r.out).toContain('bootfarm: nic eth0 up, IPv6 fd00:77::a4b0:adff:fe81:a618/64 (autoconfigured from a router advertisement in 0.0 s), router none');
    expect(readFileSync(path.join(r.dir, 'run/net.env'), 'utf8')).toContain('BOOTFARM_ROUTER=\n');
    expect(sleeps(r.calls)).toBe(0);
  });

  it('no usable address within BF_NET6_WAIT (no RA, or DAD never ends): fails, bounded, naming what the NIC has', () => {
    const r = ash('BF_IFACE=eth0; bf_net_up6; echo "rc=$?"', { addrs: [BUSYBOX.tentative], env: { BF_NET6_WAIT: '2' } });
    expect(r.out).toContain('rc=1');
    expect(r.out).toContain('bootfarm: no IPv6 address on eth0 after 2 s (the boot link needs a router advertisement with an autonomous prefix); addresses: fe80::5054:ff:fe00:7/64');
    expect(sleeps(r.calls)).toBe(10);
    expect(r.calls.some((c) => c.includes('route'))).toBe(false);
  });

  it('bf_net_up takes the IPv6 path for an IPv6 server URL and never starts udhcpc', () => {
    // the NIC is given (bf_pick_nic reads /sys); udhcpc would print if it ran
    const r = ash(
      `bf_pick_nic() { BF_IFACE=eth0; }; udhcpc() { echo UDHCPC; }; BF_SERVER='http://[fd00:77::1]:8080'; bf_net_up; echo "rc=$?"`,
      { addrs: [BUSYBOX.ready], route: BUSYBOX.route },
    );
    expect(r.out).toContain('rc=0');
    expect(r.out).not.toContain('UDHCPC');
    expect(r.calls).toEqual(expect.arrayContaining(['ip link set lo up', 'ip link set eth0 up', 'ip -6 -o addr show dev eth0 scope global']));
  });
});

describe('bf_iscsi_portal: the compute OS logs in to an IPv6 portal', () => {
  beforeAll(() => requireCommand('busybox', 'busybox'));

  it.each([
    ['[fd00:77::1]:3260', 'fd00:77::1 3260'],
    ['[fd00:77::1]', 'fd00:77::1 3260'],
    ['[2001:db8::5]:3261', '2001:db8::5 3261'],
    ['fd00::1', 'fd00::1 3260'],
    ['10.77.0.1:3260', '10.77.0.1 3260'],
    ['10.77.0.1', '10.77.0.1 3260'],
    ['storage.example:860', 'storage.example 860'],
    ['[fd00::1', 'bad'],
    ['[fd00::1]:', 'bad'],
    ['[fd00::1]:iscsi', 'bad'],
    ['10.0.0.1:', 'bad'],
  ])('%s → %s', (portal, want) => {
    dir = mkdtempSync(path.join(tmpdir(), 'bfnet6-'));
    const out = execFileSync('busybox', ['sh', '-c', `. '${ISCSI}'; bf_iscsi_portal '${portal}' && echo "$host $port" || echo bad`], { encoding: 'utf8' });
    expect(out.trim()).toBe(want);
  });

  it('iscsistart gets the bare IPv6 address and the port; the console line brackets it', () => {
    const r = ash(
      `iscsistart() { echo "iscsistart $*"; return 1; }
       BF_ISCSI_TARGET=iqn.2026-11.io.bootfarm:n1 BF_ISCSI_PORTAL='[fd00:77::1]:3260' BF_ISCSI_INITIATOR=iqn.2026-11.io.bootfarm:i1 BF_ISCSI_USER=u BF_ISCSI_PASSWORD=p BF_ISCSI_LUN=1
       bf_iscsi_login; echo "rc=$? err=$BF_ISCSI_ERROR"`,
    );
    expect(r.out).toContain('bootfarm: iscsi: login iqn.2026-11.io.bootfarm:n1 at [fd00:77::1]:3260 lun 1 as iqn.2026-11.io.bootfarm:i1 (CHAP user u)');
    expect(r.out).toContain('rc=1 err=iscsistart failed: iscsistart -i iqn.2026-11.io.bootfarm:i1 -t iqn.2026-11.io.bootfarm:n1 -g 1 -a fd00:77::1 -p 3260 -u u -w p');
  });

  it('a portal that cannot be parsed is the step\'s error, and iscsistart is not run', () => {
    const r = ash(`iscsistart() { echo RAN; }; BF_ISCSI_TARGET=t BF_ISCSI_PORTAL='[fd00::1]:x' BF_ISCSI_INITIATOR=i; bf_iscsi_login; echo "rc=$? err=$BF_ISCSI_ERROR"`);
    expect(r.out).toContain('rc=1 err=bootfarm.iscsi.portal=[fd00::1]:x is not HOST, HOST:PORT, [IPv6] or [IPv6]:PORT');
    expect(r.out).not.toContain('RAN');
  });
});
