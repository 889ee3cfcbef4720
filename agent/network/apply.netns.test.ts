// The runner for real, in two network namespaces this file creates and deletes:
//
//   node ns bfnet-node-PID [bfnTAG: planned by the agent] ── veth ── [bfpTAG 10.78.0.1/24, fd5e:0:0:78::1/64] peer ns bfnet-peer-PID
//
// applyNetwork runs iproute2's ip inside the node namespace (`ip netns exec`), busybox arping as the ARP prober (the
// compute image's; iputils-arping is not installed here), and `hostname` inside a throwaway UTS namespace
// (`unshare --uts`): a network namespace does not isolate the hostname, and this machine must keep its own.
// Addresses are ULA/private ranges the host does not use (it has 192.0.2.0/24, fd00::/64). Namespaces are named by
// this process's PID: afterAll deletes them (also on failure), a killed run's are swept by the next (sweepLeftovers).
//
// Not here: a bond (this kernel has no bonding module: "Unknown device type"; network.test.ts plans and parses one
// from a hand-written fixture). A vlan: this kernel has no 8021q module either; the test checks which, and without
// it asserts that the vlan steps fail with the kernel's words and everything else still applies.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Detail, DetailAddress } from '../../server/contract/agent.ts';
import { spawnExec, type Exec } from '../exec.ts';
import { requireCommand } from '../../test/harness/require.ts';
import { Lab, ip, repoRoot, sh, sweepLeftovers } from '../../test/support/dhcp/netns.ts';
import { applyNetwork, configuredFrom, planNetwork, readState, type FoundConflict } from './index.ts';

const PREFIX = 'bfnet';
const lab = new Lab(String(process.pid), PREFIX);
const tag = process.pid.toString(36);
const NIC = `bfn${tag}`;
const PEER = `bfp${tag}`;
const VLAN = `${NIC}.20`;
const dir = mkdtempSync(join(tmpdir(), 'bfnet-'));
let N: string;
let P: string;
let vlanSupported = false;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const host = spawnExec();
/** the agent's Exec, inside the node namespace; hostname in its own UTS namespace */
const nodeExec: Exec = (cmd, args, o) => (cmd === 'hostname' ? host('unshare', ['--uts', 'ip', 'netns', 'exec', N, cmd, ...args], o) : host('ip', ['netns', 'exec', N, cmd, ...args], o));
const opts = () => ({ exec: nodeExec, sleep, arping: ['busybox', 'arping'], resolvConf: join(dir, 'resolv.conf'), dadTimeoutMs: 8000 });

const addr = (device: string, address: string, family: 4 | 6, extra: Partial<DetailAddress> = {}): DetailAddress => ({ network: family === 4 ? 'prod' : 'prod6', interface: NIC, device, address, family, ...extra });
const detail = (): Detail => ({
  uuid: '4c4c4544-0042-3510-8052-b4c04f4e4d32',
  hostname: 'hv-netns-01',
  interfaces: [],
  vlans: [{ device: VLAN, link: NIC, id: 20 }],
  addresses: [addr(NIC, '10.78.0.7/24', 4, { gateway: '10.78.0.1' }), addr(NIC, 'fd5e:0:0:78::7/64', 6), addr(VLAN, '10.78.20.7/24', 4, { network: 'storage', vlan: 20 })],
  routes: [
    { to: 'default', via: '10.78.0.1', device: NIC },
    { to: 'fd5e:0:0:99::/64', via: 'fd5e:0:0:78::1', device: NIC },
  ],
  dns: ['10.78.0.53', 'fd5e:0:0:78::53'],
  labels: {},
});
const peerMac = () => (JSON.parse(ip('-n', P, '-j', 'link', 'show', PEER)) as { address: string }[])[0]!.address;

beforeAll(() => {
  for (const [cmd, pkg] of [['ip', 'iproute2'], ['busybox', 'busybox'], ['unshare', 'util-linux']] as const) requireCommand(cmd, pkg);
  sweepLeftovers(PREFIX);
  N = lab.ns('node');
  P = lab.ns('peer');
  lab.link({ ns: N, name: NIC }, { ns: P, name: PEER, addr: '10.78.0.1/24' });
  ip('-n', P, 'addr', 'add', 'fd5e:0:0:78::1/64', 'dev', PEER, 'nodad');
  // the node's end starts down, as a NIC the compute OS has not touched
  ip('-n', N, 'link', 'set', NIC, 'down');
  try {
    ip('-n', N, 'link', 'add', 'link', NIC, 'name', `bfv${tag}`, 'type', 'vlan', 'id', '99');
    ip('-n', N, 'link', 'del', `bfv${tag}`);
    vlanSupported = true;
  } catch (err) {
    expect((err as Error).message).toMatch(/Unknown device type/);
  }
});

afterAll(async () => {
  await lab.cleanup();
  rmSync(dir, { recursive: true, force: true });
  expect(sh('ip', ['netns', 'list']).split('\n').filter((l) => l.includes(`-${process.pid}`))).toEqual([]);
});

describe('applyNetwork in a namespace', () => {
  it('applies addresses v4+v6, routes, resolv.conf and hostname; reads back what was planned; plans nothing the second time', async () => {
    const r = await applyNetwork(detail(), opts());
    const vlanSteps = [`ip link add link ${NIC} name ${VLAN} type vlan id 20`, `ip link set ${VLAN} up`, `ip addr add 10.78.20.7/24 dev ${VLAN}`];
    if (vlanSupported) expect(r.failures).toEqual([]);
    else {
      // this kernel: no 8021q. The vlan's steps fail, each naming the command and the kernel's (or arping's) words
      expect(r.failures.map((f) => f.command)).toEqual([vlanSteps[0], vlanSteps[1], `ip netns exec ${N} busybox arping -D -c 2 -I ${VLAN} 10.78.20.7`, vlanSteps[2]]);
      expect(r.failures[0]!.error).toMatch(/exit 2: Error: Unknown device type\.$/);
      expect(r.failures[2]!.error).toMatch(/^10\.78\.20\.7\/24 on \S+ was not checked for a conflict: .*exit 2: arping: interface \S+ not found/);
      expect(r.failures[3]!.error).toMatch(/Cannot find device/);
    }
    expect(r.conflicts).toEqual([]);
    const want = detail().addresses.filter((a) => vlanSupported || a.device !== VLAN).map((a) => ({ device: a.device, address: a.address }));
    expect(r.configured).toEqual({ addresses: expect.arrayContaining(want) });
    expect(r.configured!.addresses).toHaveLength(want.length);

    const state = await readState(nodeExec);
    expect(configuredFrom(state, detail())).toEqual(r.configured);
    expect(state.routes).toEqual(
      expect.arrayContaining([
        { family: 4, to: 'default', via: '10.78.0.1', device: NIC },
        { family: 6, to: 'fd5e:0:0:99::/64', via: 'fd5e:0:0:78::1', device: NIC },
      ]),
    );
    // idempotent on the real kernel: only what it cannot do is planned again
    expect(planNetwork(detail(), state).map((s) => `ip ${s.args.join(' ')}`)).toEqual(vlanSupported ? [] : vlanSteps);
    expect(readFileSync(join(dir, 'resolv.conf'), 'utf8')).toBe("# written by bootfarm-agent from the node's detail (GET /api/v1/agent/:uuid/detail)\nnameserver 10.78.0.53\nnameserver fd5e:0:0:78::53\n");
    expect(r.ran).toContain('hostname hv-netns-01');
    // and the network works: the peer answers from the planned address
    expect(sh('ip', ['netns', 'exec', N, 'busybox', 'ping', '-c', '1', '-W', '2', '10.78.0.1'])).toMatch(/1 packets received/);
  });

  it('IPv4: an address the peer already holds is caught by the ARP probe before use, and the replacement is applied', async () => {
    ip('-n', P, 'addr', 'add', '10.78.0.8/24', 'dev', PEER);
    const asked: FoundConflict[] = [];
    const d = { ...detail(), vlans: [], addresses: [addr(NIC, '10.78.0.8/24', 4, { gateway: '10.78.0.1' }), addr(NIC, 'fd5e:0:0:78::7/64', 6)] };
    const r = await applyNetwork(d, {
      ...opts(),
      onConflict: async (c) => {
        asked.push({ ...c });
        return addr(NIC, '10.78.0.9/24', 4, { gateway: '10.78.0.1' });
      },
    });
    expect(asked).toEqual([{ device: NIC, address: '10.78.0.8/24', family: 4, network: 'prod', how: 'arp-probe', detail: `answered by ${peerMac()}` }]);
    expect(r.failures).toEqual([]);
    expect(r.ran).not.toContain(`ip addr add 10.78.0.8/24 dev ${NIC}`);
    // 10.78.0.7 from the first test is not in this detail: removed, as the planner removes stale addresses on its devices
    expect(r.ran).toContain(`ip addr del 10.78.0.7/24 dev ${NIC}`);
    expect(r.configured!.addresses.filter((a) => a.address.startsWith('10.'))).toEqual([{ device: NIC, address: '10.78.0.9/24' }]);
  });

  it('IPv6: duplicate address detection flags the peer\'s address dadfailed; it is reported, removed and replaced', async () => {
    ip('-n', P, 'addr', 'add', 'fd5e:0:0:78::8/64', 'dev', PEER, 'nodad');
    const asked: FoundConflict[] = [];
    const d = { ...detail(), vlans: [], addresses: [addr(NIC, '10.78.0.9/24', 4, { gateway: '10.78.0.1' }), addr(NIC, 'fd5e:0:0:78::8/64', 6)] };
    const t0 = Date.now();
    const r = await applyNetwork(d, {
      ...opts(),
      onConflict: async (c) => {
        asked.push({ ...c });
        return addr(NIC, 'fd5e:0:0:78::9/64', 6);
      },
    });
    expect(asked).toEqual([{ device: NIC, address: 'fd5e:0:0:78::8/64', family: 6, network: 'prod6', how: 'ipv6-dad', detail: 'duplicate address detection failed (RFC 4862 §5.4.5)' }]);
    expect(r.failures).toEqual([]);
    expect(r.ran).toEqual(expect.arrayContaining([`ip addr add fd5e:0:0:78::8/64 dev ${NIC}`, `ip addr del fd5e:0:0:78::8/64 dev ${NIC}`, `ip addr add fd5e:0:0:78::9/64 dev ${NIC}`]));
    expect(r.configured!.addresses.filter((a) => a.address.includes(':'))).toEqual([{ device: NIC, address: 'fd5e:0:0:78::9/64' }]);
    const left = (await readState(nodeExec)).addresses.filter((a) => a.device === NIC && a.address.startsWith('fd5e:0:0:78::8'));
    expect(left).toEqual([]);
    // two DAD waits (the duplicate, then its replacement): seconds, bounded by dadTimeoutMs each
    expect(Date.now() - t0).toBeLessThan(20_000);
  });

  it('udhcpc\'s hook leaves the applied network alone once the agent\'s marker exists (and flushes it without)', async () => {
    const run = join(dir, 'run');
    mkdirSync(run, { recursive: true });
    const resolv = join(dir, 'hook-resolv.conf');
    writeFileSync(resolv, 'nameserver 10.78.0.53\n');
    const v4 = async () => (await readState(nodeExec)).addresses.filter((a) => a.device === NIC && a.family === 4).map((a) => a.address);
    // the hook writes /etc/resolv.conf and runs hostname: in a private mount + UTS namespace, over a file of ours
    const renew = () =>
      execFileSync('ip', ['netns', 'exec', N, 'unshare', '-m', '-u', 'sh', '-c', 'mount --bind "$0" /etc/resolv.conf && exec busybox sh "$1" renew', resolv, join(repoRoot, 'images/rootfs/common/etc/udhcpc/default.script')], {
        encoding: 'utf8',
        timeout: 15_000,
        env: { ...process.env, interface: NIC, ip: '10.78.0.50', mask: '24', router: '10.78.0.1', BOOTFARM_INIT_RUN: run },
      });
    const before = await v4();
    expect(before).toEqual(['10.78.0.9/24']);
    writeFileSync(join(run, 'network-applied'), '{}\n');
    expect(renew()).toMatch(/dhcp renew on \S+ ignored: the agent configured the network/);
    expect(await v4()).toEqual(before);
    expect(readFileSync(resolv, 'utf8')).toBe('nameserver 10.78.0.53\n');
    // without the marker: what a renew did to the agent's addresses before it existed
    rmSync(join(run, 'network-applied'));
    renew();
    expect(await v4()).toEqual(['10.78.0.50/24']);
    expect(readFileSync(resolv, 'utf8')).toBe('');
  });

  it('keeps the boot path: the address the node reaches its server from is not deleted (ip route get on the real kernel), and goes without keep', async () => {
    ip('-n', N, '-4', 'addr', 'flush', 'dev', NIC, 'scope', 'global');
    ip('-n', N, 'addr', 'add', '10.78.0.60/24', 'dev', NIC); // the boot lease: primary, so the kernel's source for the peer
    const onBoot: Detail = { ...detail(), vlans: [], hostname: '', dns: [], routes: [], addresses: [addr(NIC, '10.78.0.61/24', 4)] };
    const v4 = async () => (await readState(nodeExec)).addresses.filter((a) => a.device === NIC && a.family === 4).map((a) => a.address).sort();
    const kept = await applyNetwork(onBoot, { ...opts(), keep: ['10.78.0.1'] });
    expect(kept.failures).toEqual([{ command: `ip addr del 10.78.0.60/24 dev ${NIC}`, error: expect.stringMatching(/^not run: 10\.78\.0\.60\/24 on \S+ is the address the node reaches 10\.78\.0\.1 from/) }]);
    expect(kept.ran).not.toContain(`ip addr del 10.78.0.60/24 dev ${NIC}`);
    expect(await v4()).toEqual(['10.78.0.60/24', '10.78.0.61/24']);
    // the kernel still reaches the server from the boot address
    expect(JSON.parse(ip('-n', N, '-j', 'route', 'get', '10.78.0.1'))[0]).toMatchObject({ dev: NIC, prefsrc: '10.78.0.60' });
    // without a destination to keep, the plan deletes it (what it did before)
    const gone = await applyNetwork(onBoot, opts());
    expect(gone.failures).toEqual([]);
    expect(await v4()).toEqual(['10.78.0.61/24']);
  });
});
