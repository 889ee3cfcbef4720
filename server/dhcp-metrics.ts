// The DHCP server's counters on the /metrics registry. boot/dhcp keeps plain numbers (it imports nothing
// from server/); they are read at scrape time. The spoofing counters are the alerting signal: a rising
// bootfarm_dhcp_reserved_declines_refused means someone forges DECLINEs for reserved addresses.
import { Gauge, type Registry } from 'prom-client';
import type { DhcpStats } from '../boot/dhcp/index.ts';

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
  foreignReleases: ['bootfarm_dhcp_foreign_releases', 'DHCPRELEASEs ignored: not from the lease owner (since start)'],
  foreignDeclines: ['bootfarm_dhcp_foreign_declines', 'DHCPDECLINEs ignored: not from the lease owner (since start)'],
  reservedDeclinesRefused: ['bootfarm_dhcp_reserved_declines_refused', 'DHCPDECLINEs of a reserved address from another client, ignored (since start; alert on increase)'],
  reservedConflicts: ['bootfarm_dhcp_reserved_conflicts', 'DHCPDECLINEs of a reserved address from its owner: another machine uses it (since start; alert on increase)'],
};

export function registerDhcpMetrics(registry: Registry, stats: DhcpStats, socket?: { socketDrops(): number }): void {
  if (socket) new Gauge({ name: 'bootfarm_dhcp_socket_drops', help: 'DHCP datagrams the kernel dropped because a socket receive buffer was full (since start; /proc/net/udp; raise dhcp.recvBufferBytes and net.core.rmem_max)', registers: [registry], collect() { this.set(socket.socketDrops()); } });
  for (const key of Object.keys(HELP) as (keyof DhcpStats)[]) {
    const [name, help] = HELP[key];
    new Gauge({ name, help, registers: [registry], collect() { this.set(stats[key]); } });
  }
}
