// Receive-queue overflows of our UDP sockets (issue 15 item 3). In a boot storm a thousand ROMs DISCOVER within a
// second; when the socket's receive buffer is full the kernel drops the datagram and counts it per socket in the
// `drops` column of /proc/net/udp (SO_RXQ_OVFL would give it per packet, but Node's dgram cannot set it). The
// file shows the sockets of the reading process's network namespace; ours are matched by local address and port
// (SO_REUSEADDR lets another process bind the same pair: its drops would be counted too).
import { readFileSync } from 'node:fs';

/** /proc/net/udp writes an IPv4 local address as the 32-bit value in host order, in hex (x86: 127.0.0.1 → 0100007F). */
function procAddress(ip: string, littleEndian = true): string {
  const bytes = ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0').toUpperCase());
  return (littleEndian ? bytes.reverse() : bytes).join('');
}

/** The drops of the sockets bound to each address:port, summed, from the text of /proc/net/udp. */
export function udpDrops(procText: string, bound: { address: string; port: number }[], { littleEndian = true } = {}): number {
  const want = new Set(bound.map((b) => `${procAddress(b.address, littleEndian)}:${b.port.toString(16).toUpperCase().padStart(4, '0')}`));
  let drops = 0;
  for (const line of procText.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
    if (cols.length < 13 || !want.has(cols[1]!)) continue;
    drops += Number(cols[12]) || 0;
  }
  return drops;
}

/** Reads /proc/net/udp now; 0 where it cannot be read (not Linux). */
export function readUdpDrops(bound: { address: string; port: number }[], path = '/proc/net/udp'): number {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return 0;
  }
  return udpDrops(text, bound, { littleEndian: new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 });
}
