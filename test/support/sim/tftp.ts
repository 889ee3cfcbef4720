// The TFTP read a PXE ROM does for the iPXE binary the DHCP offer named (next-server, boot file), from the node's
// leased address, as firmware does. Two clients, picked by `client`:
// - 'pxe-rom' (a BIOS PXE ROM): one RRQ with `blksize` and `tsize` (RFC 2348, RFC 2349), lockstep (no windowsize,
//   RFC 7440), each DATA acknowledged; on silence the last packet is sent again with a doubling timeout (RFC 1350 §2
//   leaves the policy to the client; PXE ROMs resend after ~1 s).
// - 'ovmf' (UEFI PXE, edk2 NetworkPkg/UefiPxeBcDxe as in OVMF): first a size probe — RRQ with tsize 0, blksize and
//   windowsize, the OACK read, the transfer ended with an ERROR (PxeBcTftpGetFileSize → Mtftp4 GetInfo) — then the
//   read itself from a new port: RRQ with blksize 1468 (min(IPv4 max packet, 1480) − 8 UDP − 4 TFTP, PxeBcDriver.c)
//   and windowsize 4 (PcdPxeTftpWindowSize, read in PxeBcImpl.c EfiPxeBcMtftp), one ACK per window (RFC 7440), and
//   a fixed 4 s timeout tried 6 times (PXEBC_MTFTP_TIMEOUT, PXEBC_MTFTP_RETRIES in PxeBcImpl.h). Lockstep at 1 s
//   overstated an EFI node's TFTP time in the storm about fourfold: snponly.efi is 120 blocks, i.e. 30 windows.
import dgram from 'node:dgram';
import { ErrorCode, decodePacket, encodeAck, encodeError, encodeRequest } from '../../../boot/tftp/codec.ts';

export interface TftpGetOptions {
  server: string;
  port?: number;
  file: string;
  /** the node's leased address (the reply must reach this node, not another) */
  localAddress?: string;
  /** whose TFTP client this is (defaults below); the fields after it override them */
  client?: 'pxe-rom' | 'ovmf';
  /** PXE ROMs ask for 1456 (Intel) or 1468; the server may grant less */
  blksize?: number;
  /** RFC 7440; 1 = lockstep, and the option is not sent */
  windowsize?: number;
  /** first wait for an answer before the last packet is sent again */
  timeoutMs?: number;
  /** 'double': each silence doubles the wait (up to 16×); 'fixed': edk2's Mtftp4 waits the same each time */
  backoff?: 'double' | 'fixed';
  retries?: number;
  /** ask for the size first in a transfer of its own and end it with an ERROR, as edk2 does */
  sizeProbe?: boolean;
}

export interface TftpResult {
  bytes: number;
  /** what the server said in the OACK (RFC 2349), when it answered tsize */
  tsize?: number;
  blksize: number;
  /** the windowsize the server granted (1 when it granted none) */
  windowsize: number;
  /** packets sent again after a silence */
  resent: number;
  /** waits of 500 ms or more for the next packet: the block waited for and how long (for digging into a tail) */
  stalls: { block: number; ms: number }[];
}

type ClientBehaviour = Required<Pick<TftpGetOptions, 'blksize' | 'windowsize' | 'timeoutMs' | 'backoff' | 'retries' | 'sizeProbe'>>;
const CLIENTS: Record<NonNullable<TftpGetOptions['client']>, ClientBehaviour> = {
  'pxe-rom': { blksize: 1456, windowsize: 1, timeoutMs: 1000, backoff: 'double', retries: 6, sizeProbe: false },
  ovmf: { blksize: 1468, windowsize: 4, timeoutMs: 4000, backoff: 'fixed', retries: 6, sizeProbe: true },
};
type Resolved = ClientBehaviour & Pick<TftpGetOptions, 'server' | 'port' | 'file' | 'localAddress'>;

export async function tftpGet(o: TftpGetOptions): Promise<TftpResult> {
  const d = CLIENTS[o.client ?? 'pxe-rom'];
  const c: Resolved = { ...o, blksize: o.blksize ?? d.blksize, windowsize: o.windowsize ?? d.windowsize, timeoutMs: o.timeoutMs ?? d.timeoutMs, backoff: o.backoff ?? d.backoff, retries: o.retries ?? d.retries, sizeProbe: o.sizeProbe ?? d.sizeProbe };
  let probeResent = 0;
  let probeStalls: TftpResult['stalls'] = [];
  let tsize: number | undefined;
  if (c.sizeProbe) {
    const p = await transfer(c, { tsize: true, probe: true });
    probeResent = p.resent;
    probeStalls = p.stalls.map((x) => ({ ...x, block: -1 }));
    tsize = p.tsize;
  }
  const r = await transfer(c, { tsize: !c.sizeProbe, probe: false });
  return { ...r, tsize: r.tsize ?? tsize, resent: r.resent + probeResent, stalls: [...probeStalls, ...r.stalls] };
}

function transfer(c: Resolved, { tsize: askSize, probe }: { tsize: boolean; probe: boolean }): Promise<TftpResult> {
  const { server, port = 69, file, localAddress, blksize, windowsize, timeoutMs, backoff, retries } = c;
  return new Promise<TftpResult>((resolve, reject) => {
    const sock = dgram.createSocket('udp4');
    const options: [string, string][] = [];
    if (askSize) options.push(['tsize', '0']);
    options.push(['blksize', String(blksize)]);
    if (windowsize > 1) options.push(['windowsize', String(windowsize)]);
    let last = encodeRequest('rrq', file, 'octet', options);
    let dest = { address: server, port };
    let peer: { address: string; port: number } | undefined;
    let expected = 1;
    let bytes = 0;
    let size = 512;
    let window = 1;
    let sinceAck = 0;
    let tsize: number | undefined;
    let resent = 0;
    let tries = 0;
    let timer: NodeJS.Timeout | undefined;
    let done = false;
    const stalls: TftpResult['stalls'] = [];
    let lastHeard = performance.now();
    const finish = (err?: Error) => {
      clearTimeout(timer);
      sock.close();
      if (err) reject(err);
      else resolve({ bytes, tsize, blksize: size, windowsize: window, resent, stalls });
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        if (++tries > retries) return finish(new Error(`TFTP ${file} from ${server}: no answer after ${retries} retransmissions (block ${expected})`));
        resent++;
        send();
      }, backoff === 'double' ? timeoutMs * 2 ** Math.min(tries, 4) : timeoutMs);
    };
    const send = () => {
      sock.send(last, dest.port, dest.address);
      arm();
    };
    const ack = (block: number) => {
      last = encodeAck(block);
      sinceAck = 0;
      send();
    };
    sock.on('error', (e) => finish(e));
    sock.on('message', (msg, rinfo) => {
      if (done) return;
      // the first answer fixes the server's transfer ID (its port); anything from elsewhere is not ours (RFC 1350 §4)
      if (peer && (rinfo.address !== peer.address || rinfo.port !== peer.port)) return;
      const p = decodePacket(msg);
      if (!peer) {
        peer = { address: rinfo.address, port: rinfo.port };
        dest = peer;
      }
      tries = 0;
      const now = performance.now();
      if (now - lastHeard >= 500) stalls.push({ block: p.op === 'data' ? p.block : 0, ms: Math.round(now - lastHeard) });
      lastHeard = now;
      if (p.op === 'error') return finish(new Error(`TFTP ${file}: error ${p.code} ${p.message}`));
      if (p.op === 'oack') {
        size = Number(p.options.get('blksize') ?? 512);
        window = Number(p.options.get('windowsize') ?? 1);
        if (p.options.has('tsize')) tsize = Number(p.options.get('tsize'));
        if (probe) {
          // edk2's GetInfo has what it asked for: it ends the transfer instead of acknowledging the OACK
          done = true;
          clearTimeout(timer);
          sock.send(encodeError(ErrorCode.NotDefined, 'User aborted'), dest.port, dest.address, () => finish());
          return;
        }
        return ack(0);
      }
      if (p.op !== 'data') return;
      if (p.block !== (expected & 0xffff)) {
        // a block we already have (our ACK was lost, the server resent) or one past a gap: acknowledge the last
        // block we have in order, which is the server's cue to go on from there (RFC 7440 §4)
        if (window > 1 || p.block === ((expected - 1) & 0xffff)) sock.send(encodeAck((expected - 1) & 0xffff), dest.port, dest.address);
        return;
      }
      bytes += p.data.length;
      expected++;
      if (p.data.length < size) {
        // close only once the last ACK is out: dgram sends after a lookup on the next tick, and a close before it
        // drops the ACK — the server then resends the last block into a closed port and counts a failed transfer
        // (the storm of 2026-12-03 logged 445 'recvmsg ECONNREFUSED' for it)
        done = true;
        clearTimeout(timer);
        sock.send(encodeAck(p.block), dest.port, dest.address, () => finish());
        return;
      }
      // one ACK per window (RFC 7440); while a window is arriving, each block restarts the wait
      if (++sinceAck >= window) ack(p.block);
      else arm();
    });
    sock.bind({ address: localAddress ?? '0.0.0.0', port: 0 }, () => send());
  });
}
