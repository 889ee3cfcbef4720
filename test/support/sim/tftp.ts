// The TFTP read a PXE ROM does for the iPXE binary the DHCP offer named (next-server, boot file): an RRQ with
// `blksize` and `tsize` (RFC 2348, RFC 2349), lockstep as the PXE base code does (no windowsize, RFC 7440), each
// DATA acknowledged; on silence the last packet is sent again, with a doubling timeout (RFC 1350 §2 leaves the
// policy to the client; PXE ROMs resend after ~1 s). From the node's leased address, as firmware does.
import dgram from 'node:dgram';
import { decodePacket, encodeAck, encodeRequest } from '../../../boot/tftp/codec.ts';

export interface TftpGetOptions {
  server: string;
  port?: number;
  file: string;
  /** the node's leased address (the reply must reach this node, not another) */
  localAddress?: string;
  /** PXE ROMs ask for 1456 (Intel) or 1468; the server may grant less */
  blksize?: number;
  timeoutMs?: number;
  retries?: number;
}

export interface TftpResult {
  bytes: number;
  /** what the server said in the OACK (RFC 2349), when it answered tsize */
  tsize?: number;
  blksize: number;
  /** packets sent again after a silence */
  resent: number;
}

export function tftpGet({ server, port = 69, file, localAddress, blksize = 1456, timeoutMs = 1000, retries = 6 }: TftpGetOptions): Promise<TftpResult> {
  return new Promise<TftpResult>((resolve, reject) => {
    const sock = dgram.createSocket('udp4');
    let last = encodeRequest('rrq', file, 'octet', [['blksize', String(blksize)], ['tsize', '0']]);
    let dest = { address: server, port };
    let peer: { address: string; port: number } | undefined;
    let expected = 1;
    let bytes = 0;
    let size = 512;
    let tsize: number | undefined;
    let resent = 0;
    let tries = 0;
    let timer: NodeJS.Timeout | undefined;
    const finish = (err?: Error) => {
      clearTimeout(timer);
      sock.close();
      if (err) reject(err);
      else resolve({ bytes, tsize, blksize: size, resent });
    };
    const send = () => {
      sock.send(last, dest.port, dest.address);
      clearTimeout(timer);
      timer = setTimeout(() => {
        if (++tries > retries) return finish(new Error(`TFTP ${file} from ${server}: no answer after ${retries} retransmissions (block ${expected})`));
        resent++;
        send();
      }, timeoutMs * 2 ** Math.min(tries, 4));
    };
    sock.on('error', (e) => finish(e));
    sock.on('message', (msg, rinfo) => {
      // the first answer fixes the server's transfer ID (its port); anything from elsewhere is not ours (RFC 1350 §4)
      if (peer && (rinfo.address !== peer.address || rinfo.port !== peer.port)) return;
      const p = decodePacket(msg);
      if (!peer) {
        peer = { address: rinfo.address, port: rinfo.port };
        dest = peer;
      }
      tries = 0;
      if (p.op === 'error') return finish(new Error(`TFTP ${file}: error ${p.code} ${p.message}`));
      if (p.op === 'oack') {
        size = Number(p.options.get('blksize') ?? 512);
        if (p.options.has('tsize')) tsize = Number(p.options.get('tsize'));
        last = encodeAck(0);
        return send();
      }
      if (p.op !== 'data') return;
      if (p.block !== (expected & 0xffff)) {
        // a duplicate: our ACK was lost; acknowledge it again
        if (p.block === ((expected - 1) & 0xffff)) sock.send(encodeAck(p.block), dest.port, dest.address);
        return;
      }
      bytes += p.data.length;
      last = encodeAck(p.block);
      expected++;
      if (p.data.length < size) {
        sock.send(last, dest.port, dest.address);
        return finish();
      }
      send();
    });
    sock.bind({ address: localAddress ?? '0.0.0.0', port: 0 }, () => send());
  });
}
