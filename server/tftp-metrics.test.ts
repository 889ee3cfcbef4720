// TFTP metrics (issue 17 item 6): a real transfer (tftp-hpa over loopback), a missing file and a client that
// never acknowledges move the /metrics counters by exactly what happened, and the duration histogram sees both ends.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createFsOpener, createTftpServer, type TftpServer } from '../boot/tftp/index.ts';
import { requireCommand } from '../test/harness/require.ts';
import { until } from '../test/harness/wait.ts';
import { createTftpDuration, registerTftpMetrics } from './tftp-metrics.ts';
import { sample } from '../test/support/metrics.ts';

const run = promisify(execFile);
const SIZE = 100_000;
let dir: string;
const servers: TftpServer[] = [];

/** a TFTP server over the test directory on loopback, its metrics on a registry of its own */
async function serve(timing: { timeoutMs?: number; retries?: number } = {}) {
  const registry = new Registry();
  const server = createTftpServer({ address: '127.0.0.1', port: 0, ...timing, open: createFsOpener({ root: dir, ipxeDefaults: false }), onTransferDone: createTftpDuration(registry) });
  registerTftpMetrics(registry, server);
  servers.push(server);
  const { port } = await server.start();
  return { server, port, registry };
}

/** an RRQ (RFC 1350 §5) with no options: a plain lockstep transfer that starts with DATA 1 */
const rrq = (file: string) => Buffer.concat([Buffer.from([0, 1]), Buffer.from(`${file}\0octet\0`)]);

beforeAll(async () => {
  requireCommand('tftp', 'tftp-hpa');
  dir = await mkdtemp(path.join(os.tmpdir(), 'bf-tftp-metrics-'));
  await writeFile(path.join(dir, 'kernel.bin'), randomBytes(SIZE));
});
afterAll(async () => {
  for (const s of servers) await s.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

it('a completed transfer and a missing file are counted, timed and sized', async () => {
  // default timeouts (1 s, 6 retries): a loaded machine does not fail tftp-hpa's transfer
  const { server, port, registry } = await serve();
  // tftp-hpa fetches the file (blksize 512, lockstep)
  const local = path.join(dir, 'got.bin');
  await run('tftp', ['-m', 'binary', '127.0.0.1', String(port), '-c', 'get', 'kernel.bin', local], { timeout: 120_000 });
  const sha = async (f: string) => createHash('sha256').update(await readFile(f)).digest('hex');
  expect(await sha(local)).toBe(await sha(path.join(dir, 'kernel.bin')));
  await until('the transfer to be recorded', () => server.stats.transfersCompleted === 1);

  // a missing file: ERROR 1 back, no transfer
  const got = await exchange(port, 'missing.bin', (ms) => ms.some((m) => m.readUInt16BE(0) === 5 && m.readUInt16BE(2) === 1));
  expect(got[0]!.readUInt16BE(0)).toBe(5);

  const text = await registry.metrics();
  expect(sample(text, 'bootfarm_tftp_transfers_started_total')).toBe(1);
  expect(sample(text, 'bootfarm_tftp_transfers_completed_total')).toBe(1);
  expect(sample(text, 'bootfarm_tftp_transfers_failed_total', { cause: 'timeout' })).toBe(0);
  expect(sample(text, 'bootfarm_tftp_requests_refused_total', { cause: 'not_found' })).toBe(1);
  expect(sample(text, 'bootfarm_tftp_requests_refused_total', { cause: 'busy' })).toBe(0);
  expect(sample(text, 'bootfarm_tftp_sent_bytes_total')).toBe(SIZE);
  expect(sample(text, 'bootfarm_tftp_transfer_duration_seconds_count', { outcome: 'completed' })).toBe(1);
  expect(sample(text, 'bootfarm_tftp_transfer_duration_seconds_count', { outcome: 'failed' })).toBe(0);
  expect(sample(text, 'bootfarm_tftp_active_transfers')).toBe(0);
});

it('a client that never acknowledges: timeouts, one retransmission, a failure by timeout', async () => {
  // short timeouts: the transfer fails in about 100 ms, not in seconds
  const { server, port, registry } = await serve({ timeoutMs: 30, retries: 2 });
  const got = await exchange(port, 'kernel.bin', () => server.stats.transfersFailed === 1);
  const data1 = got.filter((m) => m.readUInt16BE(0) === 3 && m.readUInt16BE(2) === 1).length;
  // retries 2: the first timeout resends DATA 1, the second gives up
  expect(data1).toBe(2);
  const text = await registry.metrics();
  expect(sample(text, 'bootfarm_tftp_transfers_started_total')).toBe(1);
  expect(sample(text, 'bootfarm_tftp_transfers_failed_total', { cause: 'timeout' })).toBe(1);
  expect(sample(text, 'bootfarm_tftp_transfers_failed_total', { cause: 'peer_error' })).toBe(0);
  expect(sample(text, 'bootfarm_tftp_timeouts_total')).toBe(2);
  expect(sample(text, 'bootfarm_tftp_retransmits_total')).toBe(1);
  // what the failed transfer had read ahead: two windows of 512-byte blocks at most
  const sent = sample(text, 'bootfarm_tftp_sent_bytes_total')!;
  expect(sent).toBeGreaterThan(0);
  expect(sent).toBeLessThanOrEqual(2 * 512);
  expect(sample(text, 'bootfarm_tftp_transfer_duration_seconds_count', { outcome: 'failed' })).toBe(1);
  // it waited out both timeouts (30 ms, then 60 ms after the backoff doubled it)
  expect(sample(text, 'bootfarm_tftp_transfer_duration_seconds_sum', { outcome: 'failed' })).toBeGreaterThanOrEqual(0.09);
  expect(sample(text, 'bootfarm_tftp_active_transfers')).toBe(0);
});

/** send one RRQ from a fresh socket that never acknowledges anything; collect what comes back until `done` */
async function exchange(port: number, file: string, done: (got: Buffer[]) => boolean): Promise<Buffer[]> {
  const client = dgram.createSocket('udp4');
  const got: Buffer[] = [];
  client.on('message', (m) => got.push(m));
  await new Promise<void>((r) => client.bind({ address: '127.0.0.1', port: 0 }, () => r()));
  try {
    client.send(rrq(file), port, '127.0.0.1');
    await until(`the answer to the RRQ for ${file}`, () => done(got));
  } finally {
    client.close();
  }
  return got;
}
