// A small routed test network for TFTP: root namespace (where the server under test runs
// in-process) ─ router namespace ─ client namespace. Used by the real-client tests and by the
// benchmark. Everything is named `bftftp*` and removed by `destroy()`.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { promisify } from 'node:util';

const pexec = promisify(execFile);

export async function sh(cmd: string, args: string[], timeoutMs = 120_000): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await pexec(cmd, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 });
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: number | string };
    return { stdout: e.stdout ?? '', stderr: e.stderr ?? String(err), code: typeof e.code === 'number' ? e.code : 1 };
  }
}

export async function must(cmd: string, args: string[]): Promise<string> {
  const r = await sh(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr.trim()}`);
  return r.stdout;
}

export function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file)
      .on('data', (d) => h.update(d))
      .on('end', () => resolve(h.digest('hex')))
      .on('error', reject);
  });
}

export interface NetLab {
  /** client namespace name; run clients with `ip netns exec <ns> …` */
  ns: string;
  /** server-side address (root namespace end of the veth) */
  serverIp: string;
  clientIp: string;
  /** namespace of the server end, or undefined when it is the root namespace */
  serverNs: string | undefined;
  /** drop this fraction of packets in both directions at the client end (0 = clean link) */
  setLoss(fraction: number): Promise<string>;
  destroy(): Promise<void>;
}

/**
 * Root ns `bftftp<tag>h` (10.250.N.1) ─ router netns `bftftp<tag>r` ─ client netns `bftftp<tag>`
 * (10.250.N.6). Loss is injected in the router's FORWARD path: a DROP on a host's own OUTPUT
 * path makes sendto() fail with EPERM, which tftp-hpa treats as the end of the transfer — not
 * what a lossy wire does. `tag` keeps parallel suites apart; N is random so a leftover from a
 * killed run cannot clash.
 */
export async function createNetLab(tag: string, { serverNs = false, direct = false } = {}): Promise<NetLab> {
  // direct: one veth straight from server to client, no router (and so no loss injection) —
  // the benchmark's shortest path, so the client's receive rate is the ceiling, not forwarding.
  const ns = `bftftp${tag}`;
  // serverNs: the server end lives in its own namespace `bftftp<tag>s` instead of the root one,
  // so servers that insist on port 69 (dnsmasq) can run there without touching the host.
  const sns = serverNs ? `${ns}s` : undefined;
  const hx = (...a: string[]) => must('ip', sns ? ['-n', sns, ...a] : a);
  const router = `${ns}r`;
  const host = `${ns}h`; // root end of veth 1
  const ra = `${ns}a`; // router end of veth 1
  const rb = `${ns}b`; // router end of veth 2
  const peer = `${ns}c`; // client end of veth 2
  if (host.length > 15) throw new Error(`link name too long: ${host}`);
  // leftovers of a crashed earlier run with the same tag
  await sh('ip', ['netns', 'del', ns]);
  await sh('ip', ['netns', 'del', router]);
  if (sns) await sh('ip', ['netns', 'del', sns]);
  await sh('ip', ['link', 'del', host]);
  const n = 1 + Math.floor(Math.random() * 250);
  const serverIp = `10.250.${n}.1`;
  const routerA = `10.250.${n}.2`;
  const routerB = `10.250.${n}.5`;
  const clientIp = direct ? `10.250.${n}.2` : `10.250.${n}.6`;
  const rx = (...a: string[]) => must('ip', ['netns', 'exec', router, ...a]);
  const lab: NetLab = {
    ns,
    serverIp,
    clientIp,
    async setLoss(fraction) {
      if (direct) throw new Error('setLoss needs the router namespace (direct: false)');
      // Prefer netem (the issue asks for it); this machine's kernel has no sch_netem, so fall back
      // to iptables' statistic match, which drops the same random fraction of packets.
      for (const dev of [ra, rb]) await sh('ip', ['netns', 'exec', router, 'tc', 'qdisc', 'del', 'dev', dev, 'root']);
      await sh('ip', ['netns', 'exec', router, 'iptables', '-F', 'FORWARD']);
      if (fraction <= 0) return 'none';
      const pct = `${fraction * 100}%`;
      const netem = await sh('ip', ['netns', 'exec', router, 'tc', 'qdisc', 'add', 'dev', ra, 'root', 'netem', 'loss', pct]);
      if (netem.code === 0) {
        await rx('tc', 'qdisc', 'add', 'dev', rb, 'root', 'netem', 'loss', pct); // netem shapes egress: both ways
        return 'netem';
      }
      await rx('iptables', '-A', 'FORWARD', '-p', 'udp', '-m', 'statistic', '--mode', 'random', '--probability', String(fraction), '-j', 'DROP');
      return 'iptables-statistic';
    },
    serverNs: sns,
    async destroy() {
      if (sns) await sh('ip', ['netns', 'del', sns]);
      await sh('ip', ['link', 'del', host]);
      await sh('ip', ['netns', 'del', ns]);
      await sh('ip', ['netns', 'del', router]);
    },
  };
  if (direct) {
    try {
      await must('ip', ['netns', 'add', ns]);
      if (sns) await must('ip', ['netns', 'add', sns]);
      await must('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', peer, 'netns', ns]);
      if (sns) {
        await must('ip', ['link', 'set', host, 'netns', sns]);
        await hx('link', 'set', 'lo', 'up');
      }
      await hx('addr', 'add', `${serverIp}/30`, 'dev', host);
      await hx('link', 'set', host, 'up');
      await must('ip', ['-n', ns, 'addr', 'add', `${clientIp}/30`, 'dev', peer]);
      await must('ip', ['-n', ns, 'link', 'set', peer, 'up']);
      await must('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    } catch (err) {
      await lab.destroy();
      throw err;
    }
    return lab;
  }
  try {
    await must('ip', ['netns', 'add', ns]);
    await must('ip', ['netns', 'add', router]);
    if (sns) await must('ip', ['netns', 'add', sns]);
    await must('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', ra]);
    await must('ip', ['link', 'set', ra, 'netns', router]);
    if (sns) {
      await must('ip', ['link', 'set', host, 'netns', sns]);
      await hx('link', 'set', 'lo', 'up');
    }
    await must('ip', ['link', 'add', rb, 'netns', router, 'type', 'veth', 'peer', 'name', peer, 'netns', ns]);
    await hx('addr', 'add', `${serverIp}/30`, 'dev', host);
    await hx('link', 'set', host, 'up');
    // only the client's address goes via our router, and the route disappears with the link
    await hx('route', 'add', `${clientIp}/32`, 'via', routerA, 'dev', host);
    await rx('ip', 'addr', 'add', `${routerA}/30`, 'dev', ra);
    await rx('ip', 'addr', 'add', `${routerB}/30`, 'dev', rb);
    for (const d of [ra, rb, 'lo']) await rx('ip', 'link', 'set', d, 'up');
    await rx('sysctl', '-qw', 'net.ipv4.ip_forward=1');
    await must('ip', ['-n', ns, 'addr', 'add', `${clientIp}/30`, 'dev', peer]);
    await must('ip', ['-n', ns, 'link', 'set', peer, 'up']);
    await must('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    await must('ip', ['-n', ns, 'route', 'add', 'default', 'via', routerB]);
  } catch (err) {
    await lab.destroy();
    throw err;
  }
  return lab;
}
