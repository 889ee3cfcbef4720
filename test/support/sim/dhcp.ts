// DHCP for many simulated nodes through one client socket (0.0.0.0:68 in the simulator's namespace): each node
// sends the DISCOVER QEMU's iPXE ROM sends (the captured packet in boot/dhcp/fixtures, with the node's MAC, UUID
// and a fresh xid), takes the first OFFER, REQUESTs it naming that server (RFC 2131 §4.3.2 SELECTING) and waits
// for the ACK; a NAK (another replica bound the address first) starts over. Retransmissions back off like a
// client's (RFC 2131 §4.1: 4 s doubling; here from 1 s so a lost packet costs little in a test).
import dgram from 'node:dgram';
import { randomInt } from 'node:crypto';
import { MessageType, Opt, decodePacket, encodePacket, ips, optIp, type DhcpPacket } from '../../../boot/dhcp/packet.ts';
import { fixturePacket, macBytes } from '../dhcp/fakes.ts';

export interface Lease {
  ip: string;
  serverId: string;
  /** option 67 or the file field: the boot script URL for an iPXE client */
  bootfile: string;
  mask?: string;
  /** DISCOVERs sent and NAKs received, for the report */
  discovers: number;
  naks: number;
}

type Waiter = { types: number[]; resolve: (p: DhcpPacket) => void };

export interface DhcpClient {
  /** one full DORA exchange for a MAC; rejects after `attempts` DISCOVERs without an ACK (default: keeps trying, as a
   * machine whose boot order loops back to PXE does) */
  acquire(mac: string, uuid: string, opts?: { attempts?: number }): Promise<Lease>;
  close(): void;
}

const uuidBytes = (uuid: string) => Buffer.concat([Buffer.from([0]), Buffer.from(uuid.replaceAll('-', ''), 'hex')]);

export async function createDhcpClient({ port = 68, serverPort = 67, broadcast = '255.255.255.255' }: { port?: number; serverPort?: number; broadcast?: string } = {}): Promise<DhcpClient> {
  const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  const waiting = new Map<number, Waiter>();
  sock.on('message', (msg) => {
    const d = decodePacket(msg);
    if (!d.ok || d.packet.op !== 2) return;
    const w = waiting.get(d.packet.xid);
    const type = d.packet.options.get(Opt.MESSAGE_TYPE)?.[0];
    if (!w || type === undefined || !w.types.includes(type)) return;
    waiting.delete(d.packet.xid);
    w.resolve(d.packet);
  });
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(port, () => {
      sock.setBroadcast(true);
      resolve();
    });
  });
  const template = fixturePacket('ipxe-rom-bios-discover.hex');

  const exchange = (p: DhcpPacket, types: number[], timeoutMs: number) =>
    new Promise<DhcpPacket | undefined>((resolve) => {
      const t = setTimeout(() => {
        waiting.delete(p.xid);
        resolve(undefined);
      }, timeoutMs);
      waiting.set(p.xid, { types, resolve: (r) => (clearTimeout(t), resolve(r)) });
      sock.send(encodePacket(p, 1500), serverPort, broadcast);
    });

  const packetFor = (mac: string, uuid: string, xid: number, type: number, extra: [number, Buffer][] = []): DhcpPacket => {
    const options = new Map(template.options);
    options.set(Opt.MESSAGE_TYPE, Buffer.from([type]));
    if (options.has(Opt.CLIENT_UUID)) options.set(Opt.CLIENT_UUID, uuidBytes(uuid));
    if (options.has(Opt.CLIENT_ID)) options.set(Opt.CLIENT_ID, Buffer.concat([Buffer.from([1]), Buffer.from(mac.replaceAll(':', ''), 'hex')]));
    for (const [k, v] of extra) options.set(k, v);
    // no address yet: the reply must be broadcast (RFC 2131 §4.1)
    return { ...template, xid, flags: 0x8000, chaddr: macBytes(mac), ciaddr: '0.0.0.0', options };
  };

  return {
    async acquire(mac, uuid, { attempts = Infinity } = {}) {
      let discovers = 0;
      let naks = 0;
      let wait = 1000;
      while (discovers < attempts) {
        const xid = randomInt(1, 2 ** 31);
        discovers++;
        const offer = await exchange(packetFor(mac, uuid, xid, MessageType.DISCOVER), [MessageType.OFFER], wait);
        if (!offer) {
          wait = Math.min(wait * 2, 8000);
          continue;
        }
        const serverId = optIp(offer, Opt.SERVER_ID) ?? offer.siaddr;
        const ack = await exchange(packetFor(mac, uuid, xid, MessageType.REQUEST, [[Opt.SERVER_ID, ips([serverId])], [Opt.REQUESTED_IP, ips([offer.yiaddr])]]), [MessageType.ACK, MessageType.NAK], wait);
        if (!ack) continue;
        if (ack.options.get(Opt.MESSAGE_TYPE)?.[0] === MessageType.NAK) {
          naks++;
          continue;
        }
        const bootfile = ack.options.get(Opt.BOOTFILE)?.toString('latin1').replace(/\0+$/, '') || ack.file;
        return { ip: ack.yiaddr, serverId, bootfile, mask: optIp(ack, Opt.SUBNET_MASK), discovers, naks };
      }
      throw new Error(`DHCP: no lease for ${mac} after ${discovers} DISCOVERs (${naks} NAKs)`);
    },
    close: () => sock.close(),
  };
}
