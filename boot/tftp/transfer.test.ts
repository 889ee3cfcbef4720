// The Transfer state machine against a simulated RFC 7440 receiver in memory. No socket here on
// purpose: this checks the properties real clients cannot be steered into cheaply (block-number
// rollover past 65535, a seeded loss pattern, SAS avoidance). Real clients are in server.test.ts.
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { decodePacket, encodeOack } from './codec.ts';
import { createReader } from './source.ts';
import { Transfer, type TransferOutcome } from './transfer.ts';

/** Deterministic PRNG so a failing loss pattern can be replayed. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

async function run(opts: { data: Buffer; blksize: number; windowsize: number; loss: number; seed?: number; oack?: boolean; asStream?: boolean; timeoutMs?: number; retries?: number }) {
  const rnd = lcg(opts.seed ?? 1);
  const received: Buffer[] = [];
  let expected = 1; // next wire block the receiver wants (16-bit)
  let sinceAck = 0;
  let dataPackets = 0;
  let transfer!: Transfer;
  const lossy = (fn: () => void) => {
    if (rnd() >= opts.loss) setImmediate(fn);
  };
  const ack = (b: number) => lossy(() => transfer.onAck(b & 0xffff));
  const outcome = await new Promise<TransferOutcome>((resolve) => {
    transfer = new Transfer({
      reader: createReader(
        opts.asStream === false
          ? { size: opts.data.length, read: async (off, len) => opts.data.subarray(off, off + len) }
          : { size: opts.data.length, stream: Readable.from([opts.data.subarray(0, 1000), opts.data.subarray(1000)]) },
      ),
      blksize: opts.blksize,
      windowsize: opts.windowsize,
      oack: opts.oack ? encodeOack([['blksize', String(opts.blksize)]]) : null,
      timeoutMs: opts.timeoutMs ?? 5,
      retries: opts.retries ?? 10,
      onDone: resolve,
      send: (buf, len) => {
        const copy = Buffer.from(buf.subarray(0, len)); // the slot is reused: copy like the kernel would
        lossy(() => {
          const p = decodePacket(copy);
          if (p.op === 'oack') return ack(0);
          if (p.op !== 'data') return;
          dataPackets++;
          // RFC 7440 receiver: accept only the next block; ACK on a full window, a gap or the end
          if (p.block === (expected & 0xffff)) {
            received.push(Buffer.from(p.data));
            expected++;
            sinceAck++;
            if (sinceAck >= opts.windowsize || p.data.length < opts.blksize) {
              sinceAck = 0;
              ack(expected - 1);
            }
          } else {
            sinceAck = 0;
            ack(expected - 1);
          }
        });
      },
    });
    transfer.start();
  });
  return { outcome, data: Buffer.concat(received), dataPackets };
}

describe('Transfer', () => {
  const data = Buffer.from(Array.from({ length: 100_000 }, (_, i) => (i * 7) & 0xff));

  it('delivers every byte in lockstep without a single retransmission on a clean link', async () => {
    const r = await run({ data, blksize: 512, windowsize: 1, loss: 0, timeoutMs: 2000 });
    expect(r.outcome).toMatchObject({ ok: true, bytes: data.length, retransmits: 0 });
    expect(r.data.equals(data)).toBe(true);
    expect(r.dataPackets).toBe(Math.ceil(data.length / 512));
  });

  it.each([
    ['windowsize 1', 1, 1],
    ['windowsize 4', 4, 2],
    ['windowsize 16 with an OACK and a random-access source', 16, 3],
  ])('survives 10%% loss both ways: %s', async (_n, windowsize, seed) => {
    const r = await run({ data, blksize: 700, windowsize, loss: 0.1, seed, oack: windowsize === 16, asStream: windowsize !== 16 });
    expect(r.outcome.ok).toBe(true);
    expect(r.data.equals(data)).toBe(true);
    expect(r.outcome.retransmits).toBeGreaterThan(0);
  });

  it('rolls block numbers over past 65535 (70 000 blocks of 8 bytes, windowsize 64)', async () => {
    const big = Buffer.from(Array.from({ length: 70_000 * 8 + 3 }, (_, i) => (i * 13) & 0xff));
    const r = await run({ data: big, blksize: 8, windowsize: 64, loss: 0 });
    expect(r.outcome.ok).toBe(true);
    expect(r.data.equals(big)).toBe(true);
  });

  it('ends with an empty block when the size is a multiple of blksize, and gives up on a silent peer', async () => {
    const r = await run({ data: data.subarray(0, 512 * 4), blksize: 512, windowsize: 2, loss: 0, timeoutMs: 2000 });
    expect(r.dataPackets).toBe(5);
    const silent = await run({ data, blksize: 512, windowsize: 4, loss: 1, retries: 4 });
    expect(silent.outcome).toMatchObject({ ok: false, reason: 'timed out' });
  });
});
