// FakeIp: a named fake Exec for the compute network (agent/network) that answers the reads with captured iproute2
// JSON (test/fixtures/agent/ip-j-*.json), the ARP probes with captured busybox arping results, and `hostname`, and
// records every command. It does not simulate the kernel: a test that needs the state to change between reads sets
// the public fields (`fake.addr = …`). Anything else fails like a missing binary.
import type { Exec, ExecResult } from '../../../agent/exec.ts';
import { commandLine } from '../../../agent/exec.ts';
import { capturedResult, fixture } from './fixtures.ts';

/** a fixture file name, or inline JSON text (starts with "[") */
type Source = string;
const text = (s: Source) => (s.trimStart().startsWith('[') ? s : fixture(s));

export class FakeIp {
  readonly calls: string[] = [];
  link: Source = 'ip-j-d-link-fresh.json';
  addr: Source = 'ip-j-addr-fresh.json';
  route4: Source = '[]';
  route6: Source = '[]';
  hostname = 'localhost';
  /** address → captured arping result stem (default: nobody answered) */
  arping: Record<string, string> = {};
  /** command line → what it returns instead of success */
  fail: Record<string, { exitCode: number; stderr: string }> = {};

  constructor(init: Partial<Pick<FakeIp, 'link' | 'addr' | 'route4' | 'route6' | 'hostname' | 'arping' | 'fail'>> = {}) {
    Object.assign(this, init);
  }

  /** the recorded mutating `ip` commands, without the reads */
  get changes(): string[] {
    return this.calls.filter((c) => c.startsWith('ip ') && !c.startsWith('ip -j'));
  }

  readonly exec: Exec = async (cmd, args) => {
    const line = commandLine(cmd, args);
    this.calls.push(line);
    const ok = (stdout = ''): ExecResult => ({ command: line, exitCode: 0, signal: null, stdout, stderr: '', timedOut: false });
    const f = this.fail[line];
    if (f) return { command: line, exitCode: f.exitCode, signal: null, stdout: '', stderr: f.stderr, timedOut: false };
    if (line === 'ip -j -d link show') return ok(text(this.link));
    if (line === 'ip -j addr show') return ok(text(this.addr));
    if (line === 'ip -j -4 route show') return ok(text(this.route4));
    if (line === 'ip -j -6 route show') return ok(text(this.route6));
    if (cmd === 'ip') return ok();
    if (cmd === 'hostname') {
      if (args.length === 0) return ok(`${this.hostname}\n`);
      this.hostname = args[0]!;
      return ok();
    }
    const arping = cmd === 'arping' ? args : cmd === 'busybox' && args[0] === 'arping' ? args.slice(1) : undefined;
    if (arping) return capturedResult(line, this.arping[arping.at(-1)!] ?? 'arping-D-none');
    return { command: line, exitCode: null, signal: null, stdout: '', stderr: `spawn ${cmd}: ENOENT (FakeIp answers ip, hostname and arping only)`, timedOut: false };
  };
}
