// server/'s side of the BootBackend seam: DHCP asks "who is this MAC?" and gets what the registry knows.
// An unknown MAC is an outcome (null), not an error; a retired node is known but gets no answer.
//
// DHCP asks twice per exchange (DISCOVER and REQUEST), in bursts during a boot storm, and most askers in a storm
// are new machines the registry has never seen. A database query per packet capped the product at ~660 DORA/s on
// PGlite (make bench-dhcp, `bootfarm-db`), so the backend answers from an in-memory table of every known MAC,
// reloaded in one query every `refreshMs` (and at once on a miss, at most once per `missRefreshMs`). A
// reservation or a retirement reaches DHCP within refreshMs.
import type { BootBackend, DhcpHost } from '../boot/backend.ts';
import type { NodeStore } from './store/nodes.ts';
import type { Logger } from './log.ts';

type Row = Awaited<ReturnType<NodeStore['macTable']>>[number];

const toHost = (mac: string, r: Row): DhcpHost => {
  const hostname = r.hostname ?? r.labels['bootfarm.io/hostname'];
  const ipv4 = r.labels['bootfarm.io/ipv4'];
  return { mac, allowBoot: r.state !== 'retired', ...(hostname ? { hostname } : {}), ...(ipv4 ? { ipv4 } : {}) };
};

export interface CachedBootBackend extends BootBackend {
  /** reloads the MAC table now */
  refresh(): Promise<void>;
  stop(): void;
}

export function createBootBackend({ nodes, refreshMs = 10_000, missRefreshMs = 2_000, log, now = Date.now }: { nodes: Pick<NodeStore, 'macTable'>; refreshMs?: number; missRefreshMs?: number; log?: Logger; now?: () => number }): CachedBootBackend {
  let table = new Map<string, Row>();
  let loadedAt = -Infinity;
  let loading: Promise<void> | null = null;

  const refresh = () =>
    (loading ??= nodes
      .macTable()
      .then((rows) => {
        table = new Map(rows.map((r) => [r.mac, r]));
        loadedAt = now();
      })
      .catch((err) => {
        // keep answering from the last table: DHCP must not stop because the database blinked
        log?.warn({ err: (err as Error).message }, 'boot backend: MAC table reload failed; serving the previous one');
      })
      .finally(() => (loading = null)));

  const timer = setInterval(() => void refresh(), refreshMs);
  timer.unref();

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
      return row ? toHost(mac, row) : null;
    },
    refresh,
    stop: () => clearInterval(timer),
  };
}
