// DHCP packet codec (RFC 2131 §2 message format, RFC 2132 options, RFC 3396 long options).
//
// Why our own code and not an npm package: the only DHCP codec on npm with any use is `dhcp`
// (0.2.20). It throws on a DHCPDISCOVER from QEMU's iPXE ROM, has no proxyDHCP, ignores giaddr,
// keeps no leases and spins at 100% CPU when its pool is exhausted. No other maintained packet codec
// exists there, and the format is small, so boot/dhcp keeps a pure codec (this file), pure decisions
// (classify.ts, bootfile.ts, responder.ts) and one thin socket file (server.ts).
//
// The decoder never throws: bad input yields { ok: false, error } so a hostile or broken packet can
// never take the server down. Unknown options are kept (raw) and ignored, never fatal.

export const BOOTREQUEST = 1;
export const BOOTREPLY = 2;

/** RFC 2132 §9.6 message types. */
export const MessageType = {
  DISCOVER: 1,
  OFFER: 2,
  REQUEST: 3,
  DECLINE: 4,
  ACK: 5,
  NAK: 6,
  RELEASE: 7,
  INFORM: 8,
} as const;
export type MessageTypeName = keyof typeof MessageType;
export const messageTypeName = (t: number | undefined): MessageTypeName | undefined =>
  (Object.keys(MessageType) as MessageTypeName[]).find((k) => MessageType[k] === t);

/** Option codes we read or write (RFC 2132 unless noted). */
export const Opt = {
  PAD: 0,
  SUBNET_MASK: 1,
  ROUTER: 3,
  DNS: 6,
  HOSTNAME: 12,
  DOMAIN_NAME: 15,
  BROADCAST: 28,
  VENDOR_SPECIFIC: 43, // PXE vendor sub-options when option 60 is PXEClient (PXE spec 2.1 §2.4)
  REQUESTED_IP: 50,
  LEASE_TIME: 51,
  OVERLOAD: 52,
  MESSAGE_TYPE: 53,
  SERVER_ID: 54,
  PARAM_LIST: 55,
  MESSAGE: 56,
  MAX_SIZE: 57,
  RENEWAL_TIME: 58,
  REBINDING_TIME: 59,
  VENDOR_CLASS: 60,
  CLIENT_ID: 61,
  TFTP_SERVER: 66,
  BOOTFILE: 67,
  USER_CLASS: 77, // RFC 3004; iPXE sends the bare string "iPXE"
  RELAY_AGENT: 82, // RFC 3046
  CLIENT_ARCH: 93, // RFC 4578
  CLIENT_NDI: 94, // RFC 4578
  CLIENT_UUID: 97, // RFC 4578
  IPXE: 175, // iPXE encapsulated options (feature flags)
  END: 255,
} as const;

export interface DhcpPacket {
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  flags: number;
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  /** the 16-byte chaddr field as sent */
  chaddr: Buffer;
  sname: string;
  file: string;
  /** options by code, in the order first seen; repeated instances are concatenated (RFC 3396) */
  options: Map<number, Buffer>;
}

export type DecodeResult = { ok: true; packet: DhcpPacket } | { ok: false; error: string };

const HEADER = 236;
const COOKIE = 0x63825363; // RFC 2131 §3: 99.130.83.99
export const MIN_PACKET = HEADER + 4;
/** BOOTP (RFC 951) minimum message size; some PXE ROMs drop shorter replies. */
const MIN_REPLY = 300;
/** RFC 2131 §2: every client must accept 576-byte messages; larger only when option 57 says so. */
const DEFAULT_MAX = 576;

export const ipToString = (b: Buffer, off = 0): string => `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;

export function ipToInt(ip: string): number {
  // hand-rolled: this runs several times per request, and split + regex showed up in profiles
  let n = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || ++dots > 3) throw new Error(`not an IPv4 address: ${ip}`);
      n = n * 256 + part;
      part = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57 && digits < 3) {
      part = part * 10 + (c - 48);
      digits++;
      if (part > 255) throw new Error(`not an IPv4 address: ${ip}`);
    } else throw new Error(`not an IPv4 address: ${ip}`);
  }
  if (dots !== 3 || digits === 0) throw new Error(`not an IPv4 address: ${ip}`);
  return n * 256 + part;
}
export const intToIp = (n: number): string => `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
export const isIPv4 = (s: string): boolean => {
  try {
    ipToInt(s);
    return true;
  } catch {
    return false;
  }
};

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Lower-case colon MAC from chaddr when htype is Ethernet (1) and hlen 6; hex of hlen bytes otherwise. */
export function macOf(p: DhcpPacket): string {
  const len = Math.min(Math.max(p.hlen, 0), 16, p.chaddr.length);
  let s = '';
  for (let i = 0; i < len; i++) s += (i ? ':' : '') + HEX[p.chaddr[i]!];
  return s;
}

function cString(b: Buffer): string {
  const z = b.indexOf(0);
  return b.subarray(0, z < 0 ? b.length : z).toString('latin1');
}

/**
 * Walk one options area (RFC 2132 §2). Pad (0) is skipped, End (255) stops. A length that runs past
 * the area is an error; code 52 (overload) tells the caller to continue into file/sname.
 */
function readOptions(area: Buffer, into: Map<number, Buffer>): string | undefined {
  let i = 0;
  while (i < area.length) {
    const code = area[i]!;
    if (code === Opt.PAD) {
      i++;
      continue;
    }
    if (code === Opt.END) return undefined;
    if (i + 1 >= area.length) return `option ${code} has no length byte`;
    const len = area[i + 1]!;
    if (i + 2 + len > area.length) return `option ${code} length ${len} overruns the packet`;
    const val = area.subarray(i + 2, i + 2 + len);
    const prev = into.get(code);
    // RFC 3396 §7: several instances of one option are concatenated in order
    into.set(code, prev ? Buffer.concat([prev, val]) : val); // a view: dgram hands every message its own buffer
    i += 2 + len;
  }
  // A missing End option is tolerated: several real clients stop at the buffer end.
  return undefined;
}

/** Option values and chaddr are views into `buf` (no copies): do not reuse the buffer afterwards. */
export function decodePacket(buf: Buffer): DecodeResult {
  if (!Buffer.isBuffer(buf)) return { ok: false, error: 'not a buffer' };
  if (buf.length < MIN_PACKET) return { ok: false, error: `packet of ${buf.length} bytes is shorter than ${MIN_PACKET}` };
  if (buf.readUInt32BE(HEADER) !== COOKIE) return { ok: false, error: 'no DHCP magic cookie (plain BOOTP is not served)' };
  const op = buf[0]!;
  if (op !== BOOTREQUEST && op !== BOOTREPLY) return { ok: false, error: `bad op ${op}` };
  const options = new Map<number, Buffer>();
  const err = readOptions(buf.subarray(MIN_PACKET), options);
  if (err) return { ok: false, error: err };
  const fileField = buf.subarray(108, 236);
  const snameField = buf.subarray(44, 108);
  let file = cString(fileField);
  let sname = cString(snameField);
  // RFC 2132 §9.3 option overload: 1 = file carries options, 2 = sname, 3 = both; read file first.
  const overload = options.get(Opt.OVERLOAD)?.[0];
  if (overload === 1 || overload === 3) {
    const e = readOptions(fileField, options);
    if (e) return { ok: false, error: `in overloaded file field: ${e}` };
    file = '';
  }
  if (overload === 2 || overload === 3) {
    const e = readOptions(snameField, options);
    if (e) return { ok: false, error: `in overloaded sname field: ${e}` };
    sname = '';
  }
  return {
    ok: true,
    packet: {
      op,
      htype: buf[1]!,
      hlen: buf[2]!,
      hops: buf[3]!,
      xid: buf.readUInt32BE(4),
      secs: buf.readUInt16BE(8),
      flags: buf.readUInt16BE(10),
      ciaddr: ipToString(buf, 12),
      yiaddr: ipToString(buf, 16),
      siaddr: ipToString(buf, 20),
      giaddr: ipToString(buf, 24),
      chaddr: buf.subarray(28, 44),
      sname,
      file,
      options,
    },
  };
}

function writeIp(buf: Buffer, off: number, ip: string): void {
  buf.writeUInt32BE(ipToInt(ip) >>> 0, off);
}

/**
 * Encode a packet. Message type (53) goes first, as most servers do and some ROMs expect; options
 * longer than 255 bytes are split into several instances (RFC 3396). `maxSize` is the client's
 * option 57 (never below 576): options that would not fit are dropped, lowest priority last-in.
 */
export function encodePacket(p: DhcpPacket, maxSize = DEFAULT_MAX): Buffer {
  const limit = Math.max(maxSize, DEFAULT_MAX) - 28; // IP (20) + UDP (8) headers
  // one zero-filled buffer written in place: the zeros are also the BOOTP padding
  const out = Buffer.alloc(limit);
  out[0] = p.op;
  out[1] = p.htype;
  out[2] = p.hlen;
  out[3] = p.hops;
  out.writeUInt32BE(p.xid >>> 0, 4);
  out.writeUInt16BE(p.secs & 0xffff, 8);
  out.writeUInt16BE(p.flags & 0xffff, 10);
  writeIp(out, 12, p.ciaddr);
  writeIp(out, 16, p.yiaddr);
  writeIp(out, 20, p.siaddr);
  writeIp(out, 24, p.giaddr);
  p.chaddr.copy(out, 28, 0, Math.min(16, p.chaddr.length));
  if (p.sname) out.write(p.sname.slice(0, 63), 44, 'latin1');
  if (p.file) out.write(p.file.slice(0, 127), 108, 'latin1');
  out.writeUInt32BE(COOKIE, HEADER);
  let pos = MIN_PACKET;
  const put = (code: number, val: Buffer): void => {
    if (code === Opt.PAD || code === Opt.END) return;
    const need = val.length + 2 * Math.max(1, Math.ceil(val.length / 255));
    if (pos + need + 1 > limit) return; // keep room for End
    let i = 0;
    do {
      const n = Math.min(255, val.length - i);
      out[pos++] = code;
      out[pos++] = n;
      val.copy(out, pos, i, i + n);
      pos += n;
      i += 255;
    } while (i < val.length);
  };
  const type = p.options.get(Opt.MESSAGE_TYPE);
  if (type) put(Opt.MESSAGE_TYPE, type);
  for (const [code, val] of p.options) if (code !== Opt.MESSAGE_TYPE) put(code, val);
  out[pos++] = Opt.END;
  return out.subarray(0, Math.max(pos, MIN_REPLY));
}

// ---- typed option helpers ----

export const optU8 = (p: DhcpPacket, code: number): number | undefined => {
  const v = p.options.get(code);
  return v && v.length >= 1 ? v[0] : undefined;
};
export const optU16 = (p: DhcpPacket, code: number): number | undefined => {
  const v = p.options.get(code);
  return v && v.length >= 2 ? v.readUInt16BE(0) : undefined;
};
export const optU32 = (p: DhcpPacket, code: number): number | undefined => {
  const v = p.options.get(code);
  return v && v.length >= 4 ? v.readUInt32BE(0) : undefined;
};
export const optIp = (p: DhcpPacket, code: number): string | undefined => {
  const v = p.options.get(code);
  return v && v.length >= 4 ? ipToString(v) : undefined;
};
export const optString = (p: DhcpPacket, code: number): string | undefined => {
  const v = p.options.get(code);
  return v ? cString(v) : undefined;
};

export const u8 = (n: number): Buffer => Buffer.from([n & 255]);
export const u16 = (n: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n & 0xffff);
  return b;
};
export const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
export const ips = (list: readonly string[]): Buffer => Buffer.concat(list.map((ip) => u32(ipToInt(ip))));
export const str = (s: string): Buffer => Buffer.from(s, 'latin1');

/** Split an encapsulated option (43, 82, 175) into its sub-options; truncated tails are dropped. */
export function subOptions(v: Buffer | undefined): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  if (!v) return out;
  let i = 0;
  while (i < v.length) {
    const code = v[i]!;
    if (code === 0) {
      i++;
      continue;
    }
    if (code === 255 || i + 1 >= v.length) break;
    const len = v[i + 1]!;
    if (i + 2 + len > v.length) break;
    out.set(code, Buffer.from(v.subarray(i + 2, i + 2 + len)));
    i += 2 + len;
  }
  return out;
}

export function encodeSubOptions(subs: Iterable<[number, Buffer]>, end = false): Buffer {
  const parts: Buffer[] = [];
  for (const [code, val] of subs) parts.push(Buffer.from([code, val.length]), val.subarray(0, 255));
  if (end) parts.push(Buffer.from([255]));
  return Buffer.concat(parts);
}
