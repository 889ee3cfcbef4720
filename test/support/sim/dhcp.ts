// DHCP for many simulated nodes through one client socket (0.0.0.0:68 in the simulator's namespace): each node
// sends the DISCOVER QEMU's iPXE ROM sends (the captured packet in boot/dhcp/fixtures, with the node's MAC, UUID
// and a fresh xid), takes the first OFFER, REQUESTs it naming that server (RFC 2131 §4.3.2 SELECTING) and waits
// for the ACK; a NAK (another replica bound the address first) starts over. Retransmissions back off like a
// client's (RFC 2131 §4.1: 4 s doubling up to 64 s, each randomised by ±1 s; by default here from 1 s to 8 s
// without jitter, so a lost packet costs little in a test — the storm simulator asks for the RFC's values).
// `firmware` picks the captured request: the iPXE ROM's (user class iPXE: it gets the script URL) or the PXE base
// code's before iPXE runs (it gets the iPXE binary by TFTP): OVMF's own capture for EFI; for BIOS the iPXE ROM's
// capture without options 77 and 175, since an Intel PXE ROM sends the same 60/93/94/97 and no user class.
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
  /** siaddr or option 66: where the TFTP boot file is */
  nextServer?: string;
  /** DISCOVERs sent and NAKs received, for the report */
  discovers: number;
  naks: number;
}

type Waiter = { types: number[]; resolve: (p: DhcpPacket) => void };

export interface DhcpClient {
  /** one full DORA exchange for a MAC; rejects after `attempts` DISCOVERs without an ACK (default: keeps trying, as a
   * machine whose boot order loops back to PXE does) */
  acquire(mac: string, uuid: string, opts?: { attempts?: number; firmware?: DhcpFirmware }): Promise<Lease>;
  close(): void;
}

/** which client sends the request: the PXE base code (before iPXE) or iPXE, on BIOS or EFI */
export type DhcpFirmware = 'ipxe-bios' | 'ipxe-efi' | 'pxe-bios' | 'pxe-efi';

export interface Retransmit {
  /** first wait for an answer (RFC 2131 §4.1: 4 s) */
  firstMs: number;
  /** the doubling stops here (RFC: 64 s) */
  capMs: number;
  /** each wait is randomised by ± this (RFC: 1 s) */
  jitterMs: number;
}

/** RFC 2131 §4.1's retransmission: 4, 8, 16, 32, 64 s, each ± 1 s (uniform) */
export const RFC2131_RETRANSMIT: Retransmit = { firstMs: 4000, capMs: 64_000, jitterMs: 1000 };

const uuidBytes = (uuid: string) => Buffer.concat([Buffer.from([0]), Buffer.from(uuid.replaceAll('-', ''), 'hex')]);

export async function createDhcpClient({ port = 68, serverPort = 67, broadcast = '255.255.255.255', retransmit = { firstMs: 1000, capMs: 8000, jitterMs: 0 } }: { port?: number; serverPort?: number; broadcast?: string; retransmit?: Retransmit } = {}): Promise<DhcpClient> {
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
  const pxeBios = fixturePacket('ipxe-rom-bios-discover.hex');
  pxeBios.options = new Map([...pxeBios.options].filter(([k]) => k !== Opt.USER_CLASS && k !== Opt.IPXE));
  const templates: Record<DhcpFirmware, DhcpPacket> = {
    'ipxe-bios': fixturePacket('ipxe-rom-bios-discover.hex'),
    'ipxe-efi': fixturePacket('ipxe-rom-efi-discover.hex'),
    'pxe-bios': pxeBios,
    'pxe-efi': fixturePacket('ovmf-pxe-discover.hex'),
  };
  const jittered = (ms: number) => Math.max(100, ms + (retransmit.jitterMs ? randomInt(-retransmit.jitterMs, retransmit.jitterMs + 1) : 0));

  const exchange = (p: DhcpPacket, types: number[], timeoutMs: number) =>
    new Promise<DhcpPacket | undefined>((resolve) => {
      const t = setTimeout(() => {
        waiting.delete(p.xid);
        resolve(undefined);
      }, timeoutMs);
      waiting.set(p.xid, { types, resolve: (r) => (clearTimeout(t), resolve(r)) });
      sock.send(encodePacket(p, 1500), serverPort, broadcast);
    });

  const packetFor = (template: DhcpPacket, mac: string, uuid: string, xid: number, type: number, extra: [number, Buffer][] = []): DhcpPacket => {
    const options = new Map(template.options);
    options.set(Opt.MESSAGE_TYPE, Buffer.from([type]));
    if (options.has(Opt.CLIENT_UUID)) options.set(Opt.CLIENT_UUID, uuidBytes(uuid));
    if (options.has(Opt.CLIENT_ID)) options.set(Opt.CLIENT_ID, Buffer.concat([Buffer.from([1]), Buffer.from(mac.replaceAll(':', ''), 'hex')]));
    for (const [k, v] of extra) options.set(k, v);
    // no address yet: the reply must be broadcast (RFC 2131 §4.1)
    return { ...template, xid, flags: 0x8000, chaddr: macBytes(mac), ciaddr: '0.0.0.0', options };
  };

  return {
    async acquire(mac, uuid, { attempts = Infinity, firmware = 'ipxe-bios' } = {}) {
      const template = templates[firmware];
      let discovers = 0;
      let naks = 0;
      let wait = retransmit.firstMs;
      while (discovers < attempts) {
        const xid = randomInt(1, 2 ** 31);
        discovers++;
        const offer = await exchange(packetFor(template, mac, uuid, xid, MessageType.DISCOVER), [MessageType.OFFER], jittered(wait));
        if (!offer) {
          wait = Math.min(wait * 2, retransmit.capMs);
          continue;
        }
        const serverId = optIp(offer, Opt.SERVER_ID) ?? offer.siaddr;
        const ack = await exchange(packetFor(template, mac, uuid, xid, MessageType.REQUEST, [[Opt.SERVER_ID, ips([serverId])], [Opt.REQUESTED_IP, ips([offer.yiaddr])]]), [MessageType.ACK, MessageType.NAK], jittered(wait));
        if (!ack) {
          wait = Math.min(wait * 2, retransmit.capMs);
          continue;
        }
        if (ack.options.get(Opt.MESSAGE_TYPE)?.[0] === MessageType.NAK) {
          naks++;
          continue;
        }
        const bootfile = ack.options.get(Opt.BOOTFILE)?.toString('latin1').replace(/\0+$/, '') || ack.file;
        const nextServer = ack.options.get(Opt.TFTP_SERVER)?.toString('latin1').replace(/\0+$/, '') || (ack.siaddr !== '0.0.0.0' ? ack.siaddr : serverId);
        return { ip: ack.yiaddr, serverId, bootfile, mask: optIp(ack, Opt.SUBNET_MASK), nextServer, discovers, naks };
      }
      throw new Error(`DHCP: no lease for ${mac} after ${discovers} DISCOVERs (${naks} NAKs)`);
    },
    close: () => sock.close(),
  };
}
