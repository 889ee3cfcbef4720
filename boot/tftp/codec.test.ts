import dgram from 'node:dgram';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodePacket, encodeAck, encodeError, encodeOack, encodeRequest, ErrorCode } from './codec.ts';
import { negotiateOptions, normalisePath } from './negotiate.ts';
import { createTftpServer, type TftpServer } from './server.ts';
// real sockets: wait for the packet the test needs, never for a fixed window
import { until } from '../../test/harness/wait.ts';

const rrq = (...fields: string[]) => Buffer.concat([Buffer.from([0, 1]), Buffer.from(fields.map((f) => `${f}\0`).join(''), 'latin1')]);

describe('decodePacket', () => {
  const cases: [string, Buffer, unknown][] = [
    ['read request with options, names lower-cased', rrq('undionly.kpxe', 'OCTET', 'BLKSIZE', '1468', 'tsize', '0'), { op: 'rrq', filename: 'undionly.kpxe', mode: 'octet', options: new Map([['blksize', '1468'], ['tsize', '0']]) }],
    ['a dangling option name is ignored', rrq('a', 'octet', 'blksize'), { op: 'rrq', filename: 'a', mode: 'octet', options: new Map() }],
    ['write request', Buffer.from('\0\x02f\0octet\0', 'latin1'), { op: 'wrq', filename: 'f', mode: 'octet', options: new Map() }],
    ['ack', encodeAck(65535), { op: 'ack', block: 65535 }],
    ['error without trailing NUL still decodes', Buffer.from('\0\x05\0\x01oops', 'latin1'), { op: 'error', code: 1, message: 'oops' }],
    ['mode missing its NUL', Buffer.from('\0\x01file\0octet', 'latin1'), { op: 'invalid', reason: 'request field not NUL-terminated' }],
    ['filename only', Buffer.from('\0\x01file\0', 'latin1'), { op: 'invalid', reason: 'request lacks filename or mode' }],
    ['empty filename', Buffer.from('\0\x01\0octet\0', 'latin1'), { op: 'invalid', reason: 'empty filename' }],
    ['one byte', Buffer.from([1]), { op: 'invalid', reason: 'shorter than an opcode' }],
    ['truncated ack', Buffer.from([0, 4, 1]), { op: 'invalid', reason: 'ACK shorter than 4 bytes' }],
    ['unknown opcode', Buffer.from([0, 9, 0, 0]), { op: 'invalid', reason: 'unknown opcode 9' }],
    ['oversized request', Buffer.concat([Buffer.from([0, 1]), Buffer.alloc(2000, 0x41), Buffer.from([0])]), { op: 'invalid', reason: 'request too long' }],
  ];
  it.each(cases)('%s', (_name, bytes, expected) => {
    expect(decodePacket(bytes)).toEqual(expected);
  });

  it('round-trips what it encodes', () => {
    expect(decodePacket(encodeOack([['blksize', '1468'], ['windowsize', '16']]))).toEqual({ op: 'oack', options: new Map([['blksize', '1468'], ['windowsize', '16']]) });
    expect(decodePacket(encodeError(ErrorCode.AccessViolation, 'no'))).toEqual({ op: 'error', code: 2, message: 'no' });
    expect(decodePacket(encodeRequest('rrq', 'a/b', 'octet', [['windowsize', '4']]))).toMatchObject({ op: 'rrq', filename: 'a/b', options: new Map([['windowsize', '4']]) });
  });

  it('never throws on arbitrary bytes, truncations or corrupted valid packets (fast-check)', () => {
    const valid = fc.constantFrom(rrq('undionly.kpxe', 'octet', 'blksize', '1468', 'tsize', '0', 'windowsize', '16'), encodeAck(7), encodeError(1, 'x'), encodeOack([['tsize', '9']]));
    const mutated = fc.tuple(valid, fc.nat(), fc.integer({ min: 0, max: 255 }), fc.nat()).map(([b, cut, byte, at]) => {
      const c = Buffer.from(b.subarray(0, cut % (b.length + 1)));
      if (c.length > 0) c[at % c.length] = byte; // flip one byte, often a NUL or an opcode
      return c;
    });
    const noNul = fc.uint8Array({ maxLength: 600 }).map((a) => Buffer.from(a.map((x) => x || 1)));
    const any = fc.oneof(fc.uint8Array({ maxLength: 1500 }).map((a) => Buffer.from(a)), mutated, noNul.map((b) => Buffer.concat([Buffer.from([0, 1]), b])));
    fc.assert(
      fc.property(any, (buf) => {
        const p = decodePacket(buf);
        expect(typeof p.op).toBe('string');
      }),
      { numRuns: 5000 },
    );
  });
});

describe('normalisePath', () => {
  const cases: [string, string, ReturnType<typeof normalisePath>][] = [
    ['plain name', 'undionly.kpxe', { ok: true, path: 'undionly.kpxe' }],
    ['dot and doubled slashes collapse', './ipxe//x.efi', { ok: true, path: 'ipxe/x.efi' }],
    ['backslashes are separators', 'efi\\snp.efi', { ok: true, path: 'efi/snp.efi' }],
    ['parent segment', '../etc/passwd', { ok: false, reason: 'parent-directory segment' }],
    ['parent segment mid-path', 'a/../../etc/passwd', { ok: false, reason: 'parent-directory segment' }],
    ['parent segment with backslashes', '..\\..\\etc\\passwd', { ok: false, reason: 'parent-directory segment' }],
    // GRUB sends /grub/grub.cfg: a leading slash is the served root (tftpd-hpa -s), never the host's /
    ['leading slash is the root', '/etc/passwd', { ok: true, path: 'etc/passwd' }],
    ['leading slash, GRUB style', '/grub/grub.cfg', { ok: true, path: 'grub/grub.cfg' }],
    ['leading slash then parent', '/../etc/passwd', { ok: false, reason: 'parent-directory segment' }],
    ['drive letter', 'C:\\boot.ini', { ok: false, reason: 'drive-letter path' }],
    ['NUL byte', 'a\0b', { ok: false, reason: 'NUL byte in path' }],
    ['only dots', './.', { ok: false, reason: 'empty path' }],
  ];
  it.each(cases)('%s', (_n, raw, expected) => expect(normalisePath(raw)).toEqual(expected));

  it('never yields a path that escapes (fast-check)', () => {
    const seg = fc.constantFrom('..', '.', '', 'a', 'b.efi', '\\', '/', ':', 'C:', '\0');
    fc.assert(
      fc.property(fc.array(seg, { maxLength: 8 }), (segs) => {
        const d = normalisePath(segs.join('/'));
        if (d.ok) {
          expect(d.path.split('/')).not.toContain('..');
          expect(d.path.startsWith('/')).toBe(false);
          expect(d.path).not.toContain('\0');
        }
      }),
    );
  });
});

describe('negotiateOptions', () => {
  const limits = { maxBlksize: 1468, maxWindow: 64 };
  it('grants, clamps and echoes in the client order (RFC 2347/2348/2349/7440)', () => {
    const n = negotiateOptions(new Map([['tsize', '0'], ['blksize', '65464'], ['windowsize', '100'], ['timeout', '3']]), 1234, limits);
    expect(n).toEqual({ blksize: 1468, windowsize: 64, timeoutMs: 3000, oack: [['tsize', '1234'], ['blksize', '1468'], ['windowsize', '64'], ['timeout', '3']] });
  });
  it('leaves out-of-range and unknown options out of the OACK', () => {
    const n = negotiateOptions(new Map([['blksize', '7'], ['timeout', '0'], ['windowsize', '0x10'], ['multicast', '']]), 1, limits);
    expect(n).toEqual({ blksize: 512, windowsize: 1, timeoutMs: undefined, oack: [] });
  });
});

/** done when the transfer's last DATA (shorter than blksize, RFC 1350 §6) has arrived */
const lastBlock = (blksize: number) => (got: Buffer[]) =>
  got.some((m) => {
    const p = decodePacket(m);
    return p.op === 'data' && p.data.length < blksize;
  });

describe('server under garbage', () => {
  let server: TftpServer;
  let port: number;
  const file = Buffer.alloc(3000, 7);
  const warnings: object[] = [];
  beforeAll(async () => {
    server = createTftpServer({
      address: '127.0.0.1',
      port: 0,
      // transfers the garbage starts are never ACKed; they end at stop(). A short timeout would also end a real
      // transfer whose ACKs a loaded machine delays, so keep the default-sized one.
      timeoutMs: 1000,
      retries: 2,
      logger: { debug() {}, info() {}, warn: (o) => warnings.push(o), error: (o) => warnings.push(o) },
      // In-memory opener: this suite is about packet handling, not files.
      open: async (p) => (p === 'f' ? { size: file.length, stream: Readable.from([file]) } : null),
    });
    ({ port } = await server.start());
  });
  afterAll(() => server.stop());

  /** send a packet from a fresh socket and collect replies until `done` (default: the first reply) */
  async function exchange(pkt: Buffer, done: (got: Buffer[]) => boolean = (got) => got.length > 0): Promise<Buffer[]> {
    const s = dgram.createSocket('udp4');
    const got: Buffer[] = [];
    s.on('message', (m, from) => {
      got.push(m);
      const p = decodePacket(m);
      if (p.op === 'data') s.send(encodeAck(p.block), from.port, from.address);
      if (p.op === 'oack') s.send(encodeAck(0), from.port, from.address); // RFC 2347
    });
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    s.send(pkt, port, '127.0.0.1');
    try {
      await until(`the reply to ${JSON.stringify(pkt.toString('latin1'))}`, () => done(got));
    } finally {
      s.close();
    }
    return got;
  }

  it('answers refused requests with the right error packet', async () => {
    expect(decodePacket((await exchange(encodeRequest('wrq', 'f', 'octet')))[0]!)).toMatchObject({ op: 'error', code: ErrorCode.AccessViolation });
    expect(decodePacket((await exchange(rrq('../etc/passwd', 'octet')))[0]!)).toMatchObject({ op: 'error', code: ErrorCode.AccessViolation });
    // NUL inside the name ends the filename early, so the "mode" is garbage: refused, not served
    expect(decodePacket((await exchange(Buffer.from('\0\x01f\0../x\0octet\0', 'latin1')))[0]!)).toMatchObject({ op: 'error', code: ErrorCode.IllegalOperation });
    expect(decodePacket((await exchange(rrq('missing', 'octet')))[0]!)).toMatchObject({ op: 'error', code: ErrorCode.FileNotFound });
    expect(decodePacket((await exchange(rrq('f', 'netascii')))[0]!)).toMatchObject({ op: 'error', code: ErrorCode.IllegalOperation });
    expect(warnings.some((w) => 'peer' in w && String((w as { file?: string }).file).includes('/etc/passwd'))).toBe(true);
  });

  it('answers tsize 0 with the file size in the OACK (RFC 2349) and clamps blksize (RFC 2348)', async () => {
    const replies = await exchange(rrq('f', 'octet', 'tsize', '0', 'blksize', '9000', 'windowsize', '8'), lastBlock(1468));
    expect(decodePacket(replies[0]!)).toEqual({ op: 'oack', options: new Map([['tsize', '3000'], ['blksize', '1468'], ['windowsize', '8']]) });
  });

  it('survives 3000 random and mutated datagrams, then still serves a file', async () => {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    s.on('message', () => {}); // error replies are fine; we only care the server lives
    const samples = fc.sample(fc.oneof(fc.uint8Array({ maxLength: 700 }), fc.uint8Array({ minLength: 2, maxLength: 40 }).map((a) => Uint8Array.from([0, 1 + (a[0]! % 6), ...a]))), { numRuns: 3000, seed: 42 });
    for (let i = 0; i < samples.length; i += 100) {
      for (const a of samples.slice(i, i + 100)) s.send(a, port, '127.0.0.1');
      // the server reads its one request socket in order: once it answers a request sent after the batch, it has
      // handled the batch (and the socket buffer is drained before the next one)
      await exchange(rrq('missing', 'octet'));
    }
    s.close();
    const before = server.stats.malformedPackets;
    expect(before).toBeGreaterThan(100);
    const replies = await exchange(rrq('f', 'octet', 'blksize', '1468'), lastBlock(1468));
    const data = replies.map(decodePacket).filter((p) => p.op === 'data');
    expect(Buffer.concat(data.map((p) => (p.op === 'data' ? p.data : Buffer.alloc(0))))).toEqual(file);
  });
});

describe('server lifecycle', () => {
  it('ignores a retransmitted RRQ from the same peer, and stop() ends transfers in progress with an error packet', async () => {
    // The client below never ACKs, so the transfer stays in progress until stop().
    const server = createTftpServer({
      address: '127.0.0.1',
      port: 0,
      open: async () => ({ size: 10_000, stream: new Readable({ read() { this.push(Buffer.alloc(600)); this.pause(); } }) }),
    });
    const { port } = await server.start();
    const s = dgram.createSocket('udp4');
    const got: ReturnType<typeof decodePacket>[] = [];
    s.on('message', (m) => got.push(decodePacket(m)));
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    const req = rrq('stall', 'octet');
    s.send(req, port, '127.0.0.1');
    s.send(req, port, '127.0.0.1'); // the client "retransmits" before our first DATA arrives
    // the request socket is read in order: when a refused WRQ sent after both RRQs is answered, both were handled
    const probe = dgram.createSocket('udp4');
    const refused: Buffer[] = [];
    probe.on('message', (m) => refused.push(m));
    await new Promise<void>((r) => probe.bind(0, '127.0.0.1', () => r()));
    probe.send(encodeRequest('wrq', 'x', 'octet'), port, '127.0.0.1');
    await until('the refusal of the probe WRQ', () => refused.length > 0);
    probe.close();
    await until('the first DATA', () => got.length > 0);
    expect(server.stats.transfersStarted).toBe(1);
    expect(server.stats.activeTransfers).toBe(1);
    expect(got[0]).toMatchObject({ op: 'data', block: 1 });
    await server.stop();
    await until('the shutdown ERROR packet', () => got.at(-1)?.op === 'error');
    s.close();
    expect(got.at(-1)).toEqual({ op: 'error', code: ErrorCode.NotDefined, message: 'server shutting down' });
    expect(server.stats.activeTransfers).toBe(0);
  });
});
