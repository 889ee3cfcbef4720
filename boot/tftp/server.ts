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
import { listenAddresses, peerLabel, type Family } from './address.ts';
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
  /** one address or several, IPv4 and/or IPv6, each with its own socket on `port` (config.ts: `address`) */
  address?: string | readonly string[];
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
  /** Bind and serve; resolves with the first bound address and every listening socket. Port 0 picks a free port
   * for the first address, and the others bind the same one. */
  start(): Promise<{ address: string; port: number; listening: { address: string; family: Family; port: number }[] }>;
  /** Close every listening socket and abort every transfer in progress. */
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
  const wanted = listenAddresses(address);
  // The listening sockets, one per configured address; emptied by stop(), so a late reply goes nowhere.
  const listeners = new Set<dgram.Socket>();

  /** Answers a request from the socket it arrived on (an error reply is not a transfer, so no new TID). */
  function replyVia(via: dgram.Socket, peer: dgram.RemoteInfo, code: ErrorCode, message: string): void {
    if (listeners.has(via)) via.send(encodeError(code, message), peer.port, peer.address);
  }

  /** A request on `via`, a listening socket of `family` bound to `local` (an address or the family's wildcard). */
  async function handleRequest(msg: Buffer, peer: dgram.RemoteInfo, via: dgram.Socket, family: Family, local: string): Promise<void> {
    const pkt = decodePacket(msg);
    // normalised ([fd5b::5]:1234; a v4-mapped client as plain IPv4), so one client reads the same on either socket
    const who = { peer: peerLabel(peer.address, peer.port) };
    const reply = (code: ErrorCode, message: string) => replyVia(via, peer, code, message);
    if (pkt.op === 'invalid') {
      stats.malformedPackets++;
      logger.debug({ ...who, reason: pkt.reason }, 'tftp: malformed request');
      return reply(ErrorCode.IllegalOperation, pkt.reason);
    }
    if (pkt.op === 'wrq') {
      stats.requestsRefused++;
      stats.refusedBy.write++;
      logger.warn({ ...who, file: pkt.filename }, 'tftp: write request refused');
      return reply(ErrorCode.AccessViolation, 'read-only server');
    }
    if (pkt.op !== 'rrq') {
      // DATA/ACK/ERROR/OACK on the request port belong to no transfer (RFC 1350: unknown TID).
      stats.malformedPackets++;
      if (pkt.op !== 'error') reply(ErrorCode.UnknownTid, 'no transfer on this port');
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
      return reply(ErrorCode.IllegalOperation, `mode ${pkt.mode} not supported, use octet`);
    }
    const path = normalisePath(pkt.filename);
    if (!path.ok) {
      stats.requestsRefused++;
      stats.refusedBy.path++;
      logger.warn({ ...who, file: JSON.stringify(pkt.filename), reason: path.reason }, 'tftp: path refused');
      return reply(ErrorCode.AccessViolation, 'access violation');
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
      file = await open(path.path, { address: peer.address, port: peer.port });
    } catch (err) {
      active.delete(key);
      stats.activeTransfers = active.size;
      stats.refusedBy.open_error++;
      logger.error({ ...who, file: path.path, err }, 'tftp: open failed');
      return reply(ErrorCode.NotDefined, 'cannot open file');
    }
    if (file === null || entry.aborted) {
      active.delete(key);
      stats.activeTransfers = active.size;
      file?.stream?.destroy();
      if (file === null) {
        stats.requestsRefused++;
        stats.refusedBy.not_found++;
        logger.info({ ...who, file: path.path }, 'tftp: file not found');
        reply(ErrorCode.FileNotFound, 'file not found');
      }
      return;
    }
    // An IPv6 header is 20 bytes longer than an IPv4 one: the same cap would send frames 20 bytes larger, which a
    // 1500-byte link only carries fragmented (and firewalls often drop IPv6 fragments).
    const neg = negotiateOptions(pkt.options, file.size, { maxBlksize: family === 6 ? Math.max(8, maxBlksize - 20) : maxBlksize, maxWindow });
    // RFC 1350: each transfer gets its own port (TID); replies come from it, not from port 69. Same family as the
    // request and bound to the address it was sent to (when that is known, i.e. not a wildcard), so the client
    // sees the address it asked and its firewall or NAT lets the reply in.
    const sock = dgram.createSocket({ type: family === 6 ? 'udp6' : 'udp4', ipv6Only: family === 6 });
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
    sock.bind({ address: local, port: 0 }, () => {
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
    async start() {
      const listening: { address: string; family: Family; port: number }[] = [];
      let bound = port;
      try {
        for (const want of wanted) {
          // ipv6Only: '::' must not take IPv4 too (it would depend on the bindv6only sysctl, and hold the IPv4
          // port that a '0.0.0.0' in the same list binds next): address.ts
          const sock = dgram.createSocket({ type: want.family === 6 ? 'udp6' : 'udp4', ipv6Only: want.family === 6 });
          await new Promise<void>((resolve, reject) => {
            sock.once('error', reject);
            sock.bind({ address: want.address, port: bound }, () => {
              sock.off('error', reject);
              resolve();
            });
          }).catch((err: unknown) => {
            sock.close(); // never bound: nothing to wait for
            throw err;
          });
          const a = sock.address();
          bound = a.port; // port 0: the first socket's pick, for all
          sock.on('error', (err) => logger.error({ err, address: a.address }, 'tftp: socket error'));
          sock.on('message', (msg, peer) => {
            handleRequest(msg, peer, sock, want.family, a.address).catch((err: unknown) => logger.error({ err }, 'tftp: request handler failed'));
          });
          listeners.add(sock);
          listening.push({ address: a.address, family: want.family, port: a.port });
          logger.info({ address: a.address, port: a.port }, 'tftp: listening');
        }
      } catch (err) {
        // all or nothing: a server half listening would look healthy while one family's clients time out
        await closeListeners();
        throw err;
      }
      return { address: listening[0]!.address, port: bound, listening };
    },
    async stop() {
      for (const entry of active.values()) {
        entry.aborted = true;
        entry.transfer?.abort('server shutting down');
      }
      active.clear();
      stats.activeTransfers = 0;
      await closeListeners();
    },
  };

  async function closeListeners(): Promise<void> {
    const socks = [...listeners];
    listeners.clear();
    await Promise.all(socks.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}
