// Boots an OS image under QEMU (TCG: KVM does not work on this machine, FACTS.md) with the serial console on
// stdio, and waits on console lines. Used by the image tests and the boot-time measurement (images/measure.ts).
import { spawn, type ChildProcess } from 'node:child_process';

export interface BootOptions {
  kernel: string;
  initrd: string;
  append: string;
  memoryMiB?: number;
  /** extra QEMU arguments (NICs, IPMI devices, …) */
  args?: string[];
}

export class SerialVm {
  readonly started = Date.now();
  private output = '';
  private readonly proc: ChildProcess;
  private exited: number | null | undefined;
  private waiters: (() => void)[] = [];

  constructor(opts: BootOptions) {
    const args = [
      '-accel', 'tcg', '-m', String(opts.memoryMiB ?? 512), '-nographic', '-no-reboot', '-nodefaults',
      '-serial', 'stdio', '-monitor', 'none',
      '-kernel', opts.kernel, '-initrd', opts.initrd, '-append', opts.append,
      ...(opts.args ?? []),
    ];
    this.proc = spawn('qemu-system-x86_64', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const take = (b: Buffer): void => {
      this.output += b.toString('latin1');
      for (const w of this.waiters.splice(0)) w();
    };
    this.proc.stdout!.on('data', take);
    this.proc.stderr!.on('data', take);
    this.proc.on('exit', (code) => {
      this.exited = code;
      for (const w of this.waiters.splice(0)) w();
    });
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  /** Everything the console printed so far (kernel log lines included). */
  get console(): string {
    return this.output;
  }

  /**
   * Resolves with the match once the console output (from `from` on) matches; rejects on timeout or QEMU exit
   * with the console tail in the message, so a failing test shows what the node printed.
   */
  waitFor(pattern: RegExp, timeoutMs: number, from = 0): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const m = pattern.exec(this.output.slice(from));
        if (m) {
          clearTimeout(timer);
          resolve(m);
          return true;
        }
        if (this.exited !== undefined) {
          clearTimeout(timer);
          reject(new Error(`QEMU exited (${this.exited}) before ${pattern}; console tail:\n${this.output.slice(-3000)}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        reject(new Error(`no ${pattern} on the console within ${timeoutMs} ms; console tail:\n${this.output.slice(-3000)}`));
      }, timeoutMs);
      const loop = (): void => {
        if (!check()) this.waiters.push(loop);
      };
      loop();
    });
  }

  /** Types on the serial console. */
  write(text: string): void {
    this.proc.stdin!.write(text);
  }

  /** Kills QEMU by PID and waits for it to go. */
  async stop(): Promise<void> {
    if (this.exited !== undefined || this.proc.pid === undefined) return;
    const gone = new Promise<void>((r) => this.proc.once('exit', () => r()));
    process.kill(this.proc.pid, 'SIGKILL');
    await gone;
  }
}
