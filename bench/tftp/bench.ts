// `make bench-tftp`: throughput of bootfarm's TFTP server against tftpd-hpa and dnsmasq.
// The three servers run side by side in the server namespace of a netlab (server ns ─ veth ─
// client ns, clean link, MTU 1500), each cell round-robins over them; the same client (atftp, the only one here that speaks RFC 7440
// windowsize) fetches 1 MB and 30 MB files at blksize 1468, windowsize 1 and 16. Each cell is the
// median of REPS timed runs (client process start to exit, so it includes ~ms of spawn cost that
// weighs more on 1 MB). A storm cell runs STORM clients at once and reports aggregate MB/s.
// Every fetched file is checked against the source sha256.
// Bounded: fixed files, fixed repetitions, every child has a timeout; all namespaces are removed.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { decodePacket, encodeError, encodeRequest } from '../../boot/tftp/codec.ts';
import { createNetLab, sh, sha256File, type NetLab } from '../../test/support/tftp/netlab.ts';

const REPS = Number(process.env.BENCH_REPS ?? 5);
const FILES = [
  { name: '1m.bin', size: 1 << 20 },
  { name: '30m.bin', size: 30 << 20 },
];
const WINDOWS = [1, 16];
const BLKSIZE = 1468;
/** a boot storm in miniature: this many clients fetch at once; the figure is aggregate MB/s */
const STORM = 8;
const CELLS = [
  ...FILES.flatMap((f) => WINDOWS.map((window) => ({ key: `${f.name}/w${window}`, file: f.name, window, parallel: 1 }))),
  ...WINDOWS.map((window) => ({ key: `${STORM}×1m.bin/w${window}`, file: '1m.bin', window, parallel: STORM })),
];

interface Server {
  name: string;
  port: number;
  start(lab: NetLab, root: string): Promise<ChildProcess>;
}

function waitFor(child: ChildProcess, pattern: RegExp, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const t = setTimeout(() => reject(new Error(`server did not start: ${seen}`)), ms);
    const on = (d: Buffer) => {
      seen += d.toString();
      if (pattern.test(seen)) {
        clearTimeout(t);
        resolve();
      }
    };
    child.stdout?.on('data', on);
    child.stderr?.on('data', on);
    child.once('exit', (code) => reject(new Error(`server exited ${code}: ${seen}`)));
  });
}

const servers: Server[] = [
  {
    name: 'bootfarm',
    port: 6969,
    async start(lab, root) {
      const c = spawn('ip', ['netns', 'exec', lab.serverNs!, path.resolve('node_modules/.bin/tsx'), 'bench/tftp/serve.ts', lab.serverIp, '6969', root], { stdio: ['ignore', 'pipe', 'pipe'] });
      await waitFor(c, /ready/, 30_000);
      return c;
    },
  },
  {
    name: 'tftpd-hpa',
    port: 6970,
    async start(lab, root) {
      // -L foreground, -s chroot to root, -u root so it can read the temp dir as-is
      const c = spawn('ip', ['netns', 'exec', lab.serverNs!, 'in.tftpd', '-L', '-u', 'root', '-s', '-a', `${lab.serverIp}:6970`, root], { stdio: ['ignore', 'pipe', 'pipe'] });
      await new Promise((r) => setTimeout(r, 500)); // in.tftpd -L prints nothing when ready
      if (c.exitCode !== null) throw new Error('in.tftpd exited');
      return c;
    },
  },
  {
    name: 'dnsmasq',
    port: 69, // dnsmasq's TFTP listener is fixed at 69: fine, it is alone in the server netns
    async start(lab, root) {
      const c = spawn(
        'ip',
        ['netns', 'exec', lab.serverNs!, 'dnsmasq', '-k', '-C', '/dev/null', '--port=0', '--pid-file=', '--user=root', '--enable-tftp', `--tftp-root=${root}`, `--listen-address=${lab.serverIp}`, '--bind-interfaces', '--log-facility=-'],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      await waitFor(c, /TFTP root/, 10_000);
      return c;
    },
  },
];

/** What a server grants for blksize 1468 + windowsize 16 + tsize (raw probe, then an ERROR to stop). */
async function probeOack(lab: NetLab, port: number): Promise<string> {
  const script = `
const dgram = require('node:dgram');
const s = dgram.createSocket('udp4');
const req = Buffer.from(${JSON.stringify(encodeRequest('rrq', '1m.bin', 'octet', [['blksize', String(BLKSIZE)], ['windowsize', '16'], ['tsize', '0']]).toString('base64'))}, 'base64');
s.on('message', (m, r) => { process.stdout.write(m.toString('base64')); s.send(Buffer.from(${JSON.stringify(encodeError(0, 'probe done').toString('base64'))}, 'base64'), r.port, r.address, () => s.close()); });
s.send(req, ${port}, ${JSON.stringify(lab.serverIp)});
setTimeout(() => process.exit(1), 3000).unref();`;
  const r = await sh('ip', ['netns', 'exec', lab.ns, process.execPath, '-e', script], 10_000);
  const p = decodePacket(Buffer.from(r.stdout, 'base64'));
  if (p.op === 'oack') return [...p.options].map(([k, v]) => `${k}=${v}`).join(' ');
  return p.op === 'data' ? 'no OACK (options ignored)' : `?${p.op}`;
}

async function fetchOnce(lab: NetLab, port: number, file: string, window: number, dest: string): Promise<number> {
  const opts = ['--option', `blksize ${BLKSIZE}`, ...(window > 1 ? ['--option', `windowsize ${window}`] : [])];
  const t0 = process.hrtime.bigint();
  const r = await sh('ip', ['netns', 'exec', lab.ns, 'atftp', ...opts, '-g', '-r', file, '-l', dest, lab.serverIp, String(port)], 120_000);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.code !== 0) throw new Error(`atftp failed (${r.code}): ${r.stderr.slice(0, 300)}`);
  return secs;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const root = await mkdtemp('/tmp/bftftp-bench-');
  await chmod(root, 0o755);
  const outDir = await mkdtemp('/dev/shm/bftftp-bench-out-').catch(() => mkdtemp('/tmp/bftftp-bench-out-'));
  const digests: Record<string, string> = {};
  for (const f of FILES) {
    await writeFile(path.join(root, f.name), randomBytes(f.size));
    digests[f.name] = await sha256File(path.join(root, f.name));
  }
  const loadBefore = os.loadavg()[0]!.toFixed(1);
  // Direct veth by default: the shortest path, so forwarding does not cap the windowed cells.
  // BENCH_ROUTER=1 measures through the router netns the loss tests use.
  const direct = process.env.BENCH_ROUTER !== '1';
  const lab = await createNetLab('b', { serverNs: true, direct });
  const results: Record<string, Record<string, number>> = {}; // server → "file/wN" → MB/s (median)
  const bests: Record<string, Record<string, number>> = {}; // same, from the fastest run
  const grants: Record<string, string> = {};
  const only = process.env.BENCH_SERVERS?.split(','); // e.g. BENCH_SERVERS=bootfarm while tuning
  const active = servers.filter((x) => !only || only.includes(x.name));
  const children: ChildProcess[] = [];
  try {
    // All servers run side by side and every cell round-robins over them, so load from anything
    // else on this shared machine hits each server alike instead of whichever ran during a spike.
    for (const srv of active) {
      children.push(await srv.start(lab, root));
      grants[srv.name] = await probeOack(lab, srv.port);
      results[srv.name] = {};
      bests[srv.name] = {};
    }
    // Warm-up, not timed: JIT-compiles our hot path (a boot server runs for months, so warm is
    // the representative state) and puts the files in the page cache for every server alike.
    for (const srv of active) for (const f of FILES) await fetchOnce(lab, srv.port, f.name, 16, path.join(outDir, 'warmup'));
    for (const cell of CELLS) {
      const f = FILES.find((x) => x.name === cell.file)!;
      const times: Record<string, number[]> = Object.fromEntries(active.map((x) => [x.name, []]));
      for (let i = 0; i < REPS; i++) {
        for (const srv of active) {
          const dests = Array.from({ length: cell.parallel }, (_, k) => path.join(outDir, `${srv.name}-${k}-${f.name}`));
          const t0 = process.hrtime.bigint();
          await Promise.all(dests.map((d) => fetchOnce(lab, srv.port, f.name, cell.window, d)));
          times[srv.name]!.push(Number(process.hrtime.bigint() - t0) / 1e9);
          for (const d of dests) {
            if ((await sha256File(d)) !== digests[f.name]) throw new Error(`${srv.name}: ${cell.key} arrived corrupted`);
            await rm(d, { force: true });
          }
        }
      }
      for (const srv of active) {
        const mb = (cell.parallel * f.size) / 2 ** 20;
        results[srv.name]![cell.key] = mb / median(times[srv.name]!);
        bests[srv.name]![cell.key] = mb / Math.min(...times[srv.name]!);
        process.stderr.write(`${srv.name.padEnd(10)} ${cell.key.padEnd(16)} ${results[srv.name]![cell.key]!.toFixed(1).padStart(6)} MB/s (runs: ${times[srv.name]!.map((t) => t.toFixed(3)).join(', ')} s)\n`);
      }
    }
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await lab.destroy();
    await rm(root, { recursive: true, force: true });
    await rm(outDir, { recursive: true, force: true });
  }

  if (only) return;
  const cells = CELLS.map((c) => c.key);
  const table = (title: string, r: Record<string, Record<string, number>>) => [
    title,
    '',
    `| server | ${cells.join(' | ')} |`,
    `|---|${cells.map(() => '---:').join('|')}|`,
    ...servers.map((s) => `| ${s.name} | ${cells.map((c) => r[s.name]![c]!.toFixed(1)).join(' | ')} |`),
    '',
    ...['tftpd-hpa', 'dnsmasq'].map((other) => `bootfarm / ${other}: ${cells.map((c) => `${c} ${(r.bootfarm![c]! / r[other]![c]!).toFixed(2)}×`).join(', ')}`),
    '',
  ];
  const target = (r: Record<string, Record<string, number>>) => {
    const w1 = r.bootfarm!['30m.bin/w1']! / r['tftpd-hpa']!['30m.bin/w1']!;
    const w16 = r.bootfarm!['30m.bin/w16']! / r['tftpd-hpa']!['30m.bin/w16']!;
    return `window 1 ≥ 1× tftpd-hpa: ${w1.toFixed(2)}× ${w1 >= 1 ? 'MET' : 'MISSED'}; window 16 ≥ 2× tftpd-hpa: ${w16.toFixed(2)}× ${w16 >= 2 ? 'MET' : 'MISSED'}`;
  };
  const lines = [
    `TFTP throughput in MB/s — atftp client, blksize ${BLKSIZE}, ${REPS} runs per cell with the servers interleaved, clean ${direct ? 'direct veth' : 'veth via a router netns'};`,
    `load average before/after: ${loadBefore} / ${os.loadavg()[0]!.toFixed(1)} on ${os.cpus().length} cores`,
    '',
    ...table('Median run:', results),
    ...table('Fastest run (least disturbed by other load on the machine):', bests),
    `What each server grants for blksize ${BLKSIZE} windowsize 16 tsize 0:`,
    ...servers.map((s) => `- ${s.name}: ${grants[s.name]}`),
    '',
    `targets (30 MB, median): ${target(results)}`,
    `targets (30 MB, fastest): ${target(bests)}`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`bench-tftp failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
