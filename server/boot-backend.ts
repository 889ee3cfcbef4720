// server/'s side of the BootBackend seam: DHCP asks "who is this MAC?" and gets what the registry knows.
// An unknown MAC is an outcome (null), not an error; a retired node is known but gets no answer.
//
// DHCP asks twice per exchange (DISCOVER and REQUEST), in bursts during a boot storm, and most askers in a storm
// are new machines the registry has never seen. A database query per packet capped the product at ~660 DORA/s on
// PGlite (make bench-dhcp, `bootfarm-db`), so the backend answers from an in-memory table of every known MAC,
// reloaded in one query: at once on a miss (at most once per `missRefreshMs`), and every `refreshMs` at the latest.
//
// Several replicas (docs/ha.md "The MAC table across replicas"): with `changes` (server/store/mac-changes.ts) a
// replica reloads when another one changes what DHCP answers — a notification on PostgreSQL (LISTEN, reloaded on
// every reconnect), and a poll of the change counter every `pollMs` as a bound when notifications are lost. A
// poll that sees the counter move reloads, and reloads once more on the next poll, because the counter moves
// before the change commits. Reloads asked for while one runs coalesce into one more.
import type { BootBackend, DhcpHost } from '../boot/backend.ts';
import type { NodeStore } from './store/nodes.ts';
import type { MacChanges } from './store/mac-changes.ts';
import type { Logger } from './log.ts';

type Row = Awaited<ReturnType<NodeStore['macTable']>>[number];

const toHost = (mac: string, r: Row, bootloaderOf: BootBackendOptions['bootloaderOf']): DhcpHost => {
  const hostname = r.hostname ?? r.labels['bootfarm.io/hostname'];
  const ipv4 = r.labels['bootfarm.io/ipv4'];
  const ipv6 = r.labels['bootfarm.io/ipv6'];
  const bootloader = bootloaderOf?.(r);
  return { mac, allowBoot: r.state !== 'retired', ...(hostname ? { hostname } : {}), ...(ipv4 ? { ipv4 } : {}), ...(ipv6 ? { ipv6 } : {}), ...(bootloader && bootloader !== 'ipxe' ? { bootloader } : {}) };
};

export interface CachedBootBackend extends BootBackend {
  /** reloads the MAC table now (a reload already running is followed by one more) */
  refresh(): Promise<void>;
  /** resolves once listening for changes has started (or failed, then polling alone bounds staleness) */
  ready: Promise<void>;
  stop(): void;
}

export interface BootBackendOptions {
  nodes: Pick<NodeStore, 'macTable'>;
  /** other replicas' changes: notifications + change counter (absent: time and misses only) */
  changes?: MacChanges;
  /** listen for notifications (default true when `changes` is given); the poll alone otherwise */
  listen?: boolean;
  /** the latest a table is reloaded anyway */
  refreshMs?: number;
  /** how often the change counter is polled (the bound when notifications are lost) */
  pollMs?: number;
  missRefreshMs?: number;
  log?: Logger;
  now?: () => number;
  /** the boot loader of the node's profile (server/domain/profiles.ts selectProfile); absent: every node gets iPXE */
  bootloaderOf?: (node: { profile: string | null; labels: Record<string, string> }) => 'ipxe' | 'shim-grub';
}

export function createBootBackend({ nodes, changes, listen = true, refreshMs = changes ? 60_000 : 10_000, pollMs = 5_000, missRefreshMs = 2_000, log, now = Date.now, bootloaderOf }: BootBackendOptions): CachedBootBackend {
  let table = new Map<string, Row>();
  let loadedAt = -Infinity;
  let loading: Promise<void> | null = null;
  let again = false;

  const load = (): Promise<void> =>
    nodes
      .macTable()
      .then((rows) => {
        table = new Map(rows.map((r) => [r.mac, r]));
        loadedAt = now();
      })
      .catch((err) => {
        // keep answering from the last table: DHCP must not stop because the database blinked
        log?.warn({ err: (err as Error).message }, 'boot backend: MAC table reload failed; serving the previous one');
      });

  function refresh(): Promise<void> {
    if (loading) {
      // the running load may have read before the change: one more after it
      again = true;
      return loading;
    }
    loading = (async () => {
      do {
        again = false;
        await load();
      } while (again);
    })().finally(() => (loading = null));
    return loading;
  }

  const timers: NodeJS.Timeout[] = [setInterval(() => void refresh(), refreshMs)];
  let unlisten: (() => Promise<void>) | undefined;
  let stopped = false;
  let ready: Promise<void> = Promise.resolve();
  if (changes) {
    let seen: string | undefined;
    let settle = false;
    const poll = async () => {
      try {
        const v = await changes.version();
        if (v !== seen || settle) {
          settle = v !== seen;
          seen = v;
          await refresh();
        }
      } catch (err) {
        log?.warn({ err: (err as Error).message }, 'boot backend: change counter unreadable; serving the previous table');
      }
    };
    timers.push(setInterval(() => void poll(), pollMs));
    if (listen)
      ready = changes
        .subscribe(
          () => void refresh(),
          // (re)connected: what was sent while not listening is lost
          () => void refresh(),
        )
        .then(
          (off) => {
            if (stopped) void off().catch(() => undefined);
            else unlisten = off;
          },
          (err) => log?.warn({ err: (err as Error).message }, `boot backend: LISTEN failed; other replicas' changes arrive within ${pollMs} ms by polling`),
        );
  }
  for (const t of timers) t.unref();

  return {
    async dhcpHost(mac: string): Promise<DhcpHost | null> {
      const key = mac.toLowerCase();
      if (now() - loadedAt > refreshMs) await refresh();
      let row = table.get(key);
      // a machine registered a moment ago: look again, but not on every packet of a storm of strangers
      if (!row && now() - loadedAt > missRefreshMs) {
        await refresh();
        row = table.get(key);
      }
      return row ? toHost(mac, row, bootloaderOf) : null;
    },
    refresh,
    ready,
    stop: () => {
      stopped = true;
      for (const t of timers) clearInterval(t);
      void unlisten?.().catch(() => undefined);
    },
  };
}
