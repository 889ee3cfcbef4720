// The DHCPv6 server's counters on the /metrics registry, read at scrape time from the plain numbers boot/dhcp6 keeps
// (as server/dhcp-metrics.ts does for DHCPv4). Labels are bounded (event, reason); never a DUID or an address.
import { Counter, type Registry } from 'prom-client';
import type { Dhcp6Stats } from '../boot/dhcp6/index.ts';

function countersFrom(registry: Registry, name: string, help: string, labelNames: readonly string[], read: () => [Record<string, string>, number][]): void {
  new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const [labels, value] of read()) this.inc(labels, value);
    },
  });
}

/** `stats` is read at every scrape: pass a getter (Dhcp6Server.stats is one). */
export function registerDhcp6Metrics(registry: Registry, source: { readonly stats: Dhcp6Stats }): void {
  countersFrom(registry, 'bootfarm_dhcp6_messages_total', 'DHCPv6 messages: received (decoded), replied, ignored (silence), undecodable', ['event'], () => {
    const s = source.stats;
    return [
      [{ event: 'received' }, s.received],
      [{ event: 'replied' }, s.replies],
      [{ event: 'ignored' }, s.ignored],
      [{ event: 'undecodable' }, s.undecodable],
    ];
  });
  countersFrom(registry, 'bootfarm_dhcp6_lease_events_total', 'DHCPv6 lease changes: bound (written, then replied), released, declined (address in use elsewhere, RFC 8415 §18.3.8)', ['event'], () => {
    const s = source.stats;
    return [
      [{ event: 'bound' }, s.bound],
      [{ event: 'released' }, s.released],
      [{ event: 'declined' }, s.declined],
    ];
  });
  countersFrom(registry, 'bootfarm_dhcp6_lease_failures_total', 'DHCPv6 IAs not given an address: pool exhausted, lease write failed, or bound by another replica first', ['reason'], () => {
    const s = source.stats;
    return [
      [{ reason: 'pool_exhausted' }, s.exhausted],
      [{ reason: 'store_error' }, s.storeErrors],
      [{ reason: 'taken_by_peer' }, s.takenByPeer],
    ];
  });
}
