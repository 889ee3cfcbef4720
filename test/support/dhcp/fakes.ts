// Named fakes and builders for the DHCP tests and benches (STYLE.md §8).
import { readFileSync } from 'node:fs';
import type { BootBackend, DhcpHost } from '../../../boot/backend.ts';
import { BOOTREQUEST, type DhcpPacket, MessageType, Opt, decodePacket, ips, str, u8 } from '../../../boot/dhcp/packet.ts';

/** A backend that knows a fixed list of machines. */
export class FixedBackend implements BootBackend {
  readonly hosts: Map<string, DhcpHost>;
  calls = 0;
  constructor(hosts: DhcpHost[] = []) {
    this.hosts = new Map(hosts.map((h) => [h.mac.toLowerCase(), h]));
  }
  async dhcpHost(mac: string): Promise<DhcpHost | null> {
    this.calls++;
    return this.hosts.get(mac) ?? null;
  }
}

/** A backend whose database is down. */
export const BrokenBackend: BootBackend = {
  dhcpHost: async () => {
    throw new Error('backend unavailable');
  },
};

export const fixtureDir = new URL('../../../boot/dhcp/fixtures/', import.meta.url);

/** A hex fixture: '#' lines are notes on where it came from. */
export function readHexFixture(name: string): Buffer {
  const text = readFileSync(new URL(name, fixtureDir), 'utf8');
  return Buffer.from(
    text
      .split('\n')
      .filter((l) => l.trim() && !l.startsWith('#'))
      .join('')
      .trim(),
    'hex',
  );
}

export function fixturePacket(name: string): DhcpPacket {
  const r = decodePacket(readHexFixture(name));
  if (!r.ok) throw new Error(`fixture ${name}: ${r.error}`);
  return r.packet;
}

export function macBytes(mac: string): Buffer {
  const b = Buffer.alloc(16);
  Buffer.from(mac.replaceAll(':', ''), 'hex').copy(b);
  return b;
}

export interface RequestSpec {
  type: number;
  mac: string;
  xid?: number;
  ciaddr?: string;
  giaddr?: string;
  broadcast?: boolean;
  requestedIp?: string;
  serverId?: string;
  vendorClass?: string;
  userClass?: string;
  arch?: number;
  paramList?: number[];
  relayAgent?: Buffer;
  extra?: [number, Buffer][];
}

/** Build a client request the way a real client lays it out. */
export function request(s: RequestSpec): DhcpPacket {
  const options = new Map<number, Buffer>();
  options.set(Opt.MESSAGE_TYPE, u8(s.type));
  if (s.requestedIp) options.set(Opt.REQUESTED_IP, ips([s.requestedIp]));
  if (s.serverId) options.set(Opt.SERVER_ID, ips([s.serverId]));
  if (s.vendorClass) options.set(Opt.VENDOR_CLASS, str(s.vendorClass));
  if (s.userClass) options.set(Opt.USER_CLASS, str(s.userClass));
  if (s.arch !== undefined) options.set(Opt.CLIENT_ARCH, Buffer.from([s.arch >> 8, s.arch & 255]));
  options.set(Opt.PARAM_LIST, Buffer.from(s.paramList ?? [1, 3, 6, 12, 15, 51, 54]));
  if (s.relayAgent) options.set(Opt.RELAY_AGENT, s.relayAgent);
  for (const [k, v] of s.extra ?? []) options.set(k, v);
  return {
    op: BOOTREQUEST,
    htype: 1,
    hlen: 6,
    hops: s.giaddr ? 1 : 0,
    xid: s.xid ?? 0x1234abcd,
    secs: 0,
    flags: s.broadcast ? 0x8000 : 0,
    ciaddr: s.ciaddr ?? '0.0.0.0',
    yiaddr: '0.0.0.0',
    siaddr: '0.0.0.0',
    giaddr: s.giaddr ?? '0.0.0.0',
    chaddr: macBytes(s.mac),
    sname: '',
    file: '',
    options,
  };
}

export { MessageType };

/** A clock the test moves by hand. */
export function fakeClock(start = Date.UTC(2026, 0, 1)) {
  let now = start;
  return { now: () => now, advance: (ms: number) => void (now += ms) };
}

/** Collects log lines for assertions. */
export function recordingLogger() {
  const lines: { level: string; msg?: string; obj: object }[] = [];
  const at = (level: string) => (obj: object, msg?: string) => void lines.push({ level, msg, obj });
  return { lines, logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } };
}
