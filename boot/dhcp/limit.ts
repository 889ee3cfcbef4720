// Rate-limited warnings: one line per source per interval, with the number held back since the last one.
//
// Anyone on the boot network can make the DHCP server warn (a forged DECLINE, a broken hlen, a flood of
// DISCOVERs for a reserved address), so a warning printed per packet is a way to fill the disk and drown
// the lines that matter. The counters in the responder's stats (exported to /metrics) keep the exact
// totals; the log keeps one line per (what, source) per interval, carrying `suppressed`: how many lines
// like it were held back since the previous one.
//
// The table of sources is bounded: a sender that rotates its chaddr on every packet cannot grow it
// without limit. When it is full, sources that have been quiet for an interval are forgotten; when none
// has, new sources share one key, so the worst case is `maxKeys + 1` lines per interval.

export interface LogLimiterOptions {
  /** ms since epoch (injected, so tests drive it) */
  clock: () => number;
  intervalMs?: number;
  maxKeys?: number;
}

/** `{ suppressed }` when a line may be written now, null when it is held back (and counted). */
export type TakeLine = (key: string) => { suppressed: number } | null;

export const OTHER_SOURCES = '(other sources)';

export function createLogLimiter({ clock, intervalMs = 60_000, maxKeys = 1024 }: LogLimiterOptions): TakeLine {
  const last = new Map<string, { at: number; suppressed: number }>();
  return function take(key) {
    const now = clock();
    let k = last.get(key);
    if (!k && last.size >= maxKeys) {
      for (const [name, v] of last) if (now - v.at >= intervalMs && v.suppressed === 0) last.delete(name);
      if (last.size >= maxKeys) {
        key = OTHER_SOURCES;
        k = last.get(key);
      }
    }
    if (k && now - k.at < intervalMs) {
      k.suppressed++;
      return null;
    }
    const suppressed = k?.suppressed ?? 0;
    last.set(key, { at: now, suppressed: 0 });
    return { suppressed };
  };
}
