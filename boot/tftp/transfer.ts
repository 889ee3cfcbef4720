// One read transfer: the sending side of RFC 1350 with RFC 7440 windows. It knows nothing about
// sockets: it is handed `send` and fed the peer's packets, so the server file stays thin.
//
// Window discipline (RFC 7440 §4): send blocks acked+1 .. acked+windowsize, then wait. An ACK for
// block n means "everything up to n arrived", whether n closes the window or the client saw a gap,
// so we resend from n+1 — that one rule covers both. Window slots are 2 × windowsize buffers so
// the next window is read ahead while the current one is in flight, and each slot holds a
// ready-to-send DATA packet: a retransmission re-sends the same bytes, nothing is re-read or
// re-allocated.
import { ErrorCode, encodeError, writeDataHeader } from './codec.ts';
import type { SequentialReader } from './source.ts';

export interface TransferOptions {
  reader: SequentialReader;
  blksize: number;
  windowsize: number;
  /** OACK to send first (RFC 2347), or null for a plain RFC 1350 transfer starting at block 1 */
  oack: Buffer | null;
  send: (buf: Buffer, length: number) => void;
  timeoutMs: number;
  /** first retransmission delay while waiting for ACK 0 of an OACK (see constructor) */
  oackTimeoutMs?: number;
  /** timeouts in a row without progress before we give up */
  retries: number;
  onDone: (outcome: TransferOutcome) => void;
}

/** Why a transfer failed, as a small closed set (a metrics label); `reason` has the detail. */
export type FailureCause = 'timeout' | 'peer_error' | 'read_error' | 'source_stalled' | 'aborted';

export type TransferOutcome =
  | { ok: true; bytes: number; retransmits: number; timeouts: number }
  | { ok: false; reason: string; cause: FailureCause; bytes: number; retransmits: number; timeouts: number };

/** Backoff cap: doubling stops here so a long-lost client is dropped in bounded time. */
const MAX_TIMEOUT_MS = 10_000;
/** Longest we wait on the byte source with nothing in flight before failing the transfer. */
const SOURCE_STALL_MS = 60_000;

export class Transfer {
  private readonly slots: Buffer[];
  private readonly slotLen: Int32Array;
  private readonly nslots: number;
  /** block numbers are counted in 32 bits here; the wire carries the low 16 (rollover to 0) */
  private acked = 0;
  private filled = 0;
  private sent = 0;
  private maxSent = 0;
  private lastBlock = -1; // block number of the final (short) block once read
  private awaitingOackAck: boolean;
  private reading = false;
  private dupResent = false; // window > 1: resent once for the current `acked` after a dup ACK
  private timer: NodeJS.Timeout | null = null;
  private timerMs = 0;
  private timeoutMs: number;
  private triesLeft: number;
  private done = false;
  private stalledMs = 0;
  bytes = 0;
  retransmits = 0;
  /** retransmission timeouts that fired with blocks (or the OACK) in flight */
  timeouts = 0;

  constructor(private readonly o: TransferOptions) {
    this.nslots = 2 * o.windowsize;
    // One allocation for all slots; each slot is a DATA packet (4-byte header + payload).
    const pool = Buffer.allocUnsafe(this.nslots * (4 + o.blksize));
    this.slots = Array.from({ length: this.nslots }, (_, i) => pool.subarray(i * (4 + o.blksize), (i + 1) * (4 + o.blksize)));
    this.slotLen = new Int32Array(this.nslots);
    this.awaitingOackAck = o.oack !== null;
    // A lost ACK 0 and a lost OACK look the same to us, and some clients (atftp 0.8) abort on a
    // duplicate OACK instead of re-acknowledging it. Waiting longer than a client's own
    // retransmission timeout before resending the OACK lets such a client resend its ACK 0 first.
    // It costs a lost OACK one slower retry, once per transfer.
    this.timeoutMs = this.awaitingOackAck ? Math.max(o.timeoutMs, o.oackTimeoutMs ?? 0) : o.timeoutMs;
    this.triesLeft = o.retries;
  }

  start(): void {
    if (this.o.oack) {
      this.o.send(this.o.oack, this.o.oack.length);
      this.arm();
    }
    this.pump();
  }

  /** ACK from the peer (TID already checked by the caller). */
  onAck(wireBlock: number): void {
    if (this.done) return;
    if (this.awaitingOackAck) {
      // RFC 2347: the client acknowledges the OACK with ACK 0.
      if (wireBlock !== 0) return;
      this.awaitingOackAck = false;
      this.progress();
      this.pump();
      return;
    }
    const dist = (wireBlock - (this.acked & 0xffff)) & 0xffff;
    if (dist === 0) {
      // Duplicate ACK. With windowsize 1 it only means the client saw a retransmission: resending
      // would start the Sorcerer's Apprentice cascade (RFC 1123 §4.2.3.1).
      // With a window it is RFC 7440's "first block of the window was lost": resend once.
      if (this.o.windowsize > 1 && !this.dupResent && this.sent > this.acked) {
        this.dupResent = true;
        this.resendWindow();
      }
      return;
    }
    if (dist > this.sent - this.acked) return; // ACK for a block we never sent: stale or bogus
    this.acked += dist;
    this.dupResent = false;
    if (this.lastBlock >= 0 && this.acked >= this.lastBlock) return this.finish({ ok: true, bytes: this.bytes, retransmits: this.retransmits, timeouts: this.timeouts });
    this.progress();
    // Blocks acked+1..sent were sent but not acknowledged: the client saw a gap and dropped them.
    this.sent = this.acked;
    this.pump();
  }

  /** The peer sent an ERROR (e.g. it refused our OACK, RFC 2347): stop without answering. */
  onPeerError(code: number, message: string): void {
    this.finish({ ok: false, reason: `peer error ${code}: ${message}`, cause: 'peer_error', bytes: this.bytes, retransmits: this.retransmits, timeouts: this.timeouts });
  }

  abort(reason: string, cause: FailureCause = 'aborted'): void {
    if (this.done) return;
    this.sendError(ErrorCode.NotDefined, reason);
    this.finish({ ok: false, reason, cause, bytes: this.bytes, retransmits: this.retransmits, timeouts: this.timeouts });
  }

  private sendError(code: ErrorCode, msg: string): void {
    const pkt = encodeError(code, msg);
    this.o.send(pkt, pkt.length);
  }

  private progress(): void {
    this.stalledMs = 0;
    this.timeoutMs = this.o.timeoutMs;
    this.triesLeft = this.o.retries;
    this.arm();
  }

  /** Read ahead up to two windows and send whatever falls inside the current one. */
  private pump(): void {
    if (this.done) return;
    while (!this.awaitingOackAck && this.sent < this.filled && this.sent < this.acked + this.o.windowsize) {
      this.sendBlock(++this.sent);
    }
    if (this.reading) return;
    while (this.filled < this.acked + this.nslots && (this.lastBlock < 0 || this.filled < this.lastBlock)) {
      const block = this.filled + 1;
      const slot = this.slots[block % this.nslots]!;
      let r: number | Promise<number>;
      try {
        r = this.o.reader.readInto(slot, 4, this.o.blksize);
      } catch (err) {
        return this.abort(`read error: ${(err as Error).message}`, 'read_error');
      }
      if (typeof r !== 'number') {
        this.reading = true;
        r.then(
          (n) => {
            this.reading = false;
            if (this.done) return;
            this.blockFilled(block, slot, n);
            this.pump();
          },
          (err: Error) => {
            this.reading = false;
            this.abort(`read error: ${err.message}`, 'read_error');
          },
        );
        return;
      }
      this.blockFilled(block, slot, r);
      if (!this.awaitingOackAck && this.sent === block - 1 && block <= this.acked + this.o.windowsize) this.sendBlock(++this.sent);
    }
  }

  private blockFilled(block: number, slot: Buffer, n: number): void {
    writeDataHeader(slot, block);
    this.slotLen[block % this.nslots] = 4 + n;
    this.filled = block;
    this.bytes += n;
    // RFC 1350: a block shorter than blksize (possibly empty) ends the transfer.
    if (n < this.o.blksize) this.lastBlock = block;
  }

  private sendBlock(block: number): void {
    const i = block % this.nslots;
    if (block <= this.maxSent) this.retransmits++; // resent after a gap ACK (RFC 7440)
    else this.maxSent = block;
    this.o.send(this.slots[i]!, this.slotLen[i]!);
    if (this.timer === null) this.arm();
  }

  private resendWindow(): void {
    if (this.awaitingOackAck && this.o.oack) {
      this.o.send(this.o.oack, this.o.oack.length);
      this.retransmits++;
      return;
    }
    for (let b = this.acked + 1; b <= this.sent; b++) {
      const i = b % this.nslots;
      this.o.send(this.slots[i]!, this.slotLen[i]!);
      this.retransmits++;
    }
  }

  private arm(): void {
    // refresh() re-arms the same timer object: one allocation per transfer, not one per ACK.
    if (this.timer && this.timerMs === this.timeoutMs) {
      this.timer.refresh();
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timerMs = this.timeoutMs;
    this.timer = setTimeout(() => this.onTimeout(), this.timeoutMs);
  }

  private onTimeout(): void {
    this.timer = null;
    if (this.done) return;
    if (!this.awaitingOackAck && this.sent === this.acked) {
      // Nothing in flight: we are waiting on a slow source, not on the peer. Keep waiting, but
      // not forever: a source stalled this long will not feed a boot.
      this.stalledMs += this.timeoutMs;
      if (this.stalledMs > SOURCE_STALL_MS) return this.abort('source stalled', 'source_stalled');
      this.arm();
      return;
    }
    this.timeouts++;
    if (--this.triesLeft <= 0) {
      this.sendError(ErrorCode.NotDefined, 'timed out');
      return this.finish({ ok: false, reason: 'timed out', cause: 'timeout', bytes: this.bytes, retransmits: this.retransmits, timeouts: this.timeouts });
    }
    // Exponential backoff (RFC 1123 §4.2.3.2 asks TFTP for an adaptive timeout): a congested
    // boot storm backs off instead of doubling its own load.
    this.timeoutMs = Math.min(this.timeoutMs * 2, MAX_TIMEOUT_MS);
    this.resendWindow();
    this.arm();
  }

  private finish(outcome: TransferOutcome): void {
    if (this.done) return;
    this.done = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.o.reader.close();
    this.o.onDone(outcome);
  }
}
