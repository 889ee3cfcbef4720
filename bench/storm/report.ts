// The storm's figures from what the run collected (pure: values in, values out): per-phase latency percentiles,
// failures by phase, time until every node is active, bytes, the byte bound and the ratio, the server's memory
// and event loop; the text table `make storm` prints and the SVG plot BENCHMARKS.md links.
import { SIM_PHASES, type SimNodeReport, type SimPhase } from '../../test/support/sim/node.ts';
import type { StormSample } from './sim.ts';

/** the phases a node goes through, each named by what the node does in it (from `at[p]` to the next phase's) */
export const PHASE_LABELS: Partial<Record<SimPhase, string>> = {
  dhcp: 'DHCP (PXE ROM)',
  tftp: 'TFTP iPXE binary',
  ipxe: 'DHCP (iPXE) + scripts',
  images: 'stage-1 kernel+initrd',
  stage1: 'register',
  registered: 'bmc-setup, profile, detail',
  profile: 'events',
  compute: 'compute kernel+initrd',
  installed: 'installed → active',
};
/** the same, short enough for the plot's axis */
const SHORT: Partial<Record<SimPhase, string>> = { dhcp: 'DHCP (PXE)', tftp: 'TFTP', ipxe: 'DHCP+scripts', images: 'stage-1 images', stage1: 'register', registered: 'profile', profile: 'events', compute: 'compute images', installed: '→ active' };
export const TIMED_PHASES = SIM_PHASES.filter((p) => p !== 'active');

export interface StormInput {
  config: Record<string, unknown>;
  nodes: number;
  reports: SimNodeReport[];
  samples: StormSample[];
  settledMs: number | null;
  /** server process samples: ms since the storm started, RSS bytes, CPU seconds so far */
  server: { t: number; rss: number; cpu: number }[];
  /** RSS (bytes) with the images pushed, before the first node */
  rssBefore: number;
  /** /healthz round trips during the storm (ms), through the runner's forwarder */
  healthzMs: number[];
  /** event-loop figures the server's /metrics gave, if it has any (name → value) */
  eventLoop: Record<string, number>;
  /** the simulator's own event-loop delay (ms; p50, p90, p99, max, mean), when it measured it */
  simLoopDelayMs?: Record<string, number>;
  bound: { ms: number; bytes: number };
}

export interface PhaseStats {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

const pct = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]! : NaN);
export function stats(xs: number[]): PhaseStats {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, p50: pct(s, 50), p95: pct(s, 95), p99: pct(s, 99), max: s.at(-1) ?? NaN };
}

/** seconds each node spent in each phase it left */
export function phaseDurations(reports: SimNodeReport[]): Record<string, number[]> {
  const out: Record<string, number[]> = Object.fromEntries(TIMED_PHASES.map((p) => [p, []]));
  for (const r of reports) {
    const reached = SIM_PHASES.filter((p) => r.at[p] !== undefined);
    for (let i = 0; i + 1 < reached.length; i++) out[reached[i]!]!.push((r.at[reached[i + 1]!]! - r.at[reached[i]!]!) / 1000);
  }
  return out;
}

/** TFTP seconds and resent packets per client kind (reports of runs before the field existed: 'pxe-rom') */
export function tftpByClient(reports: SimNodeReport[]) {
  const by: Record<string, { ms: number[]; resent: number; windowsize: number }> = {};
  for (const r of reports) {
    if (!r.tftp) continue;
    const b = (by[r.tftp.client ?? 'pxe-rom'] ??= { ms: [], resent: 0, windowsize: r.tftp.windowsize ?? 1 });
    b.ms.push(r.tftp.ms / 1000);
    b.resent += r.tftp.resent;
  }
  return Object.fromEntries(Object.entries(by).map(([k, b]) => [k, { ...stats(b.ms), resent: b.resent, windowsize: b.windowsize }]));
}

export function buildReport(x: StormInput) {
  const active = x.reports.filter((r) => r.phase === 'active');
  const failed = x.reports.filter((r) => r.phase === 'failed');
  const failuresByPhase: Record<string, number> = {};
  for (const r of failed) failuresByPhase[r.failedIn ?? 'unknown'] = (failuresByPhase[r.failedIn ?? 'unknown'] ?? 0) + 1;
  const notDone = x.nodes - active.length - failed.length;
  if (notDone > 0) failuresByPhase['not finished (timeout)'] = notDone;
  const durations = phaseDurations(x.reports);
  const phases = Object.fromEntries(Object.entries(durations).map(([p, d]) => [p, stats(d)]));
  const lastActiveMs = Math.max(0, ...active.map((r) => r.at.active ?? 0));
  const tftp = x.reports.reduce((n, r) => n + r.bytes.tftp, 0);
  const http = x.reports.reduce((n, r) => n + r.bytes.http, 0);
  const rssPeak = Math.max(x.rssBefore, ...x.server.map((s) => s.rss));
  const cpu = (x.server.at(-1)?.cpu ?? 0) - (x.server[0]?.cpu ?? 0);
  const storm = (x.settledMs ?? lastActiveMs) / 1000;
  const boundS = x.bound.ms / 1000;
  const discovers = x.reports.reduce((n, r) => n + (r.dhcp?.discovers ?? 0), 0);
  return {
    config: x.config,
    nodes: x.nodes,
    active: active.length,
    failed: failed.length,
    failuresByPhase,
    firstErrors: failed.slice(0, 5).map((r) => `${r.uuid} in ${r.failedIn}: ${r.error}`),
    timeToAllActiveS: x.settledMs === null || failed.length ? null : storm,
    lastActiveS: lastActiveMs / 1000,
    nodesPerSecond: active.length / (lastActiveMs / 1000 || 1),
    phases,
    bytes: { total: tftp + http, tftp, http, perNode: (tftp + http) / Math.max(1, x.nodes) },
    bound: { seconds: boundS, bytes: x.bound.bytes, MBps: x.bound.bytes / 1e6 / boundS },
    stormMBps: (tftp + http) / 1e6 / storm,
    /** storm time ÷ byte-bound time (target ≤ 1.5) */
    ratio: storm / boundS,
    server: {
      rssBeforeMiB: x.rssBefore / 2 ** 20,
      rssPeakMiB: rssPeak / 2 ** 20,
      rssGrowthPer1000NodesMiB: ((rssPeak - x.rssBefore) / 2 ** 20) * (1000 / x.nodes),
      cpuSeconds: cpu,
      healthzMs: stats(x.healthzMs),
      eventLoop: x.eventLoop,
    },
    /** the PXE ROM's TFTP fetch of the iPXE binary by client (BIOS ROM lockstep, OVMF windowed): seconds, packets resent */
    tftpByClient: tftpByClient(x.reports),
    simLoopDelayMs: x.simLoopDelayMs ?? null,
    dhcp: { discovers, naks: x.reports.reduce((n, r) => n + (r.dhcp?.naks ?? 0), 0), nodesThatRetransmitted: x.reports.filter((r) => (r.dhcp?.discovers ?? 0) > 2).length },
    agentRetries: x.reports.reduce((n, r) => n + r.retries, 0),
    /** scripts beyond /boot.ipxe + /ipxe/<uuid>: the budget's sleep-and-chain answers (and any failed chain) */
    budgetWaits: x.reports.reduce((n, r) => n + Math.max(0, (r.scripts ?? 2) - 2), 0),
    heartbeats: x.reports.reduce((n, r) => n + r.heartbeats, 0),
    heartbeatErrors: x.reports.reduce((n, r) => n + r.heartbeatErrors, 0),
    timeline: x.samples.map((s) => ({ t: s.t / 1000, active: s.counts.active, booting: x.nodes - s.counts.active - s.counts.failed - s.counts.installed, failed: s.counts.failed, mb: s.bytes / 1e6 })),
    serverTimeline: x.server.map((s) => ({ t: s.t / 1000, rssMiB: s.rss / 2 ** 20, cpu: s.cpu })),
  };
}
export type StormReport = ReturnType<typeof buildReport>;

const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(n >= 100 ? 0 : n >= 10 ? 1 : 2) : '–');
const gb = (b: number) => `${(b / 1e9).toFixed(2)} GB`;

export function renderTable(r: StormReport): string {
  const L: string[] = [];
  const c = r.config as Record<string, unknown>;
  L.push(`storm: ${r.nodes} nodes, ${c.concurrency} at once, db ${c.db}, store ${c.store}, images ${c.imagesSource}`);
  L.push(`  active ${r.active}/${r.nodes}, failed ${r.failed}${r.failed ? ` ${JSON.stringify(r.failuresByPhase)}` : ''}`);
  L.push(`  time until all active: ${r.timeToAllActiveS === null ? `not reached (last active at ${f1(r.lastActiveS)} s)` : `${f1(r.timeToAllActiveS)} s`}   (${f1(r.nodesPerSecond)} nodes/s)`);
  L.push('');
  L.push(`  ${'phase'.padEnd(30)} ${'n'.padStart(5)} ${'p50 s'.padStart(8)} ${'p95 s'.padStart(8)} ${'p99 s'.padStart(8)} ${'max s'.padStart(8)}`);
  for (const p of TIMED_PHASES) {
    const s = r.phases[p]!;
    if (!s.n) continue;
    L.push(`  ${(PHASE_LABELS[p] ?? p).padEnd(30)} ${String(s.n).padStart(5)} ${f1(s.p50).padStart(8)} ${f1(s.p95).padStart(8)} ${f1(s.p99).padStart(8)} ${f1(s.max).padStart(8)}`);
  }
  L.push('');
  L.push(`  bytes served: ${gb(r.bytes.total)} (${(r.bytes.perNode / 1e6).toFixed(1)} MB per node; TFTP ${(r.bytes.tftp / 1e6).toFixed(1)} MB), ${f1(r.stormMBps)} MB/s over the storm`);
  L.push(`  byte bound (plain node:http, same bytes, same path, same concurrency): ${f1(r.bound.seconds)} s, ${f1(r.bound.MBps)} MB/s`);
  L.push(`  ratio storm / bound: ${r.ratio.toFixed(2)}×   (target ≤ 1.5×)`);
  L.push(`  server RSS: ${f1(r.server.rssBeforeMiB)} MiB before, ${f1(r.server.rssPeakMiB)} MiB peak, +${f1(r.server.rssGrowthPer1000NodesMiB)} MiB per 1,000 nodes; CPU ${f1(r.server.cpuSeconds)} s`);
  L.push(`  /healthz during the storm: p50 ${f1(r.server.healthzMs.p50)} ms, p99 ${f1(r.server.healthzMs.p99)} ms, max ${f1(r.server.healthzMs.max)} ms${Object.keys(r.server.eventLoop).length ? `; /metrics ${JSON.stringify(r.server.eventLoop)}` : ' (no event-loop gauge in /metrics)'}`);
  for (const [client, t] of Object.entries(r.tftpByClient ?? {})) L.push(`  TFTP by client ${client} (windowsize ${t.windowsize}): ${t.n} nodes, p50 ${f1(t.p50)} s, p99 ${f1(t.p99)} s, max ${f1(t.max)} s; ${t.resent} packets resent`);
  if (r.simLoopDelayMs) L.push(`  simulator event-loop delay (10 ms sampling included): p50 ${f1(r.simLoopDelayMs.p50!)} ms, p99 ${f1(r.simLoopDelayMs.p99!)} ms, max ${f1(r.simLoopDelayMs.max!)} ms`);
  L.push(`  DHCP: ${r.dhcp.discovers} DISCOVERs, ${r.dhcp.naks} NAKs, ${r.dhcp.nodesThatRetransmitted} nodes retransmitted; boot-budget waits ${r.budgetWaits}; agent retries ${r.agentRetries}; heartbeats ${r.heartbeats} (${r.heartbeatErrors} errors)`);
  return L.join('\n');
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

/** Two panels: nodes active (and booting) over time; per-phase p50 and p99. Plain SVG, no library. */
export function renderSvg(r: StormReport): string {
  const W = 960;
  const H = 360;
  const pad = { l: 56, r: 16, t: 48, b: 56 };
  const pw = 440;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`);
  out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  const c = r.config as Record<string, unknown>;
  out.push(`<text x="${W / 2}" y="16" text-anchor="middle" font-size="13">${esc(`bootfarm boot storm: ${r.nodes} nodes, ${c.concurrency} at once, ${c.db}, ${c.store} store — ${r.active} active, ${r.failed} failed; ratio to byte bound ${r.ratio.toFixed(2)}×`)}</text>`);
  // panel 1: active over time
  const tMax = Math.max(1, ...r.timeline.map((s) => s.t));
  const x1 = (t: number) => pad.l + (t / tMax) * (pw - pad.l);
  const y1 = (n: number) => H - pad.b - (n / Math.max(1, r.nodes)) * (H - pad.t - pad.b);
  out.push(`<line x1="${pad.l}" y1="${H - pad.b}" x2="${pw}" y2="${H - pad.b}" stroke="#333"/><line x1="${pad.l}" y1="${pad.t}" x2="${pad.l}" y2="${H - pad.b}" stroke="#333"/>`);
  for (let i = 0; i <= 4; i++) {
    const n = Math.round((r.nodes * i) / 4);
    const t = (tMax * i) / 4;
    out.push(`<text x="${pad.l - 4}" y="${y1(n) + 4}" text-anchor="end">${n}</text><line x1="${pad.l}" y1="${y1(n)}" x2="${pw}" y2="${y1(n)}" stroke="#eee"/>`);
    out.push(`<text x="${x1(t)}" y="${H - pad.b + 14}" text-anchor="middle">${t.toFixed(tMax >= 20 ? 0 : 1)}</text>`);
  }
  out.push(`<text x="${(pad.l + pw) / 2}" y="${H - 12}" text-anchor="middle">seconds since the first power-on</text>`);
  out.push(`<text x="14" y="${(H - pad.b + pad.t) / 2}" transform="rotate(-90 14 ${(H - pad.b + pad.t) / 2})" text-anchor="middle">nodes</text>`);
  const line = (key: 'active' | 'booting', color: string) => out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${r.timeline.map((s) => `${x1(s.t).toFixed(1)},${y1(s[key]).toFixed(1)}`).join(' ')}"/>`);
  line('booting', '#e69f00');
  line('active', '#0072b2');
  out.push(`<text x="${pad.l + 8}" y="${pad.t - 10}" fill="#0072b2">— active</text><text x="${pad.l + 70}" y="${pad.t - 10}" fill="#e69f00">— not yet installed (incl. waiting for power-on)</text>`);
  // panel 2: phase p50 / p99 bars
  const ox = pw + 70;
  const ow = W - pad.r - ox;
  const ph = TIMED_PHASES.filter((p) => r.phases[p]?.n);
  const vMax = Math.max(0.001, ...ph.map((p) => r.phases[p]!.p99));
  const bw = ow / Math.max(1, ph.length);
  const y2 = (v: number) => H - pad.b - (v / vMax) * (H - pad.t - pad.b);
  out.push(`<line x1="${ox}" y1="${H - pad.b}" x2="${ox + ow}" y2="${H - pad.b}" stroke="#333"/><line x1="${ox}" y1="${pad.t}" x2="${ox}" y2="${H - pad.b}" stroke="#333"/>`);
  for (let i = 0; i <= 4; i++) {
    const v = (vMax * i) / 4;
    out.push(`<text x="${ox - 4}" y="${y2(v) + 4}" text-anchor="end">${v.toFixed(v >= 10 ? 0 : 1)}</text><line x1="${ox}" y1="${y2(v)}" x2="${ox + ow}" y2="${y2(v)}" stroke="#eee"/>`);
  }
  out.push(`<text x="${ox - 40}" y="${(H - pad.b + pad.t) / 2}" transform="rotate(-90 ${ox - 40} ${(H - pad.b + pad.t) / 2})" text-anchor="middle">seconds in phase</text>`);
  ph.forEach((p, i) => {
    const s = r.phases[p]!;
    const x = ox + i * bw + bw * 0.15;
    const w = bw * 0.35;
    out.push(`<rect x="${x.toFixed(1)}" y="${y2(s.p50).toFixed(1)}" width="${w.toFixed(1)}" height="${(H - pad.b - y2(s.p50)).toFixed(1)}" fill="#0072b2"><title>${esc(`${PHASE_LABELS[p] ?? p} p50 ${s.p50.toFixed(2)} s`)}</title></rect>`);
    out.push(`<rect x="${(x + w).toFixed(1)}" y="${y2(s.p99).toFixed(1)}" width="${w.toFixed(1)}" height="${(H - pad.b - y2(s.p99)).toFixed(1)}" fill="#d55e00"><title>${esc(`${PHASE_LABELS[p] ?? p} p99 ${s.p99.toFixed(2)} s`)}</title></rect>`);
    const lx = x + w;
    out.push(`<text x="${lx.toFixed(1)}" y="${H - pad.b + 10}" text-anchor="end" transform="rotate(-30 ${lx.toFixed(1)} ${H - pad.b + 10})" font-size="9">${esc(SHORT[p] ?? p)}</text>`);
  });
  out.push(`<text x="${ox + 8}" y="${pad.t - 10}" fill="#0072b2">■ p50</text><text x="${ox + 50}" y="${pad.t - 10}" fill="#d55e00">■ p99</text><text x="${ox + 92}" y="${pad.t - 10}">per phase, seconds</text>`);
  out.push('</svg>');
  return out.join('\n');
}
