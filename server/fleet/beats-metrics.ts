// The heartbeat buffer's metrics (issue 17 item 6): how many beats wait, how far behind the database is, and what
// each flush costs. The lag is the signal: the health check reads the database, so a lag near
// fleet.heartbeat.flushSeconds is normal and one that keeps growing means flushes fail (docs/ha.md).
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { BeatBuffer } from './beats.ts';

export function createBeatMetrics(registry: Registry, { now = () => performance.now() } = {}) {
  const flushed = new Counter({ name: 'bootfarm_heartbeat_flushed_total', help: 'Buffered heartbeats written to the database', registers: [registry] });
  const flushTime = new Histogram({ name: 'bootfarm_heartbeat_flush_duration_seconds', help: 'Time of one heartbeat flush (one statement for every buffered node)', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [registry] });
  let lastFlush = now();
  return {
    /** BeatBufferOptions.onFlush */
    onFlush(beats: number, ms: number) {
      flushed.inc(beats);
      flushTime.observe(ms / 1000);
      lastFlush = now();
    },
    attach(buffer: Pick<BeatBuffer, 'pending'>) {
      new Gauge({ name: 'bootfarm_heartbeat_buffered', help: 'Heartbeats waiting in this replica\'s buffer for the next flush', registers: [registry], collect() { this.set(buffer.pending()); } });
      new Gauge({
        name: 'bootfarm_heartbeat_flush_lag_seconds',
        help: 'While heartbeats wait in the buffer: seconds since the last successful flush (0 when nothing waits); the database is this far behind',
        registers: [registry],
        collect() {
          this.set(buffer.pending() === 0 ? 0 : (now() - lastFlush) / 1000);
        },
      });
    },
  };
}
