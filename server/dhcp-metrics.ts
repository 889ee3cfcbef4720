// The DHCP server's counters on the /metrics registry. boot/dhcp keeps plain numbers (it imports nothing
// from server/); they are read at scrape time, so a packet costs an array increment and never a label object.
// The spoofing counters are the alerting signal: a rising bootfarm_dhcp_reserved_declines_refused means someone
// forges DECLINEs for reserved addresses. Labels are bounded: message type (10 values), how a request came
// (direct, relayed, pxe), the configured mode and pool names, lease states; never a MAC or an address.
import { Gauge, Histogram, type Registry } from 'prom-client';
import { MESSAGE_TYPE_NAMES, type DhcpResponder, type DhcpStats } from '../boot/dhcp/index.ts';
import { scrapeCounter, type Series } from './metrics.ts';

const HELP: Record<keyof DhcpStats, [string, string]> = {
  received: ['bootfarm_dhcp_received', 'DHCP packets decoded (since start)'],
  replies: ['bootfarm_dhcp_replies', 'DHCP replies sent (since start)'],
  acks: ['bootfarm_dhcp_acks', 'DHCPACKs sent (since start)'],
  naks: ['bootfarm_dhcp_naks', 'DHCPNAKs sent (since start)'],
  ignored: ['bootfarm_dhcp_ignored', 'DHCP requests answered with silence (since start)'],
  exhausted: ['bootfarm_dhcp_pool_exhausted', 'DISCOVERs not answered because every usable pool was full (since start)'],
  storeErrors: ['bootfarm_dhcp_store_errors', 'Lease writes that failed (since start)'],
  takenByPeer: ['bootfarm_dhcp_taken_by_peer', 'Bindings refused because another replica had bound the address first (since start)'],
  badHlen: ['bootfarm_dhcp_bad_hlen_dropped', 'DHCP packets dropped because hlen does not fit htype (since start)'],
  undecodable: ['bootfarm_dhcp_undecodable_dropped', 'Datagrams on the DHCP ports that did not decode as DHCP/BOOTP (since start)'],
  foreignReleases: ['bootfarm_dhcp_foreign_releases', 'DHCPRELEASEs ignored: not from the lease owner (since start)'],
  foreignDeclines: ['bootfarm_dhcp_foreign_declines', 'DHCPDECLINEs ignored: not from the lease owner (since start)'],
  reservedDeclinesRefused: ['bootfarm_dhcp_reserved_declines_refused', 'DHCPDECLINEs of a reserved address from another client, ignored (since start; alert on increase)'],
  reservedConflicts: ['bootfarm_dhcp_reserved_conflicts', 'DHCPDECLINEs of a reserved address from its owner: another machine uses it (since start; alert on increase)'],
};

/** upper bounds (seconds) of the handling-time histogram: an OFFER from memory is sub-millisecond, an ACK waits for a lease write */
const HANDLE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

export interface DhcpMetricsSource {
  /** the configured mode: a constant label, so dashboards split full from proxy replicas */
  mode: string;
  responder: Pick<DhcpResponder, 'stats' | 'traffic' | 'table' | 'pools'>;
  /** kernel receive-buffer drops (server.ts socketDrops); absent when no sockets are bound (unit tests) */
  socketDrops?: () => number;
  now?: () => number;
}

/** The handling-time histogram: create it before the DHCP server and hand `observe` to createDhcpServer's onHandled. */
export function createDhcpLatency(registry: Registry): (seconds: number) => void {
  // no labels: a packet costs one bucket search (the mode is on the counters; a replica serves one mode)
  const h = new Histogram({ name: 'bootfarm_dhcp_handle_duration_seconds', help: 'DHCP request handling time, arrival to reply sent (backend look-up and lease write included)', buckets: HANDLE_BUCKETS, registers: [registry] });
  return (seconds) => h.observe(seconds);
}

export function registerDhcpMetrics(registry: Registry, { mode, responder, socketDrops, now = Date.now }: DhcpMetricsSource): void {
  const { stats, traffic, table, pools } = responder;
  if (socketDrops) new Gauge({ name: 'bootfarm_dhcp_socket_drops', help: 'DHCP datagrams the kernel dropped because a socket receive buffer was full (since start; /proc/net/udp; raise dhcp.recvBufferBytes and net.core.rmem_max)', registers: [registry], collect() { this.set(socketDrops()); } });
  for (const key of Object.keys(HELP) as (keyof DhcpStats)[]) {
    const [name, help] = HELP[key];
    new Gauge({ name, help, registers: [registry], collect() { this.set(stats[key]); } });
  }
  const typed = (counts: number[], extra: Record<string, string>): Series => MESSAGE_TYPE_NAMES.map((type, i) => [{ ...extra, type }, counts[i]!]);
  scrapeCounter(registry, { name: 'bootfarm_dhcp_requests_total', help: 'DHCP requests received, by message type (option 53) and how they came: direct (port 67), relayed (giaddr set), pxe (port 4011)', labelNames: ['mode', 'via', 'type'], read: () => [
    ...typed(traffic.received.direct, { mode, via: 'direct' }),
    ...typed(traffic.received.relayed, { mode, via: 'relayed' }),
    ...typed(traffic.received.pxe, { mode, via: 'pxe' }),
  ] });
  scrapeCounter(registry, { name: 'bootfarm_dhcp_replies_total', help: 'DHCP replies sent, by message type (offer, ack, nak)', labelNames: ['mode', 'type'], read: () =>
    (['offer', 'ack', 'nak'] as const).map((type) => [{ mode, type }, traffic.sent[MESSAGE_TYPE_NAMES.indexOf(type)]!]),
  });
  scrapeCounter(registry, { name: 'bootfarm_dhcp_lease_events_total', help: 'Lease changes: bound (written, then ACKed), released, declined (address in use elsewhere, RFC 2131 §4.3.3)', labelNames: ['mode', 'event'], read: () => [
    [{ mode, event: 'bound' }, traffic.bound],
    [{ mode, event: 'released' }, traffic.released],
    [{ mode, event: 'declined' }, traffic.declined],
  ] });
  scrapeCounter(registry, { name: 'bootfarm_dhcp_lease_failures_total', help: 'Addresses not handed out: pool exhausted, lease write failed, or bound by another replica first', labelNames: ['mode', 'reason'], read: () => [
    [{ mode, reason: 'pool_exhausted' }, stats.exhausted],
    [{ mode, reason: 'store_error' }, stats.storeErrors],
    [{ mode, reason: 'taken_by_peer' }, stats.takenByPeer],
  ] });
  // one pass over this replica's lease table per scrape (bounded by the pools' sizes); other replicas' leases
  // appear here only once this one has seen them (load at start, a refused binding, a REQUEST for another server)
  new Gauge({
    name: 'bootfarm_dhcp_leases',
    help: "Entries of this replica's lease table by pool and state (offered, bound, released, declined, expired)",
    labelNames: ['pool', 'state'],
    registers: [registry],
    collect() {
      const t = now();
      const out = new Map(pools.map((p) => [p.name, { offered: 0, bound: 0, released: 0, declined: 0, expired: 0 }]));
      for (const e of table.byIp.values()) {
        const c = out.get(e.pool);
        if (!c) continue;
        if (e.expiresAt <= t && e.state !== 'released') c.expired++;
        else c[e.state]++;
      }
      this.reset();
      for (const [pool, c] of out) for (const [state, n] of Object.entries(c)) this.set({ pool, state }, n);
    },
  });
  const sizes = pools.map((p) => [p.name, Math.max(0, p.end - p.start + 1)] as const);
  new Gauge({ name: 'bootfarm_dhcp_pool_addresses', help: 'Addresses in each pool\'s dynamic range (for utilisation: bootfarm_dhcp_leases{state="bound"} / this)', labelNames: ['pool'], registers: [registry], collect() { for (const [pool, n] of sizes) this.set({ pool }, n); } });
}
