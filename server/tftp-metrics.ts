// The TFTP server's counters on the /metrics registry (issue 17 item 6). boot/tftp keeps plain numbers (it imports
// nothing from server/), read here at scrape time; the duration histogram is the one hook it calls, once per
// finished transfer. Labels are closed sets (outcome, failure cause, refusal cause), never a file or a peer.
import { Gauge, Histogram, type Registry } from 'prom-client';
import type { TftpStats } from '../boot/tftp/index.ts';
import { scrapeCounter, type Series } from './metrics.ts';

/** PXE ROMs fetch undionly.kpxe / snponly.efi (tens to hundreds of kB): a clean transfer takes well under a second */
const DURATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** The transfer-duration histogram: create it before the TFTP server and hand the result to onTransferDone. */
export function createTftpDuration(registry: Registry): (seconds: number, ok: boolean) => void {
  const h = new Histogram({ name: 'bootfarm_tftp_transfer_duration_seconds', help: 'TFTP transfer time, first packet to the last ACK (or the failure), by outcome', labelNames: ['outcome'], buckets: DURATION_BUCKETS, registers: [registry] });
  // both series from the start: a dashboard's rate() sees 0, not "no data", before the first failure
  h.zero({ outcome: 'completed' });
  h.zero({ outcome: 'failed' });
  const ok = h.labels({ outcome: 'completed' });
  const failed = h.labels({ outcome: 'failed' });
  return (seconds, done) => (done ? ok : failed).observe(seconds);
}

export function registerTftpMetrics(registry: Registry, server: { readonly stats: Readonly<TftpStats> }): void {
  // every series reads the server's stats object afresh at each scrape
  const counter = (name: string, help: string, labelNames: string[], read: (s: Readonly<TftpStats>) => Series) => scrapeCounter(registry, { name, help, labelNames, read: () => read(server.stats) });
  counter('bootfarm_tftp_transfers_started_total', 'TFTP read transfers started (a file opened, the first packet sent)', [], (s) => [[{}, s.transfersStarted]]);
  counter('bootfarm_tftp_transfers_completed_total', 'TFTP transfers the client acknowledged to the last block', [], (s) => [[{}, s.transfersCompleted]]);
  counter('bootfarm_tftp_transfers_failed_total', 'TFTP transfers that ended early, by cause (timeout, peer_error, read_error, source_stalled, aborted)', ['cause'], (s) => Object.entries(s.failedBy).map(([cause, n]) => [{ cause }, n]));
  counter('bootfarm_tftp_requests_refused_total', 'TFTP requests that got no transfer, by cause (not_found, write, mode, path, open_error, busy: dropped at tftp.maxTransfers)', ['cause'], (s) => Object.entries(s.refusedBy).map(([cause, n]) => [{ cause }, n]));
  counter('bootfarm_tftp_sent_bytes_total', 'File bytes of finished TFTP transfers (the whole file for a completed one, what was read for a failed one; retransmissions not counted twice)', [], (s) => [[{}, s.bytesSent]]);
  counter('bootfarm_tftp_retransmits_total', 'DATA packets (and OACKs) sent again after a timeout or a gap ACK (RFC 7440)', [], (s) => [[{}, s.retransmits]]);
  counter('bootfarm_tftp_timeouts_total', 'Retransmission timeouts with data in flight (each doubles the transfer\'s timeout)', [], (s) => [[{}, s.timeouts]]);
  counter('bootfarm_tftp_malformed_packets_total', 'Packets on the TFTP port that were not a valid request', [], (s) => [[{}, s.malformedPackets]]);
  new Gauge({ name: 'bootfarm_tftp_active_transfers', help: 'TFTP transfers in progress (tftp.maxTransfers caps them)', registers: [registry], collect() { this.set(server.stats.activeTransfers); } });
}
