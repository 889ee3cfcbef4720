// Two real lldpd 1.0.16 peers in network namespaces joined by a veth (FACTS.md "LLDP"): one per namespace,
// each with its own control socket. Names start with "bfag" (the agent area) plus a random suffix so
// parallel runs do not collide. stop() kills the daemons by PID and deletes the namespaces.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface LldpPeers {
  nsA: string;
  nsB: string;
  ifA: string;
  ifB: string;
  sockA: string;
  sockB: string;
  stop(): void;
}

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });

export function startLldpPeers({ nameA = 'leaf-sw01.test', nameB = 'node.test' } = {}): LldpPeers {
  const id = Math.random().toString(36).slice(2, 7);
  const nsA = `bfag-${id}-a`;
  const nsB = `bfag-${id}-b`;
  const ifA = `bfag${id}a`;
  const ifB = `bfag${id}b`;
  const dir = mkdtempSync(join(tmpdir(), 'bfagent-lldp-'));
  // lldpd creates its socket after dropping to the _lldpd user: the directory must be reachable (mkdtemp makes 0700)
  chmodSync(dir, 0o755);
  const procs: ChildProcess[] = [];
  const stop = () => {
    for (const p of procs) if (p.pid && p.exitCode === null) p.kill('SIGTERM');
    for (const ns of [nsA, nsB]) {
      try {
        ip('netns', 'del', ns);
      } catch {
        /* never created */
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    ip('netns', 'add', nsA);
    ip('netns', 'add', nsB);
    ip('link', 'add', ifA, 'netns', nsA, 'type', 'veth', 'peer', 'name', ifB, 'netns', nsB);
    for (const [ns, ifc] of [[nsA, ifA], [nsB, ifB]] as const) {
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      ip('-n', ns, 'link', 'set', ifc, 'up');
    }
    for (const [ns, ifc, name, side] of [[nsA, ifA, nameA, 'a'], [nsB, ifB, nameB, 'b']] as const) {
      const conf = join(dir, `${side}.conf`);
      writeFileSync(conf, `configure lldp tx-interval 5\nconfigure system hostname ${name}\n`);
      const p = spawn('ip', ['netns', 'exec', ns, 'lldpd', '-d', '-u', join(dir, `${side}.sock`), '-I', `${ifc}*`, '-O', conf], { stdio: 'ignore' });
      procs.push(p);
    }
  } catch (e) {
    stop();
    throw e;
  }
  return { nsA, nsB, ifA, ifB, sockA: join(dir, 'a.sock'), sockB: join(dir, 'b.sock'), stop };
}
