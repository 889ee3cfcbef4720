// The storm's client side, run inside the client namespace by bench/storm/run.ts:
//   ip netns exec NS node --import tsx bench/storm/sim.ts '<json StormSimOptions>'
// N simulated machines (test/support/sim) from their PXE ROMs: DHCP with the RFC 2131 retransmission, TFTP of the
// iPXE binary, DHCP as iPXE, /boot.ipxe, /ipxe/<uuid> (and the jittered sleep-and-chain script when the server's
// boot budget is full), stage-1 kernel and initrd, register with varied facts, profile, compute kernel and initrd,
// installed, heartbeats at the profile's interval. At most `concurrency` machines are between power-on and
// installed at once. Every 500 ms it samples how many nodes are in each phase and the bytes received so far.
// When every node is active or has given up it keeps beating for `holdSeconds`, stops, writes the reports and
// the samples to `result` (JSON) and prints `DONE`.
import { writeFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { startSimFleet } from '../../test/support/sim/fleet.ts';
import { RFC2131_RETRANSMIT } from '../../test/support/sim/dhcp.ts';
import type { SimPhase } from '../../test/support/sim/node.ts';

export interface StormSimOptions {
  count: number;
  concurrency: number;
  iface: string;
  prefixLen: number;
  result: string;
  /** keep beating this long after the last node is active */
  holdSeconds: number;
  /** give up on the storm after this long */
  timeoutSeconds: number;
  /** power-on spread (ms) of node i: i × spreadMs / count, on top of the concurrency bound */
  spreadMs?: number;
  /** the EFI nodes' TFTP client (test/support/sim/node.ts efiTftp; default 'ovmf') */
  efiTftp?: 'ovmf' | 'pxe-rom';
}

export interface StormSample {
  /** ms since the first power-on */
  t: number;
  counts: Record<SimPhase, number>;
  bytes: number;
}

const o = JSON.parse(process.argv[2] ?? '{}') as StormSimOptions;
// The simulator is one process for every node: a late timer or a late read here is a late ACK or DHCP answer on
// the wire, charged to the server. Its own event-loop delay goes into the result so the report can tell them apart
// (sampled every 10 ms as prom-client does for the server's nodejs_eventloop_lag_*: both figures include those 10 ms).
const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();
let bytes = 0;
const failed: string[] = [];
const t0 = Date.now();
const fleet = await startSimFleet({
  count: o.count,
  iface: o.iface,
  prefixLen: o.prefixLen,
  spreadMs: o.spreadMs ?? 0,
  images: 'stream',
  firmware: 'pxe',
  varied: true,
  efiTftp: o.efiTftp ?? 'ovmf',
  retransmit: RFC2131_RETRANSMIT,
  concurrency: o.concurrency,
  // the real agent's backoff (agent/retry.ts defaults: 1 s doubling, 60 s cap)
  backoff: { baseMs: 1000, capMs: 60_000 },
  onBytes: (n) => (bytes += n),
  onFailed: (r) => {
    failed.push(r.uuid);
    process.stderr.write(`FAILED ${r.uuid} in ${r.failedIn}: ${r.error}\n`);
  },
});
process.stdout.write('READY\n');
const samples: StormSample[] = [];
const sample = () => samples.push({ t: Date.now() - t0, counts: fleet.counts(), bytes });
let allActiveAt: number | undefined;
await new Promise<void>((resolve) => {
  let ticks = 0;
  const timer = setInterval(() => {
    sample();
    const c = samples.at(-1)!.counts;
    if (++ticks % 10 === 0) process.stderr.write(`PROGRESS ${JSON.stringify({ t: samples.at(-1)!.t, ...c, mb: Math.round(bytes / 1e6) })}\n`);
    const settled = c.active + c.failed === o.count;
    if (settled && allActiveAt === undefined) allActiveAt = Date.now() - t0;
    const timedOut = Date.now() - t0 > o.timeoutSeconds * 1000;
    if ((settled && Date.now() - t0 - allActiveAt! >= o.holdSeconds * 1000) || timedOut) {
      clearInterval(timer);
      resolve();
    }
  }, 500);
});
const reports = await fleet.stop();
loop.disable();
const ms = (ns: number) => ns / 1e6;
const simLoop = { p50: ms(loop.percentile(50)), p90: ms(loop.percentile(90)), p99: ms(loop.percentile(99)), max: ms(loop.max), mean: ms(loop.mean) };
sample();
writeFileSync(o.result, JSON.stringify({ startedAt: new Date(t0).toISOString(), settledMs: allActiveAt ?? null, simLoopDelayMs: simLoop, samples, reports, specs: fleet.specs.map((s) => ({ uuid: s.uuid, platform: s.platform, product: s.product })) }));
process.stdout.write(`DONE ${reports.filter((r) => r.phase === 'active').length}/${o.count} active, ${failed.length} failed\n`, () => process.exit(0));
