// Reads what `tcpdump -w` wrote on an Ethernet link (a bridge in a test namespace) and keeps the IPv6 UDP datagrams,
// so a test can decode the DHCPv6 messages a real firmware exchanged and put back together the file a TFTP transfer
// carried, without trusting the server's own log for either. Classic pcap only (tcpdump's default): 24-byte file
// header, 16-byte record headers, microsecond or nanosecond timestamps, link type 1 (Ethernet, DLT_EN10MB).
import { readFileSync } from 'node:fs';
import { ip6ToString } from '../../../boot/dhcp6/packet.ts';

export interface Udp6 {
  /** ms since the epoch (the capture's clock: this machine's) */
  at: number;
  src: string;
  dst: string;
  sport: number;
  dport: number;
  payload: Buffer;
}

const ETHERTYPE_IPV6 = 0x86dd;
const NEXT_HEADER_UDP = 17;

export function readUdp6(file: string): Udp6[] {
  const b = readFileSync(file);
  if (b.length < 24) return []; // tcpdump had not written its header yet
  const magic = b.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  const nano = magic === 0xa1b23c4d || magic === 0x4d3cb2a1;
  if (!le && magic !== 0xd4c3b2a1 && magic !== 0x4d3cb2a1) throw new Error(`${file}: not a classic pcap file (magic ${magic.toString(16)})`);
  const u32 = (o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  if (u32(20) !== 1) throw new Error(`${file}: link type ${u32(20)}, not Ethernet (1)`);
  const out: Udp6[] = [];
  for (let o = 24; o + 16 <= b.length; ) {
    const at = u32(o) * 1000 + u32(o + 4) / (nano ? 1e6 : 1e3);
    const len = u32(o + 8);
    const frame = b.subarray(o + 16, o + 16 + len);
    o += 16 + len;
    if (frame.length < len) break; // the last record is still being written
    if (frame.length < 14 + 40 + 8 || frame.readUInt16BE(12) !== ETHERTYPE_IPV6) continue;
    const ip = frame.subarray(14);
    if (ip[6] !== NEXT_HEADER_UDP) continue; // no extension headers on DHCPv6 or TFTP here
    const udp = ip.subarray(40);
    out.push({ at, src: ip6ToString(ip, 8), dst: ip6ToString(ip, 24), sport: udp.readUInt16BE(0), dport: udp.readUInt16BE(2), payload: udp.subarray(8, udp.readUInt16BE(4)) });
  }
  return out;
}

/**
 * The file one TFTP read transfer carried (RFC 1350 DATA = opcode 3, a 16-bit block number, the bytes), from the
 * server to the client's transfer port (its TID, unique per transfer): each block once, in block order (a retransmission repeats a block). Stops
 * at the first short block, the end of the file.
 */
export function tftpFile(packets: Udp6[], server: string, client: { address: string; port: number }): Buffer {
  const blocks = new Map<number, Buffer>();
  for (const p of packets) {
    if (p.src !== server || p.dst !== client.address || p.dport !== client.port) continue;
    if (p.payload.length < 4 || p.payload.readUInt16BE(0) !== 3) continue;
    const n = p.payload.readUInt16BE(2);
    if (!blocks.has(n)) blocks.set(n, p.payload.subarray(4));
  }
  const parts: Buffer[] = [];
  const size = blocks.get(1)?.length ?? 0;
  for (let n = 1; blocks.has(n); n++) {
    parts.push(blocks.get(n)!);
    if (blocks.get(n)!.length < size) break;
  }
  return Buffer.concat(parts);
}
