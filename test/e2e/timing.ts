// Per-boot phase timing. The serial log has no timestamps of its own, so a watcher reads the file as it grows
// (every 100 ms) and stamps the wall-clock time at which each marker first appears after the latest power-on
// marker; server events carry their own `at`. Both are on this machine's clock.
import { readFileSync, statSync } from 'node:fs';
import { POWER_ON_MARKER } from './qemu.ts';

/** Console lines that mark a phase (QEMU's ROM iPXE and undionly.kpxe print the same; Debian kernel). */
export const SERIAL_MARKERS = {
  /** iPXE finished DHCP on net0: "Configuring (net0 52:54:00:…)...... ok" */
  dhcp: /Configuring \(net\d [0-9a-f:]+\)[. ]*ok/i,
  /** iPXE fetched the first script: "http://10.77.0.1:8080/boot.ipxe... ok" */
  ipxeScript: /boot\.ipxe\.*\s*ok/i,
  /** the per-node script (/ipxe/<uuid>) */
  nodeScript: /\/ipxe\/[0-9a-f-]{36}[^\n]*\.\.\.\s*ok/i,
  /** a Linux kernel started (first: stage-1; second after the same power-on: the kexec'd compute OS) */
  kernel: /Linux version \d/,
} as const;

export class SerialWatcher {
  private offset = 0;
  private text = '';
  private timer: NodeJS.Timeout;
  /** [time seen, absolute index in text] of each chunk read, to date a match by its position */
  private chunks: { at: number; start: number }[] = [];

  constructor(readonly file: string, intervalMs = 100) {
    this.timer = setInterval(() => this.poll(), intervalMs);
    this.timer.unref();
    this.poll();
  }

  poll(): void {
    let size = 0;
    try {
      size = statSync(this.file).size;
    } catch {
      return;
    }
    if (size <= this.offset) return;
    const buf = readFileSync(this.file).subarray(this.offset, size);
    this.chunks.push({ at: Date.now(), start: this.text.length });
    this.text += buf.toString('latin1');
    this.offset = size;
  }

  /** Everything read so far (ANSI escapes from the firmware left in). */
  all(): string {
    this.poll();
    return this.text;
  }

  /** Index in all() where the latest boot (power-on marker) starts. */
  lastBootStart(): number {
    const i = this.all().lastIndexOf(POWER_ON_MARKER);
    return i < 0 ? 0 : i;
  }

  /** Number of power-on markers (boots) so far. */
  boots(): number {
    return this.all().split(POWER_ON_MARKER).length - 1;
  }

  /** Text of the latest boot only. */
  lastBoot(): string {
    return this.all().slice(this.lastBootStart());
  }

  /** Wall-clock ms when the nth match (0-based) of `re` after `from` was first read, or undefined. */
  seenAt(re: RegExp, { from = this.lastBootStart(), nth = 0 }: { from?: number; nth?: number } = {}): number | undefined {
    const g = new RegExp(re.source, re.flags.includes('g') ? re.flags : re.flags + 'g');
    g.lastIndex = from;
    const text = this.all();
    let m: RegExpExecArray | null = null;
    for (let i = 0; i <= nth; i++) {
      m = g.exec(text);
      if (!m) return undefined;
    }
    const end = m!.index + m![0].length - 1;
    let at: number | undefined;
    for (const c of this.chunks) if (c.start <= end) at = c.at;
    return at;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

export interface PhaseRow {
  phase: string;
  /** ms since power-on, or undefined when the phase was not seen */
  at?: number;
  source: string;
}

/** Formats a timing table: phase, time since power-on, delta from the previous phase. */
export function formatTimingTable(title: string, rows: PhaseRow[]): string {
  const lines = [`${title}`, `  ${'phase'.padEnd(16)}${'since power-on'.padStart(16)}${'step'.padStart(10)}  source`];
  let prev: number | undefined = 0;
  for (const r of rows) {
    const since = r.at === undefined ? '—' : `${(r.at / 1000).toFixed(2)} s`;
    const step = r.at === undefined || prev === undefined ? '—' : `${((r.at - prev) / 1000).toFixed(2)} s`;
    lines.push(`  ${r.phase.padEnd(16)}${since.padStart(16)}${step.padStart(10)}  ${r.source}`);
    if (r.at !== undefined) prev = r.at;
  }
  return lines.join('\n');
}

export interface ServerEvent {
  id: number;
  at: string;
  kind: string;
  fromState: string | null;
  toState: string | null;
  reason: string | null;
  actor: string;
  data: Record<string, unknown> | null;
}

/**
 * The phases of one boot: power-on (BMC), DHCP, iPXE script, stage-1 up (kernel on the console), registered
 * (agent's register event), kexec (second kernel after the same power-on), active (state transition).
 */
export function bootPhases({ powerOnAt, serial, events }: { powerOnAt: number; serial: SerialWatcher; events: ServerEvent[] }): PhaseRow[] {
  const rel = (t: number | undefined) => (t === undefined ? undefined : t - powerOnAt);
  const ev = (pred: (e: ServerEvent) => boolean) => {
    const e = events.find((x) => new Date(x.at).getTime() >= powerOnAt - 1000 && pred(x));
    return e ? new Date(e.at).getTime() : undefined;
  };
  return [
    { phase: 'power-on', at: 0, source: 'BMC chassis_control' },
    { phase: 'DHCP', at: rel(serial.seenAt(SERIAL_MARKERS.dhcp)), source: 'serial: iPXE "Configuring … ok"' },
    (() => {
      const fromServer = ev((e) => e.kind === 'phase' && e.reason === 'ipxe-script');
      return fromServer !== undefined
        ? { phase: 'iPXE script', at: rel(fromServer), source: 'server event ipxe-script' }
        : { phase: 'iPXE script', at: rel(serial.seenAt(SERIAL_MARKERS.ipxeScript)), source: 'serial: "boot.ipxe... ok"' };
    })(),
    { phase: 'stage-1 up', at: rel(serial.seenAt(SERIAL_MARKERS.kernel)), source: 'serial: first "Linux version"' },
    { phase: 'registered', at: rel(ev((e) => e.kind === 'phase' && e.reason === 'registered')), source: 'server event registered' },
    { phase: 'kexec', at: rel(serial.seenAt(SERIAL_MARKERS.kernel, { nth: 1 })), source: 'serial: second "Linux version"' },
    { phase: 'active', at: rel(ev((e) => e.toState === 'active')), source: 'server transition → active' },
  ];
}
