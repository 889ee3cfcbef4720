// bootfarm's TFTP server: read-only RFC 1350 with option negotiation (RFC 2347), blksize
// (RFC 2348), tsize and timeout (RFC 2349) and windowsize (RFC 7440).
//
// Why our own code: the npm `tftp` package (0.1.2, 2015, unmaintained) works on a clean link but
// fails transfers at 3% packet loss and crashes with windowsize 4 (`cb is not a function`), and
// a boot storm is exactly when links drop packets. So the protocol lives here: the codec
// (codec.ts) and decisions (negotiate.ts) are pure, the transfer (transfer.ts) takes a `send`
// function, and this file is the thin socket layer. Files come from an injected
// `open(path)` (source.ts) so the image store can serve them as well as the filesystem.
import dgram from 'node:dgram';
import { ErrorCode, Opcode, decodePacket, encodeError, encodeOack } from './codec.ts';
import { negotiateOptions, normalisePath } from './negotiate.ts';
import { createReader, type OpenFn } from './source.ts';
import { Transfer, type FailureCause, type TransferOutcome } from './transfer.ts';

/** The subset of pino's API we use; a pino logger fits as-is. */
export interface TftpLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const silentLogger: TftpLogger = { debug() {}, info() {}, warn() {}, error() {} };

export interface TftpServerOptions {
  address?: string;
  port?: number;
  open: OpenFn;
  logger?: TftpLogger;
  maxBlksize?: number;
  maxWindow?: number;
  timeoutMs?: number;
  /** wait before resending an OACK (a lost ACK 0 is better recovered by the client: transfer.ts) */
  oackTimeoutMs?: number;
  retries?: number;
  maxTransfers?: number;
  /** told once per finished transfer: seconds from its first packet to its end (wire a histogram here) */
  onTransferDone?: (seconds: number, ok: boolean) => void;
}

/** Why a request got no transfer (a metrics label): refused with an error packet, or dropped (busy) */
export type RefusalCause = 'not_found' | 'write' | 'mode' | 'path' | 'open_error' | 'busy';

export interface TftpStats {
  activeTransfers: number;
  transfersStarted: number;
  transfersCompleted: number;
  transfersFailed: number;
  bytesSent: number;
  retransmits: number;
  requestsRefused: number;
  malformedPackets: number;
  /** retransmission timeouts (with data in flight) over every finished transfer */
  timeouts: number;
  /** transfersFailed by cause */
  failedBy: Record<FailureCause, number>;
  /** requests that got no transfer, by cause (busy: dropped silently at maxTransfers, so the client retries) */
  refusedBy: Record<RefusalCause, number>;
}

export interface TftpServer {
  /** Bind and serve; resolves with the bound address (port 0 picks a free port). */
  start(): Promise<{ address: string; port: number }>;
  /** Close the listening socket and abort every transfer in progress. */
  stop(): Promise<void>;
  readonly stats: Readonly<TftpStats>;
}

interface Active {
  transfer: Transfer | null; // null while open() is pending
  socket: dgram.Socket | null;
  aborted: boolean;
}

export function createTftpServer({
  address = '0.0.0.0',
  port = 69,
  open,
  logger = silentLogger,
  maxBlksize = 1468,
  maxWindow = 64,
  timeoutMs = 1000,
  oackTimeoutMs = 2000,
  retries = 6,
  maxTransfers = 1024,
  onTransferDone,
}: TftpServerOptions): TftpServer {
  const stats: TftpStats = {
    activeTransfers: 0,
    transfersStarted: 0,
    transfersCompleted: 0,
    transfersFailed: 0,
    bytesSent: 0,
    retransmits: 0,
    requestsRefused: 0,
    malformedPackets: 0,
    timeouts: 0,
    failedBy: { timeout: 0, peer_error: 0, read_error: 0, source_stalled: 0, aborted: 0 },
    refusedBy: { not_found: 0, write: 0, mode: 0, path: 0, open_error: 0, busy: 0 },
  };
  const active = new Map<string, Active>(); // key: peer "address:port" (the client's TID)
  let main: dgram.Socket | null = null;

  function reply(peer: dgram.RemoteInfo, code: ErrorCode, message: string): void {
    const pkt = encodeError(code, message);
    main?.send(pkt, peer.port, peer.address);
  }

  async function handleRequest(msg: Buffer, peer: dgram.RemoteInfo): Promise<void> {
    const pkt = decodePacket(msg);
    const who = { peer: `${peer.address}:${peer.port}` };
    if (pkt.op === 'invalid') {
      stats.malformedPackets++;
      logger.debug({ ...who, reason: pkt.reason }, 'tftp: malformed request');
      return reply(peer, ErrorCode.IllegalOperation, pkt.reason);
    }
    if (pkt.op === 'wrq') {
      stats.requestsRefused++;
      stats.refusedBy.write++;
      logger.warn({ ...who, file: pkt.filename }, 'tftp: write request refused');
      return reply(peer, ErrorCode.AccessViolation, 'read-only server');
    }
    if (pkt.op !== 'rrq') {
      // DATA/ACK/ERROR/OACK on the request port belong to no transfer (RFC 1350: unknown TID).
      stats.malformedPackets++;
      if (pkt.op !== 'error') reply(peer, ErrorCode.UnknownTid, 'no transfer on this port');
      return;
    }
    const key = who.peer;
    // A client that retransmits its RRQ (our first reply was lost) must not get two transfers:
    // the one in progress will retransmit by itself.
    if (active.has(key)) return;
    if (pkt.mode !== 'octet') {
      // netascii would rewrite line ends, changing the size we announce; boot files are binary.
      stats.requestsRefused++;
      stats.refusedBy.mode++;
      return reply(peer, ErrorCode.IllegalOperation, `mode ${pkt.mode} not supported, use octet`);
    }
    const path = normalisePath(pkt.filename);
    if (!path.ok) {
      stats.requestsRefused++;
      stats.refusedBy.path++;
      logger.warn({ ...who, file: JSON.stringify(pkt.filename), reason: path.reason }, 'tftp: path refused');
      return reply(peer, ErrorCode.AccessViolation, 'access violation');
    }
    if (active.size >= maxTransfers) {
      // Silence rather than an error: PXE firmware gives up on an error but retries on silence.
      stats.refusedBy.busy++;
      logger.warn({ ...who, active: active.size }, 'tftp: too many transfers, request dropped');
      return;
    }
    const entry: Active = { transfer: null, socket: null, aborted: false };
    active.set(key, entry);
    stats.activeTransfers = active.size;
    let file;
    try {
      file = await open(path.path);
    } catch (err) {
      active.delete(key);
      stats.activeTransfers = active.size;
      stats.refusedBy.open_error++;
      logger.error({ ...who, file: path.path, err }, 'tftp: open failed');
      return reply(peer, ErrorCode.NotDefined, 'cannot open file');
    }
    if (file === null || entry.aborted) {
      active.delete(key);
      stats.activeTransfers = active.size;
      file?.stream?.destroy();
      if (file === null) {
        stats.requestsRefused++;
        stats.refusedBy.not_found++;
        logger.info({ ...who, file: path.path }, 'tftp: file not found');
        reply(peer, ErrorCode.FileNotFound, 'file not found');
      }
      return;
    }
    const neg = negotiateOptions(pkt.options, file.size, { maxBlksize, maxWindow });
    // RFC 1350: each transfer gets its own port (TID); replies come from it, not from port 69.
    const sock = dgram.createSocket('udp4');
    entry.socket = sock;
    const reader = createReader(file);
    const started = Date.now();
    const transfer = new Transfer({
      reader,
      blksize: neg.blksize,
      windowsize: neg.windowsize,
      oack: neg.oack.length > 0 ? encodeOack(neg.oack) : null,
      send: (buf, length) => {
        try {
          sock.send(buf, 0, length); // connected: no per-packet address lookup
        } catch (err) {
          logger.debug({ ...who, err }, 'tftp: send failed'); // socket closed under us: stop() raced
        }
      },
      // A client-requested timeout (RFC 2349) is honoured as an upper bound: retransmitting
      // sooner only costs the receiver a duplicate to drop, waiting seconds stalls a boot.
      timeoutMs: Math.min(neg.timeoutMs ?? timeoutMs, timeoutMs),
      oackTimeoutMs,
      retries,
      onDone: (outcome: TransferOutcome) => {
        active.delete(key);
        stats.activeTransfers = active.size;
        stats.bytesSent += outcome.bytes;
        stats.retransmits += outcome.retransmits;
        stats.timeouts += outcome.timeouts;
        sock.close();
        const ms = Date.now() - started;
        onTransferDone?.(ms / 1000, outcome.ok);
        const info = { ...who, file: path.path, bytes: outcome.bytes, retransmits: outcome.retransmits, ms };
        if (outcome.ok) {
          stats.transfersCompleted++;
          logger.debug(info, 'tftp: transfer complete');
        } else {
          stats.transfersFailed++;
          stats.failedBy[outcome.cause]++;
          logger.info({ ...info, reason: outcome.reason }, 'tftp: transfer failed');
        }
      },
    });
    entry.transfer = transfer;
    // The socket is connect()ed to the client's TID, so the kernel delivers nothing else: a
    // stranger's packet cannot disturb the transfer (RFC 1350 §4 — it gets an ICMP port
    // unreachable rather than TFTP error 5, which serves the same purpose).
    sock.on('message', (m) => {
      try {
        // Fast path for the packet that arrives once per window: an ACK needs no decoded object.
        if (m.length >= 4 && m[0] === 0 && m[1] === Opcode.ACK) return transfer.onAck(m.readUInt16BE(2));
        const p = decodePacket(m);
        if (p.op === 'error') transfer.onPeerError(p.code, p.message);
        // anything else from the client mid-transfer is ignored: it cannot be answered usefully
      } catch (err) {
        // A bug here must cost one transfer, not the process serving a whole rack.
        logger.error({ ...who, err }, 'tftp: transfer failed unexpectedly');
        transfer.abort('internal error');
      }
    });
    sock.on('error', (err) => {
      // ECONNREFUSED: an ICMP port unreachable answered a packet we sent, and Linux reports it on this connected
      // socket ahead of datagrams still queued. In a boot storm that is our retransmission of the last block after
      // the client had sent its final ACK and closed its port: an event-loop stall let the timer fire before the ACK
      // was read. The ACK is read next and completes the transfer; a client that is really gone is ended by the
      // retransmission timeout, as when the ICMP is filtered on the way. (Aborting here failed transfers that had
      // completed: 445 of 1,000 in the simulated storm of 2026-12-03.)
      if ((err as NodeJS.ErrnoException).code === 'ECONNREFUSED') return void logger.debug({ ...who }, 'tftp: port unreachable reported for the peer; waiting for its packets or the timeout');
      logger.warn({ ...who, err }, 'tftp: transfer socket error');
      transfer.abort('socket error');
    });
    sock.bind({ address: main?.address().address ?? address, port: 0 }, () => {
      if (entry.aborted) return;
      sock.connect(peer.port, peer.address, () => {
        if (entry.aborted) return;
        stats.transfersStarted++;
        logger.debug({ ...who, file: path.path, size: file.size, blksize: neg.blksize, windowsize: neg.windowsize }, 'tftp: transfer start');
        transfer.start();
      });
    });
  }

  return {
    get stats() {
      return { ...stats, failedBy: { ...stats.failedBy }, refusedBy: { ...stats.refusedBy } };
    },
    start() {
      return new Promise((resolve, reject) => {
        const sock = dgram.createSocket('udp4');
        sock.once('error', reject);
        sock.on('message', (msg, peer) => {
          handleRequest(msg, peer).catch((err: unknown) => logger.error({ err }, 'tftp: request handler failed'));
        });
        sock.bind({ address, port }, () => {
          sock.off('error', reject);
          sock.on('error', (err) => logger.error({ err }, 'tftp: socket error'));
          main = sock;
          const a = sock.address();
          logger.info({ address: a.address, port: a.port }, 'tftp: listening');
          resolve({ address: a.address, port: a.port });
        });
      });
    },
    async stop() {
      for (const entry of active.values()) {
        entry.aborted = true;
        entry.transfer?.abort('server shutting down');
      }
      active.clear();
      stats.activeTransfers = 0;
      const sock = main;
      main = null;
      if (sock) await new Promise<void>((r) => sock.close(() => r()));
    },
  };
}
