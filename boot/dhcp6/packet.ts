// DHCPv6 packet codec (RFC 8415 §8–9 message formats, §21 options; RFC 5970 network boot options 59–62).
// Issue 19 item 4: the same treatment as the DHCPv4 codec (boot/dhcp/packet.ts), before any DHCPv6 server logic.
//
// - The decoder never throws: bad input yields { ok: false, error } naming where the packet is wrong
//   ("option 3 (IA_NA) > option 5 (IAADDR): length 20, needs at least 24"), so a hostile packet costs one log line.
// - Decoding is lossless: for every packet that decodes, encode(decode(bytes)) gives the same bytes back. Options
//   we do not model are kept raw ({ kind: 'raw' }) and re-encoded unchanged; a modelled option whose bytes could
//   not be reproduced (a status message that is not UTF-8, an odd-length ORO) is an error, not a silent rewrite.
// - Relay messages (RELAY-FORW/RELAY-REPL, §9) carry the relayed message in option 9, decoded recursively; the
//   depth is bounded (MAX_RELAY_DEPTH) so a packet of nested relay headers cannot exhaust the stack.

/** RFC 8415 §7.3 message types (and RFC 5007 leasequery, RFC 7341 DHCPv4-over-DHCPv6, same client format). */
export const MsgType = {
  SOLICIT: 1,
  ADVERTISE: 2,
  REQUEST: 3,
  CONFIRM: 4,
  RENEW: 5,
  REBIND: 6,
  REPLY: 7,
  RELEASE: 8,
  DECLINE: 9,
  RECONFIGURE: 10,
  INFORMATION_REQUEST: 11,
  RELAY_FORW: 12,
  RELAY_REPL: 13,
} as const;

/** Option codes this codec models (RFC 8415 §21, RFC 3646 for 23, RFC 5970 for 59–62). */
export const Opt6 = {
  CLIENTID: 1,
  SERVERID: 2,
  IA_NA: 3,
  IAADDR: 5,
  ORO: 6,
  ELAPSED_TIME: 8,
  RELAY_MSG: 9,
  STATUS_CODE: 13,
  VENDOR_CLASS: 16,
  DNS_SERVERS: 23,
  BOOTFILE_URL: 59,
  BOOTFILE_PARAM: 60,
  CLIENT_ARCH_TYPE: 61,
  NII: 62,
} as const;

const OPTION_NAMES: Record<number, string> = {
  1: 'client id',
  2: 'server id',
  3: 'IA_NA',
  5: 'IAADDR',
  6: 'ORO',
  8: 'elapsed time',
  9: 'relay message',
  13: 'status code',
  16: 'vendor class',
  23: 'DNS servers',
  59: 'boot-file URL',
  60: 'boot-file parameters',
  61: 'client arch type',
  62: 'NII',
};

/** RFC 8415 §11: DUID-LLT (1), DUID-EN (2), DUID-LL (3), DUID-UUID (4, RFC 6355); other types kept raw. */
export type Duid =
  | { type: 1; hwType: number; time: number; linkLayer: Buffer }
  | { type: 2; enterprise: number; id: Buffer }
  | { type: 3; hwType: number; linkLayer: Buffer }
  | { type: 4; uuid: Buffer }
  | { type: number; raw: Buffer };

export type Option6 =
  | { kind: 'clientId'; duid: Duid }
  | { kind: 'serverId'; duid: Duid }
  | { kind: 'iaNa'; iaid: number; t1: number; t2: number; options: Option6[] }
  | { kind: 'iaAddr'; address: string; preferred: number; valid: number; options: Option6[] }
  | { kind: 'oro'; codes: number[] }
  /** hundredths of a second since the client began the exchange (§21.9) */
  | { kind: 'elapsedTime'; centiseconds: number }
  | { kind: 'relayMessage'; message: Dhcp6Message }
  | { kind: 'statusCode'; status: number; message: string }
  | { kind: 'vendorClass'; enterprise: number; data: Buffer[] }
  | { kind: 'dnsServers'; servers: string[] }
  | { kind: 'bootfileUrl'; url: string }
  | { kind: 'bootfileParams'; params: string[] }
  /** RFC 4578 §2.1 processor architecture types, as in DHCPv4 option 93 (16 = x64 UEFI HTTP) */
  | { kind: 'clientArch'; arches: number[] }
  | { kind: 'nii'; type: number; major: number; minor: number }
  | { kind: 'raw'; code: number; data: Buffer };

export interface Dhcp6ClientMessage {
  /** any type but RELAY-FORW/RELAY-REPL: SOLICIT, ADVERTISE, REQUEST, REPLY, … */
  type: number;
  /** 24 bits */
  transactionId: number;
  options: Option6[];
}

export interface Dhcp6RelayMessage {
  type: typeof MsgType.RELAY_FORW | typeof MsgType.RELAY_REPL;
  hopCount: number;
  linkAddress: string;
  peerAddress: string;
  options: Option6[];
}

export type Dhcp6Message = Dhcp6ClientMessage | Dhcp6RelayMessage;
export type Decode6Result = { ok: true; message: Dhcp6Message } | { ok: false; error: string };

/** RFC 8415 §7.6 HOP_COUNT_LIMIT is 8; nesting beyond this many relay headers is refused outright. */
export const MAX_RELAY_DEPTH = 32;
/** RFC 8415 §11.1: a DUID is at most 128 octets, not counting its 2-octet type. */
const MAX_DUID = 130;

export const isRelay = (m: Dhcp6Message): m is Dhcp6RelayMessage => m.type === MsgType.RELAY_FORW || m.type === MsgType.RELAY_REPL;

// ---- IPv6 addresses (RFC 5952 text form) ----

export function ip6ToString(b: Buffer, off = 0): string {
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push(b.readUInt16BE(off + i * 2));
  // RFC 5952 §4.2.3: the longest run of two or more zero words becomes "::" (the first one on a tie)
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) (best = i), (bestLen = j - i);
    i = j;
  }
  const hex = (ws: number[]) => ws.map((w) => w.toString(16)).join(':');
  if (best < 0) return hex(words);
  return `${hex(words.slice(0, best))}::${hex(words.slice(best + bestLen))}`;
}

export function ip6ToBuffer(s: string): Buffer {
  const bad = () => new Error(`not an IPv6 address: ${s}`);
  const parts = s.split('::');
  if (parts.length > 2) throw bad();
  const words = (t: string): number[] => {
    if (t === '') return [];
    return t.split(':').map((w) => {
      if (!/^[0-9a-fA-F]{1,4}$/.test(w)) throw bad();
      return parseInt(w, 16);
    });
  };
  const head = words(parts[0]!);
  const tail = parts.length === 2 ? words(parts[1]!) : [];
  const fill = 8 - head.length - tail.length;
  if (parts.length === 2 ? fill < 1 : fill !== 0) throw bad();
  const all = [...head, ...Array<number>(parts.length === 2 ? fill : 0).fill(0), ...tail];
  const out = Buffer.alloc(16);
  all.forEach((w, i) => out.writeUInt16BE(w, i * 2));
  return out;
}

// ---- decoding ----

class Malformed extends Error {}

const optName = (code: number) => `option ${code}${OPTION_NAMES[code] ? ` (${OPTION_NAMES[code]})` : ''}`;

/** UTF-8 text that must come back byte for byte (RFC 8415 §21.13, RFC 5970 §3.2), else the packet is malformed */
function utf8(b: Buffer, what: string): string {
  const s = b.toString('utf8');
  if (!Buffer.from(s, 'utf8').equals(b)) throw new Malformed(`${what} is not valid UTF-8`);
  return s;
}

function decodeDuid(v: Buffer): Duid {
  if (v.length < 2) throw new Malformed(`DUID of ${v.length} bytes has no type`);
  if (v.length > MAX_DUID) throw new Malformed(`DUID of ${v.length} bytes is longer than ${MAX_DUID} (RFC 8415 §11.1)`);
  const type = v.readUInt16BE(0);
  const need = (n: number, name: string) => {
    if (v.length < n) throw new Malformed(`${name} of ${v.length} bytes is shorter than ${n}`);
  };
  switch (type) {
    case 1:
      need(8, 'DUID-LLT');
      return { type, hwType: v.readUInt16BE(2), time: v.readUInt32BE(4), linkLayer: Buffer.from(v.subarray(8)) };
    case 2:
      need(6, 'DUID-EN');
      return { type, enterprise: v.readUInt32BE(2), id: Buffer.from(v.subarray(6)) };
    case 3:
      need(4, 'DUID-LL');
      return { type, hwType: v.readUInt16BE(2), linkLayer: Buffer.from(v.subarray(4)) };
    case 4:
      if (v.length !== 18) throw new Malformed(`DUID-UUID of ${v.length} bytes, must be 18 (RFC 6355)`);
      return { type, uuid: Buffer.from(v.subarray(2)) };
    default:
      return { type, raw: Buffer.from(v.subarray(2)) };
  }
}

function u16List(v: Buffer, what: string): number[] {
  if (v.length % 2) throw new Malformed(`${what} has odd length ${v.length}`);
  const out: number[] = [];
  for (let i = 0; i < v.length; i += 2) out.push(v.readUInt16BE(i));
  return out;
}

/** length-prefixed (2 bytes) items filling the whole value: option 16's vendor-class-data, option 60's parameters */
function lengthPrefixed(v: Buffer, what: string): Buffer[] {
  const out: Buffer[] = [];
  let i = 0;
  while (i < v.length) {
    if (i + 2 > v.length) throw new Malformed(`${what}: item length cut off at byte ${i}`);
    const n = v.readUInt16BE(i);
    if (i + 2 + n > v.length) throw new Malformed(`${what}: item of ${n} bytes at byte ${i} overruns the option`);
    out.push(Buffer.from(v.subarray(i + 2, i + 2 + n)));
    i += 2 + n;
  }
  return out;
}

function decodeOption(code: number, v: Buffer, depth: number): Option6 {
  const min = (n: number) => {
    if (v.length < n) throw new Malformed(`length ${v.length}, needs at least ${n}`);
  };
  const exactly = (n: number) => {
    if (v.length !== n) throw new Malformed(`length ${v.length}, must be ${n}`);
  };
  switch (code) {
    case Opt6.CLIENTID:
    case Opt6.SERVERID:
      return code === Opt6.CLIENTID ? { kind: 'clientId', duid: decodeDuid(v) } : { kind: 'serverId', duid: decodeDuid(v) };
    case Opt6.IA_NA:
      min(12);
      return { kind: 'iaNa', iaid: v.readUInt32BE(0), t1: v.readUInt32BE(4), t2: v.readUInt32BE(8), options: decodeOptions(v.subarray(12), depth) };
    case Opt6.IAADDR:
      min(24);
      return { kind: 'iaAddr', address: ip6ToString(v), preferred: v.readUInt32BE(16), valid: v.readUInt32BE(20), options: decodeOptions(v.subarray(24), depth) };
    case Opt6.ORO:
      return { kind: 'oro', codes: u16List(v, 'requested option list') };
    case Opt6.ELAPSED_TIME:
      exactly(2);
      return { kind: 'elapsedTime', centiseconds: v.readUInt16BE(0) };
    case Opt6.RELAY_MSG:
      return { kind: 'relayMessage', message: decodeMessage(v, depth + 1) };
    case Opt6.STATUS_CODE:
      min(2);
      return { kind: 'statusCode', status: v.readUInt16BE(0), message: utf8(v.subarray(2), 'status message') };
    case Opt6.VENDOR_CLASS:
      min(4);
      return { kind: 'vendorClass', enterprise: v.readUInt32BE(0), data: lengthPrefixed(v.subarray(4), 'vendor-class-data') };
    case Opt6.DNS_SERVERS: {
      if (v.length % 16) throw new Malformed(`length ${v.length} is not a multiple of 16`);
      const servers: string[] = [];
      for (let i = 0; i < v.length; i += 16) servers.push(ip6ToString(v, i));
      return { kind: 'dnsServers', servers };
    }
    case Opt6.BOOTFILE_URL:
      return { kind: 'bootfileUrl', url: utf8(v, 'boot-file URL') };
    case Opt6.BOOTFILE_PARAM:
      return { kind: 'bootfileParams', params: lengthPrefixed(v, 'boot-file parameters').map((p) => utf8(p, 'boot-file parameter')) };
    case Opt6.CLIENT_ARCH_TYPE:
      min(2);
      return { kind: 'clientArch', arches: u16List(v, 'architecture list') };
    case Opt6.NII:
      exactly(3);
      return { kind: 'nii', type: v[0]!, major: v[1]!, minor: v[2]! };
    default:
      return { kind: 'raw', code, data: Buffer.from(v) };
  }
}

/** RFC 8415 §21.1: option-code (2), option-len (2), value; the area must be filled exactly. */
function decodeOptions(area: Buffer, depth: number): Option6[] {
  const out: Option6[] = [];
  let i = 0;
  while (i < area.length) {
    if (i + 4 > area.length) throw new Malformed(`${area.length - i} stray bytes after the last option`);
    const code = area.readUInt16BE(i);
    const len = area.readUInt16BE(i + 2);
    if (i + 4 + len > area.length) throw new Malformed(`${optName(code)} of length ${len} overruns the message by ${i + 4 + len - area.length} bytes`);
    try {
      out.push(decodeOption(code, area.subarray(i + 4, i + 4 + len), depth));
    } catch (err) {
      if (err instanceof Malformed) throw new Malformed(`${optName(code)}${err.message.startsWith('option ') ? ' > ' : ': '}${err.message}`);
      throw err;
    }
    i += 4 + len;
  }
  return out;
}

function decodeMessage(b: Buffer, depth: number): Dhcp6Message {
  if (depth > MAX_RELAY_DEPTH) throw new Malformed(`relay messages nested deeper than ${MAX_RELAY_DEPTH}`);
  if (b.length < 4) throw new Malformed(`message of ${b.length} bytes is shorter than 4`);
  const type = b[0]!;
  if (type === 0) throw new Malformed('message type 0 is reserved');
  if (type === MsgType.RELAY_FORW || type === MsgType.RELAY_REPL) {
    if (b.length < 34) throw new Malformed(`relay message of ${b.length} bytes is shorter than its 34-byte header`);
    return { type, hopCount: b[1]!, linkAddress: ip6ToString(b, 2), peerAddress: ip6ToString(b, 18), options: decodeOptions(b.subarray(34), depth) };
  }
  return { type, transactionId: b.readUIntBE(1, 3), options: decodeOptions(b.subarray(4), depth) };
}

/** Decode one DHCPv6 UDP payload. Never throws. Values are copies: the buffer may be reused afterwards. */
export function decodeDhcp6(buf: Buffer): Decode6Result {
  if (!Buffer.isBuffer(buf)) return { ok: false, error: 'not a buffer' };
  try {
    return { ok: true, message: decodeMessage(buf, 0) };
  } catch (err) {
    if (err instanceof Malformed) return { ok: false, error: err.message };
    return { ok: false, error: `undecodable: ${(err as Error).message}` };
  }
}

// ---- encoding ----

const u16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
};
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const prefixed = (items: Buffer[]) => Buffer.concat(items.flatMap((d) => [u16(d.length), d]));

/** A DUID as its wire bytes (type included): lease keys and server-id comparison use these. */
export function encodeDuid(d: Duid): Buffer {
  const head = u16(d.type);
  if ('raw' in d) return Buffer.concat([head, d.raw]);
  switch (d.type) {
    case 1: {
      const x = d as Extract<Duid, { type: 1 }>;
      return Buffer.concat([head, u16(x.hwType), u32(x.time), x.linkLayer]);
    }
    case 2: {
      const x = d as Extract<Duid, { type: 2 }>;
      return Buffer.concat([head, u32(x.enterprise), x.id]);
    }
    case 3: {
      const x = d as Extract<Duid, { type: 3 }>;
      return Buffer.concat([head, u16(x.hwType), x.linkLayer]);
    }
    case 4: {
      const x = d as Extract<Duid, { type: 4 }>;
      if (x.uuid.length !== 16) throw new RangeError(`DUID-UUID needs 16 bytes, got ${x.uuid.length}`);
      return Buffer.concat([head, x.uuid]);
    }
    default:
      throw new RangeError(`DUID type ${(d as Duid).type} needs its bytes as { raw }`);
  }
}

function optionValue(o: Option6): [number, Buffer] {
  switch (o.kind) {
    case 'clientId':
      return [Opt6.CLIENTID, encodeDuid(o.duid)];
    case 'serverId':
      return [Opt6.SERVERID, encodeDuid(o.duid)];
    case 'iaNa':
      return [Opt6.IA_NA, Buffer.concat([u32(o.iaid), u32(o.t1), u32(o.t2), encodeOptions(o.options)])];
    case 'iaAddr':
      return [Opt6.IAADDR, Buffer.concat([ip6ToBuffer(o.address), u32(o.preferred), u32(o.valid), encodeOptions(o.options)])];
    case 'oro':
      return [Opt6.ORO, Buffer.concat(o.codes.map(u16))];
    case 'elapsedTime':
      return [Opt6.ELAPSED_TIME, u16(o.centiseconds)];
    case 'relayMessage':
      return [Opt6.RELAY_MSG, encodeDhcp6(o.message)];
    case 'statusCode':
      return [Opt6.STATUS_CODE, Buffer.concat([u16(o.status), Buffer.from(o.message, 'utf8')])];
    case 'vendorClass':
      return [Opt6.VENDOR_CLASS, Buffer.concat([u32(o.enterprise), prefixed(o.data)])];
    case 'dnsServers':
      return [Opt6.DNS_SERVERS, Buffer.concat(o.servers.map(ip6ToBuffer))];
    case 'bootfileUrl':
      return [Opt6.BOOTFILE_URL, Buffer.from(o.url, 'utf8')];
    case 'bootfileParams':
      return [Opt6.BOOTFILE_PARAM, prefixed(o.params.map((p) => Buffer.from(p, 'utf8')))];
    case 'clientArch':
      return [Opt6.CLIENT_ARCH_TYPE, Buffer.concat(o.arches.map(u16))];
    case 'nii':
      return [Opt6.NII, Buffer.from([o.type, o.major, o.minor])];
    case 'raw':
      return [o.code, o.data];
  }
}

function encodeOptions(options: Option6[]): Buffer {
  return Buffer.concat(
    options.map((o) => {
      const [code, value] = optionValue(o);
      if (value.length > 0xffff) throw new RangeError(`${optName(code)} of ${value.length} bytes does not fit its 16-bit length`);
      return Buffer.concat([u16(code), u16(value.length), value]);
    }),
  );
}

/** Encode a message. Throws RangeError on values that do not fit their fields (a bug in the caller). */
export function encodeDhcp6(m: Dhcp6Message): Buffer {
  if (isRelay(m)) return Buffer.concat([Buffer.from([m.type, m.hopCount]), ip6ToBuffer(m.linkAddress), ip6ToBuffer(m.peerAddress), encodeOptions(m.options)]);
  const head = Buffer.alloc(4);
  head[0] = m.type;
  head.writeUIntBE(m.transactionId, 1, 3);
  return Buffer.concat([head, encodeOptions(m.options)]);
}

// ---- reading ----

/** The first option of a kind, typed: find(msg.options, 'bootfileUrl')?.url */
export function findOption<K extends Option6['kind']>(options: Option6[], kind: K): Extract<Option6, { kind: K }> | undefined {
  return options.find((o) => o.kind === kind) as Extract<Option6, { kind: K }> | undefined;
}

/** The client message inside any number of relay headers (RFC 8415 §9). */
export function innermost(m: Dhcp6Message): Dhcp6ClientMessage | undefined {
  let cur: Dhcp6Message | undefined = m;
  while (cur && isRelay(cur)) cur = findOption(cur.options, 'relayMessage')?.message;
  return cur;
}
