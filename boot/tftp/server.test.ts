// Real clients (tftp-hpa, atftp, curl) against createTftpServer over a veth into a network
// namespace this suite creates. The server runs in-process in the root namespace on the veth's
// host end; clients run inside the namespace. Loss is injected at the client end of the veth.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFsOpener } from './fs-open.ts';
import { createTftpServer, type TftpServer } from './server.ts';
import { createNetLab, sh, sha256File, type NetLab } from '../../test/support/tftp/netlab.ts';
import { until } from '../../test/harness/wait.ts';

let lab: NetLab;
let dir: string;
let out: string;
let server: TftpServer;
let port: number;
const digests: Record<string, string> = {};
const logs: { level: string; obj: Record<string, unknown>; msg?: string }[] = [];
const log = (level: string) => (obj: object, msg?: string) => void logs.push({ level, obj: obj as Record<string, unknown>, msg });

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'bftftp-root-'));
  out = await mkdtemp(path.join(os.tmpdir(), 'bftftp-out-'));
  for (const [name, size] of [['1m.bin', 1 << 20], ['512k.bin', 1 << 19], ['30m.bin', 30 << 20], ['exact.bin', 1468 * 64]] as const) {
    const buf = randomBytes(size);
    await writeFile(path.join(dir, name), buf);
    digests[name] = await sha256File(path.join(dir, name));
  }
  // an operator's own iPXE build under a built-in name: the root's file must be what clients get
  await writeFile(path.join(dir, 'snponly.efi'), randomBytes(70_000));
  digests['snponly.efi'] = await sha256File(path.join(dir, 'snponly.efi'));
  // a random tag: two runs of this suite at once (make test + a manual run) must not collide
  lab = await createNetLab(`t${Math.random().toString(36).slice(2, 5)}`);
  server = createTftpServer({
    address: lab.serverIp,
    port: 0,
    // A short first timeout keeps the loss test to seconds; backoff still doubles it.
    timeoutMs: 50,
    retries: 8,
    open: createFsOpener({ root: dir }),
    logger: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') },
  });
  ({ port } = await server.start());
});

afterAll(async () => {
  await server?.stop();
  await lab?.destroy();
  if (dir) await rm(dir, { recursive: true, force: true });
  if (out) await rm(out, { recursive: true, force: true });
});

const inNs = (cmd: string, ...args: string[]) => sh('ip', ['netns', 'exec', lab.ns, cmd, ...args], 120_000);

/** tftp-hpa: plain RFC 1350 (it sends no options), blksize 512, lockstep. */
const hpaGet = (remote: string, local: string) => inNs('tftp', '-m', 'binary', lab.serverIp, String(port), '-c', 'get', remote, local);
/** curl: sends tsize and blksize (RFC 2348/2349); no windowsize. */
const curlGet = (remote: string, local: string, blksize = 1468) =>
  inNs('curl', '-sS', '--tftp-blksize', String(blksize), '-o', local, `tftp://${lab.serverIp}:${port}/${remote}`);
/** atftp: the one client here that negotiates windowsize (RFC 7440). */
const atftpGet = (remote: string, local: string, opts: string[] = ['blksize 1468', 'windowsize 16', 'tsize enable']) =>
  inNs('atftp', ...opts.flatMap((o) => ['--option', o]), '--tftp-timeout', '1', '-g', '-r', remote, '-l', local, lab.serverIp, String(port));

describe('real clients on a clean link', () => {
  it('tftp-hpa fetches 1 MB (blksize 512, no options) with the right sha256', async () => {
    const local = path.join(out, 'hpa-1m');
    await hpaGet('1m.bin', local);
    expect(await sha256File(local)).toBe(digests['1m.bin']);
  });

  it('curl fetches 30 MB with blksize 1468 and tsize', async () => {
    const local = path.join(out, 'curl-30m');
    const r = await curlGet('30m.bin', local);
    expect(r.stderr).toBe('');
    expect(await sha256File(local)).toBe(digests['30m.bin']);
  });

  it('atftp fetches 30 MB with blksize 1468 and windowsize 16 — and the OACK grants them', async () => {
    const local = path.join(out, 'atftp-30m');
    const r = await inNs('atftp', '--trace', '--option', 'blksize 1468', '--option', 'windowsize 16', '-g', '-r', '30m.bin', '-l', local, lab.serverIp, String(port));
    // atftp --trace prints the OACK it received (and every DATA/ACK after it)
    const oack = (r.stdout + r.stderr).split('\n').find((l) => l.includes('received OACK'));
    expect(oack).toMatch(/windowsize: 16/);
    expect(oack).toMatch(/blksize: 1468/);
    expect(await sha256File(local)).toBe(digests['30m.bin']);
  });

  it('a file that is an exact multiple of blksize ends with an empty block (RFC 1350)', async () => {
    const local = path.join(out, 'exact');
    await atftpGet('exact.bin', local);
    expect(await sha256File(local)).toBe(digests['exact.bin']);
  });

  it('serves the iPXE binaries from Debian by their usual names by default', async () => {
    const local = path.join(out, 'undionly.kpxe');
    await curlGet('undionly.kpxe', local);
    expect(await sha256File(local)).toBe(await sha256File('/usr/lib/ipxe/undionly.kpxe'));
  });

  it('a file in the TFTP root wins over the built-in iPXE binary of the same name', async () => {
    const local = path.join(out, 'snponly.efi');
    await curlGet('snponly.efi', local);
    expect(await sha256File(local)).toBe(digests['snponly.efi']);
    expect(digests['snponly.efi']).not.toBe(await sha256File('/usr/lib/ipxe/snponly.efi'));
  });

  it('runs ten transfers from three clients at once, each on its own port', async () => {
    const jobs = Array.from({ length: 10 }, (_, i) => {
      const local = path.join(out, `par-${i}`);
      const run = i % 3 === 0 ? hpaGet('1m.bin', local) : i % 3 === 1 ? curlGet('1m.bin', local) : atftpGet('1m.bin', local);
      return run.then(() => sha256File(local));
    });
    expect(await Promise.all(jobs)).toEqual(Array(10).fill(digests['1m.bin']));
  });
});

describe('refusals', () => {
  it('refuses path traversal with an access-violation error, logged at warn with the peer; a leading slash stays in the root', async () => {
    const r1 = await hpaGet('../../../../etc/passwd', path.join(out, 'x1'));
    const r3 = await hpaGet('..\\..\\etc\\passwd', path.join(out, 'x3'));
    for (const r of [r1, r3]) expect(r.stdout + r.stderr).toMatch(/Error code 2: access violation/i);
    // GRUB's style: /etc/passwd is <root>/etc/passwd (absent), not the host's file
    const r2 = await atftpGet('/etc/passwd', path.join(out, 'x2'), []);
    expect(r2.stdout + r2.stderr).toMatch(/not found/i);
    const refusals = logs.filter((l) => l.level === 'warn' && l.msg === 'tftp: path refused');
    expect(refusals.length).toBeGreaterThanOrEqual(2);
    expect(String(refusals[0]!.obj['peer'])).toContain(lab.clientIp);
  });

  it('answers a write request with an access-violation error and keeps serving', async () => {
    await writeFile(path.join(out, 'upload'), 'data');
    const r = await inNs('tftp', '-m', 'binary', lab.serverIp, String(port), '-c', 'put', path.join(out, 'upload'), 'upload');
    expect(r.stdout + r.stderr).toMatch(/Error code 2: read-only server/);
    const local = path.join(out, 'after-put');
    await curlGet('1m.bin', local);
    expect(await sha256File(local)).toBe(digests['1m.bin']);
  });
});

describe('3% packet loss in both directions', () => {
  it('every client completes with the right sha256 (lockstep, blksize 1468, windowsize 16)', async () => {
    const how = await lab.setLoss(0.03);
    expect(how).not.toBe('none');
    try {
      const before = server.stats.retransmits;
      const jobs = [
        // tftp-hpa is lockstep at blksize 512: each lost packet costs a server timeout, so a
        // smaller file keeps this test to seconds while still losing dozens of packets.
        hpaGet('512k.bin', path.join(out, 'loss-hpa')),
        curlGet('1m.bin', path.join(out, 'loss-curl')),
        atftpGet('1m.bin', path.join(out, 'loss-atftp')),
        atftpGet('1m.bin', path.join(out, 'loss-atftp4'), ['blksize 1468', 'windowsize 4']),
      ];
      await Promise.all(jobs);
      expect(await sha256File(path.join(out, 'loss-hpa'))).toBe(digests['512k.bin']);
      for (const f of ['loss-curl', 'loss-atftp', 'loss-atftp4']) expect(await sha256File(path.join(out, f)), f).toBe(digests['1m.bin']);
      // the loss was real: the server had to retransmit (counted when its timer fires, which may be after the
      // client is done: wait for it rather than for a fixed time)
      await until('a retransmit counted under loss', () => server.stats.retransmits > before);
    } finally {
      await lab.setLoss(0);
    }
  });
});
