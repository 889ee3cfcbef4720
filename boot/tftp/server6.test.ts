// TFTP over IPv6 with real clients on loopback (::1, no namespace needed): tftp-hpa 5.2 (`-6`), atftp 0.8 (the one
// that negotiates windowsize) and curl, each file compared by sha256. Then dual stack ['0.0.0.0', '::'] — one socket
// per family, IPv6-only (address.ts) — with IPv4 and IPv6 clients at once on one port.
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeRequest } from './codec.ts';
import { tftpConfigSchema } from './config.ts';
import { createFsOpener } from './fs-open.ts';
import { createTftpServer, type TftpServer } from './server.ts';
import { sh, sha256File } from '../../test/support/tftp/netlab.ts';

let dir: string;
let out: string;
const digests: Record<string, string> = {};
type Log = { level: string; obj: Record<string, unknown>; msg?: string };
const recorder = (logs: Log[]) => {
  const log = (level: string) => (obj: object, msg?: string) => void logs.push({ level, obj: obj as Record<string, unknown>, msg });
  return { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
};

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'bftftp6-root-'));
  out = await mkdtemp(path.join(os.tmpdir(), 'bftftp6-out-'));
  // exact6: a multiple of the IPv6 blksize cap (1448), so the transfer must end with an empty block (RFC 1350)
  for (const [name, size] of [['1m.bin', 1 << 20], ['4m.bin', 4 << 20], ['exact6.bin', 1448 * 64]] as const) {
    await writeFile(path.join(dir, name), randomBytes(size));
    digests[name] = await sha256File(path.join(dir, name));
  }
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  if (out) await rm(out, { recursive: true, force: true });
});

const hpa = (family: '-4' | '-6', host: string, port: number, remote: string, local: string) => sh('tftp', [family, '-m', 'binary', host, String(port), '-c', 'get', remote, local]);
const atftp = (host: string, port: number, remote: string, local: string, opts = ['blksize 1468', 'windowsize 16', 'tsize enable']) =>
  sh('atftp', ['--trace', ...opts.flatMap((o) => ['--option', o]), '--tftp-timeout', '1', '-g', '-r', remote, '-l', local, host, String(port)]);
/** the options the server granted, from atftp --trace ("received OACK <windowsize: 16, blksize: 1448, >") */
const oackOf = (r: { stdout: string; stderr: string }) => (r.stdout + r.stderr).split('\n').find((l) => l.includes('received OACK')) ?? '(no OACK)';

/**
 * Sends an RRQ from a connected socket and says what came back: 'refused' when the kernel answered with ICMP port
 * unreachable (nothing listens there), 'reply' for a TFTP packet.
 */
async function probe(host: string, port: number): Promise<'refused' | 'reply'> {
  const sock = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  try {
    return await new Promise((resolve, reject) => {
      sock.on('message', () => resolve('reply'));
      sock.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNREFUSED' ? resolve('refused') : reject(err)));
      sock.connect(port, host, () => sock.send(encodeRequest('rrq', 'no-such-file', 'octet')));
    });
  } finally {
    sock.close();
  }
}

describe('an IPv6 listener on ::1', () => {
  let server: TftpServer;
  let port: number;
  const logs: Log[] = [];
  beforeAll(async () => {
    server = createTftpServer({ address: '::1', port: 0, timeoutMs: 200, open: createFsOpener({ root: dir, ipxeDefaults: false }), logger: recorder(logs) });
    ({ port } = await server.start());
  });
  afterAll(() => server?.stop());

  it('tftp-hpa -6 fetches 1 MB (2,048 blocks of 512, no options) with the right sha256', async () => {
    const local = path.join(out, 'hpa6-1m');
    const r = await hpa('-6', '::1', port, '1m.bin', local);
    expect(r.stdout + r.stderr).toBe('');
    expect(await sha256File(local)).toBe(digests['1m.bin']);
  });

  it('atftp asks blksize 1468 and windowsize 16: the OACK grants windowsize 16 and blksize 1448 (IPv6 header: 20 bytes more)', async () => {
    const local = path.join(out, 'atftp6-4m');
    const r = await atftp('::1', port, '4m.bin', local);
    expect(oackOf(r)).toMatch(/windowsize: 16/);
    expect(oackOf(r)).toMatch(/blksize: 1448,/);
    expect(await sha256File(local)).toBe(digests['4m.bin']);
  });

  it('curl fetches tftp://[::1]:PORT/ with blksize and tsize', async () => {
    const local = path.join(out, 'curl6-4m');
    const r = await sh('curl', ['-sS', '--tftp-blksize', '1468', '-o', local, `tftp://[::1]:${port}/4m.bin`]);
    expect(r.stderr).toBe('');
    expect(await sha256File(local)).toBe(digests['4m.bin']);
  });

  it('a file that is an exact multiple of the IPv6 blksize ends with an empty block', async () => {
    const local = path.join(out, 'atftp6-exact');
    const r = await atftp('::1', port, 'exact6.bin', local);
    expect(oackOf(r)).toMatch(/blksize: 1448,/);
    expect(await sha256File(local)).toBe(digests['exact6.bin']);
  });

  it('a missing file is a TFTP error 1 at once, not a client timeout', async () => {
    const t0 = performance.now();
    const r = await hpa('-6', '::1', port, 'nope.bin', path.join(out, 'nope-hpa'));
    const ms = performance.now() - t0;
    expect(r.stdout + r.stderr).toMatch(/Error code 1: file not found/);
    // tftp-hpa's own timeout is 25 s; an answer is milliseconds even on a loaded machine
    expect(ms).toBeLessThan(5_000);
    const a = await atftp('::1', port, 'nope.bin', path.join(out, 'nope-atftp'), []);
    expect(a.stdout + a.stderr).toMatch(/file not found/i);
    expect(server.stats.refusedBy.not_found).toBeGreaterThanOrEqual(2);
  });

  it('logs the client as [::1]:port', () => {
    const notFound = logs.filter((l) => l.msg === 'tftp: file not found');
    expect(notFound.length).toBeGreaterThanOrEqual(1);
    expect(String(notFound[0]!.obj['peer'])).toMatch(/^\[::1\]:\d+$/);
  });
});

describe('dual stack from the config: address [0.0.0.0, ::]', () => {
  let server: TftpServer;
  let port: number;
  let listening: { address: string; family: number; port: number }[];
  const logs: Log[] = [];
  beforeAll(async () => {
    const config = tftpConfigSchema.parse({ address: ['0.0.0.0', '::'], port: 0, root: dir, ipxeDefaults: false });
    // as server/main.ts builds it
    server = createTftpServer({ ...config, timeoutMs: 200, open: createFsOpener(config), logger: recorder(logs) });
    ({ port, listening } = await server.start());
  });
  afterAll(() => server?.stop());

  it('binds one socket per family on one port (a dual-stack :: would have taken the IPv4 port: EADDRINUSE)', () => {
    expect(listening).toEqual([
      { address: '0.0.0.0', family: 4, port },
      { address: '::', family: 6, port },
    ]);
  });

  it('serves IPv4 and IPv6 clients at once, each file intact; IPv4 keeps blksize 1468', async () => {
    const jobs = [
      hpa('-4', '127.0.0.1', port, '1m.bin', path.join(out, 'ds-hpa4')),
      hpa('-6', '::1', port, '1m.bin', path.join(out, 'ds-hpa6')),
      atftp('127.0.0.1', port, '4m.bin', path.join(out, 'ds-atftp4')),
      atftp('::1', port, '4m.bin', path.join(out, 'ds-atftp6')),
    ];
    const [, , a4, a6] = await Promise.all(jobs);
    expect(oackOf(a4!)).toMatch(/blksize: 1468,/);
    expect(oackOf(a6!)).toMatch(/blksize: 1448,/);
    for (const [f, name] of [['ds-hpa4', '1m.bin'], ['ds-hpa6', '1m.bin'], ['ds-atftp4', '4m.bin'], ['ds-atftp6', '4m.bin']] as const) {
      expect(await sha256File(path.join(out, f)), f).toBe(digests[name]);
    }
    expect(server.stats.transfersCompleted).toBe(4);
    // each family's client is logged in its own form: no ::ffff:127.0.0.1 (the IPv6 socket never takes IPv4)
    const peers = logs.filter((l) => l.msg === 'tftp: transfer start').map((l) => String(l.obj['peer']));
    expect(peers.filter((p) => /^127\.0\.0\.1:\d+$/.test(p))).toHaveLength(2);
    expect(peers.filter((p) => /^\[::1\]:\d+$/.test(p))).toHaveLength(2);
  });

  it('stop() closes both sockets', async () => {
    await server.stop();
    expect(await probe('127.0.0.1', port)).toBe('refused');
    expect(await probe('::1', port)).toBe('refused');
  });
});

describe('an IPv6 wildcard', () => {
  it("'::' alone is IPv6-only whatever net.ipv6.bindv6only says: an IPv4 request to its port finds nothing listening", async () => {
    const server = createTftpServer({ address: '::', port: 0, open: async () => null });
    const { port } = await server.start();
    try {
      expect(await probe('::1', port)).toBe('reply');
      expect(await probe('127.0.0.1', port)).toBe('refused');
    } finally {
      await server.stop();
    }
  });
});

describe('start() is all or nothing', () => {
  it('when the IPv4 port is taken, the IPv6 socket it had bound is closed again and the error is the bind error', async () => {
    const squatter = dgram.createSocket('udp4');
    await new Promise<void>((r) => squatter.bind(0, '127.0.0.1', () => r()));
    const port = squatter.address().port;
    try {
      const server = createTftpServer({ address: ['::1', '127.0.0.1'], port, open: async () => null });
      await expect(server.start()).rejects.toMatchObject({ code: 'EADDRINUSE' });
      // the ::1 socket was released: the port can be bound there again
      const again = dgram.createSocket({ type: 'udp6', ipv6Only: true });
      await new Promise<void>((resolve, reject) => {
        again.once('error', reject);
        again.bind(port, '::1', () => resolve());
      });
      again.close();
    } finally {
      squatter.close();
    }
  });
});
