// The storm simulator end to end, small, so it cannot rot (issue 15 item 1): bench/storm/run.ts with 20 nodes on
// PGlite and the local image store — real server process, real DHCP/TFTP/HTTP over a veth between two network
// namespaces — with images a hundredth of the real size. Asserts the report, not the speed.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { requireCommand } from '../../harness/require.ts';
import { TIMED_PHASES, type StormReport } from '../../../bench/storm/report.ts';

const run = promisify(execFile);
const repoRoot = resolve(import.meta.dirname, '../../..');
const out = mkdtempSync(join(tmpdir(), 'bfstorm-test-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('the storm simulator (make storm)', () => {
  it('boots 20 nodes from their PXE ROMs to active and reports every phase, the bytes and the byte bound', async () => {
    requireCommand('ip', 'iproute2');
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'bench/storm/run.ts', '--nodes', '20', '--concurrency', '10', '--images', 'synthetic', '--image-scale', '0.01', '--out', out, '--quiet'], { cwd: repoRoot, timeout: 170_000, maxBuffer: 1 << 24 });
    expect(stdout).toMatch(/active 20\/20, failed 0/);
    const r = JSON.parse(readFileSync(join(out, 'storm-pglite-local-20.json'), 'utf8')) as StormReport;
    expect(r.active).toBe(20);
    expect(r.failed).toBe(0);
    expect(r.failuresByPhase).toEqual({});
    expect(r.timeToAllActiveS).toBeGreaterThan(0);
    for (const p of TIMED_PHASES) expect(r.phases[p]!.n, p).toBe(20);
    // every node fetched its iPXE binary by TFTP (undionly.kpxe or snponly.efi) and both images of both kinds
    expect(r.bytes.tftp).toBeGreaterThan(20 * 60_000);
    expect(r.bytes.http).toBeGreaterThan(20 * 1_400_000);
    expect(r.bound.bytes).toBeGreaterThan(r.bytes.http);
    expect(r.ratio).toBeGreaterThan(0);
    expect(r.server.rssPeakMiB).toBeGreaterThan(0);
    expect(r.heartbeats).toBeGreaterThanOrEqual(20);
    // every fourth node is EFI and fetches snponly.efi as OVMF does (windowsize 4); the others lockstep
    expect(r.tftpByClient['ovmf']).toMatchObject({ n: 5, windowsize: 4 });
    expect(r.tftpByClient['pxe-rom']).toMatchObject({ n: 15, windowsize: 1 });
    expect(r.simLoopDelayMs?.p50).toBeGreaterThan(0);
    expect(readFileSync(join(out, 'storm-pglite-local-20.svg'), 'utf8')).toMatch(/^<svg[\s\S]*<polyline[\s\S]*<\/svg>$/);
  }, 180_000);
});
