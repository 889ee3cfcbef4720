// A decoder for raw LLDP frames (IEEE 802.1AB-2016), for frames captured off the wire when no lldpd runs.
// There is no usable LLDP package on npm (the few that exist are unmaintained, partial, or need native
// capture bindings), so this module is ours. It is pure: bytes in, a typed record out; bad input throws
// LldpDecodeError with the offset, never anything else.
//
// Frame: dst(6) src(6) [802.1Q tag(4)] ethertype 0x88CC, then the LLDPDU, a sequence of TLVs:
//   header 16 bits = type (7 bits) | length (9 bits)                                  (802.1AB 8.4.1)
//   mandatory first: Chassis ID (1), Port ID (2), Time To Live (3); End of LLDPDU (0) last (8.2)
import type { LldpNeighbor } from '../../server/contract/facts.ts';

export class LldpDecodeError extends Error {
  override name = 'LldpDecodeError';
}

export const LLDP_ETHERTYPE = 0x88cc;

export interface Tlv {
  type: number;
  /** the TLV's value bytes as hex */
  hex: string;
}

export interface OrgTlv {
  oui: string;
  subtype: number;
  /** decoded fields for the IEEE 802.1 and 802.3 TLVs we know, else absent */
  decoded?: Record<string, unknown>;
  /** the information string as hex (always kept, so nothing is lost) */
  hex: string;
}

export interface ManagementAddress {
  addressSubtype: number;
  address: string;
  interfaceSubtype: number;
  interfaceNumber: number;
  oid?: string;
}

export interface LldpFrame {
  destination: string;
  source: string;
  vlanTag?: number;
  chassisId: { subtype: number; subtypeName: string; value: string };
  portId: { subtype: number; subtypeName: string; value: string };
  ttl: number;
  portDescription?: string;
  systemName?: string;
  systemDescription?: string;
  capabilities?: { system: string[]; enabled: string[] };
  managementAddresses: ManagementAddress[];
  org: OrgTlv[];
  /** reserved/unknown TLV types, kept as hex */
  unknown: Tlv[];
}

// 802.1AB-2016 Table 8-2
const CHASSIS_SUBTYPES: Record<number, string> = { 1: 'chassis-component', 2: 'interface-alias', 3: 'port-component', 4: 'mac', 5: 'network-address', 6: 'interface-name', 7: 'local' };
// 802.1AB-2016 Table 8-3
const PORT_SUBTYPES: Record<number, string> = { 1: 'interface-alias', 2: 'port-component', 3: 'mac', 4: 'network-address', 5: 'interface-name', 6: 'agent-circuit-id', 7: 'local' };
// 802.1AB-2016 Table 8-4, bit 0 first
const CAPABILITIES = ['other', 'repeater', 'bridge', 'wlan-ap', 'router', 'telephone', 'docsis', 'station', 'c-vlan', 's-vlan', 'tpmr'];

export const OUI_IEEE_8021 = '00:80:c2';
export const OUI_IEEE_8023 = '00:12:0f';

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
const mac = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':');
const text = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');

/** IANA address family numbers (RFC 3232 registry "Address Family Numbers"): 1 IPv4, 2 IPv6, 6 802 MAC. */
function networkAddress(b: Uint8Array): string {
  const family = b[0];
  const a = b.subarray(1);
  if (family === 1 && a.length === 4) return Array.from(a).join('.');
  if (family === 2 && a.length === 16) {
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(((a[i]! << 8) | a[i + 1]!).toString(16));
    return compressIpv6(groups);
  }
  if (family === 6 && a.length === 6) return mac(a);
  return `${family}:${hex(a)}`;
}

/** RFC 5952 §4.2: the longest run (≥2) of zero groups becomes "::". */
function compressIpv6(g: string[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < g.length; ) {
    if (g[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < g.length && g[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return g.join(':');
  return `${g.slice(0, best).join(':')}::${g.slice(best + bestLen).join(':')}`;
}

function idValue(kind: 'chassis' | 'port', subtype: number, b: Uint8Array): string {
  const macSubtype = kind === 'chassis' ? 4 : 3;
  const netSubtype = kind === 'chassis' ? 5 : 4;
  if (subtype === macSubtype && b.length === 6) return mac(b);
  if (subtype === netSubtype && b.length > 1) return networkAddress(b);
  // interface alias/name, locally assigned, components: SNMP DisplayStrings (printable ASCII)
  if (b.every((x) => x >= 0x20 && x < 0x7f)) return text(b);
  return hex(b);
}

function capNames(bits: number): string[] {
  return CAPABILITIES.filter((_, i) => bits & (1 << i));
}

function decodeOrg(oui: string, subtype: number, info: Uint8Array): Record<string, unknown> | undefined {
  const dv = new DataView(info.buffer, info.byteOffset, info.byteLength);
  if (oui === OUI_IEEE_8021) {
    // IEEE 802.1Q-2018 Annex D
    if (subtype === 1 && info.length === 2) return { name: 'port-vlan-id', pvid: dv.getUint16(0) };
    if (subtype === 2 && info.length === 3) return { name: 'port-protocol-vlan-id', supported: !!(info[0]! & 2), enabled: !!(info[0]! & 4), ppvid: dv.getUint16(1) };
    if (subtype === 3 && info.length >= 3 && info.length >= 3 + info[2]!) return { name: 'vlan-name', vid: dv.getUint16(0), vlanName: text(info.subarray(3, 3 + info[2]!)) };
    if (subtype === 4 && info.length >= 1) return { name: 'protocol-identity', protocol: hex(info.subarray(1, 1 + info[0]!)) };
    if (subtype === 7 && info.length === 5) return { name: 'link-aggregation', capable: !!(info[0]! & 1), enabled: !!(info[0]! & 2), aggregatedPortId: dv.getUint32(1) };
    return undefined;
  }
  if (oui === OUI_IEEE_8023) {
    // IEEE 802.3-2018 Clause 79
    if (subtype === 1 && info.length === 5)
      return { name: 'mac-phy', autonegSupported: !!(info[0]! & 1), autonegEnabled: !!(info[0]! & 2), advertised: dv.getUint16(1), mauType: dv.getUint16(3) };
    if (subtype === 2 && info.length >= 3)
      return {
        name: 'power-via-mdi',
        portClassPse: !!(info[0]! & 1),
        pseSupported: !!(info[0]! & 2),
        pseEnabled: !!(info[0]! & 4),
        pairControl: !!(info[0]! & 8),
        powerPair: info[1],
        // the class field is encoded as class + 1 (79.3.2.4)
        powerClass: info[2]! - 1,
      };
    if (subtype === 3 && info.length === 5) return { name: 'link-aggregation', capable: !!(info[0]! & 1), enabled: !!(info[0]! & 2), aggregatedPortId: dv.getUint32(1) };
    if (subtype === 4 && info.length === 2) return { name: 'max-frame-size', bytes: dv.getUint16(0) };
    return undefined;
  }
  return undefined;
}

/** Decodes one Ethernet frame carrying an LLDPDU. */
export function decodeLldpFrame(frame: Uint8Array): LldpFrame {
  if (frame.length < 14) throw new LldpDecodeError(`frame is ${frame.length} bytes: shorter than an Ethernet header`);
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  let off = 12;
  let ethertype = dv.getUint16(off);
  let vlanTag: number | undefined;
  if (ethertype === 0x8100) {
    if (frame.length < 18) throw new LldpDecodeError('802.1Q tag truncated');
    vlanTag = dv.getUint16(14) & 0x0fff;
    off = 16;
    ethertype = dv.getUint16(off);
  }
  if (ethertype !== LLDP_ETHERTYPE) throw new LldpDecodeError(`ethertype 0x${ethertype.toString(16).padStart(4, '0')} is not LLDP (0x88cc)`);
  return decodeLldpdu(frame.subarray(off + 2), { destination: mac(frame.subarray(0, 6)), source: mac(frame.subarray(6, 12)), vlanTag });
}

/** Decodes the LLDPDU (the TLVs after the ethertype). */
export function decodeLldpdu(pdu: Uint8Array, eth: { destination: string; source: string; vlanTag?: number | undefined } = { destination: '', source: '' }): LldpFrame {
  const tlvs: Array<{ type: number; off: number; value: Uint8Array }> = [];
  let off = 0;
  let ended = false;
  while (off < pdu.length) {
    if (off + 2 > pdu.length) throw new LldpDecodeError(`TLV header truncated at offset ${off}`);
    const h = (pdu[off]! << 8) | pdu[off + 1]!;
    const type = h >> 9;
    const len = h & 0x1ff;
    if (off + 2 + len > pdu.length) throw new LldpDecodeError(`TLV type ${type} at offset ${off} claims ${len} bytes, only ${pdu.length - off - 2} left`);
    if (type === 0) {
      ended = true;
      break;
    }
    tlvs.push({ type, off, value: pdu.subarray(off + 2, off + 2 + len) });
    off += 2 + len;
  }
  if (!ended) throw new LldpDecodeError('no End of LLDPDU TLV');
  // 802.1AB 8.2: the first three TLVs are Chassis ID, Port ID and TTL, in that order
  const [c, p, t] = tlvs;
  if (c?.type !== 1 || p?.type !== 2 || t?.type !== 3) {
    throw new LldpDecodeError(`LLDPDU must start with Chassis ID, Port ID, TTL; got types ${tlvs.slice(0, 3).map((x) => x.type).join(', ')}`);
  }
  if (c.value.length < 2 || p.value.length < 2) throw new LldpDecodeError('Chassis ID and Port ID need a subtype and at least one byte');
  if (t.value.length !== 2) throw new LldpDecodeError(`TTL TLV is ${t.value.length} bytes, must be 2`);

  const out: LldpFrame = {
    destination: eth.destination,
    source: eth.source,
    ...(eth.vlanTag !== undefined ? { vlanTag: eth.vlanTag } : {}),
    chassisId: { subtype: c.value[0]!, subtypeName: CHASSIS_SUBTYPES[c.value[0]!] ?? 'reserved', value: idValue('chassis', c.value[0]!, c.value.subarray(1)) },
    portId: { subtype: p.value[0]!, subtypeName: PORT_SUBTYPES[p.value[0]!] ?? 'reserved', value: idValue('port', p.value[0]!, p.value.subarray(1)) },
    ttl: (t.value[0]! << 8) | t.value[1]!,
    managementAddresses: [],
    org: [],
    unknown: [],
  };
  for (const { type, off: at, value } of tlvs.slice(3)) {
    switch (type) {
      case 4:
        out.portDescription = text(value);
        break;
      case 5:
        out.systemName = text(value);
        break;
      case 6:
        out.systemDescription = text(value);
        break;
      case 7: {
        if (value.length !== 4) throw new LldpDecodeError(`System Capabilities TLV at offset ${at} is ${value.length} bytes, must be 4`);
        out.capabilities = { system: capNames((value[0]! << 8) | value[1]!), enabled: capNames((value[2]! << 8) | value[3]!) };
        break;
      }
      case 8: {
        // 802.1AB 8.5.9: addr-string-length(1, counts the subtype) subtype(1) addr, if-subtype(1) if-number(4), oid-length(1) oid
        const alen = value[0] ?? 0;
        if (alen < 2 || value.length < 1 + alen + 5 + 1) throw new LldpDecodeError(`Management Address TLV at offset ${at} is malformed`);
        const subtype = value[1]!;
        const addr = value.subarray(2, 1 + alen);
        const rest = value.subarray(1 + alen);
        const oidLen = rest[5]!;
        if (rest.length < 6 + oidLen) throw new LldpDecodeError(`Management Address TLV at offset ${at}: OID runs past the TLV`);
        const dvr = new DataView(rest.buffer, rest.byteOffset, rest.byteLength);
        const m: ManagementAddress = {
          addressSubtype: subtype,
          address: networkAddress(Uint8Array.of(subtype, ...addr)),
          interfaceSubtype: rest[0]!,
          interfaceNumber: dvr.getUint32(1),
        };
        if (oidLen) m.oid = hex(rest.subarray(6, 6 + oidLen));
        out.managementAddresses.push(m);
        break;
      }
      case 127: {
        if (value.length < 4) throw new LldpDecodeError(`Organizationally Specific TLV at offset ${at} is shorter than OUI + subtype`);
        const oui = mac(value.subarray(0, 3));
        const subtype = value[3]!;
        const info = value.subarray(4);
        const decoded = decodeOrg(oui, subtype, info);
        out.org.push({ oui, subtype, hex: hex(info), ...(decoded ? { decoded } : {}) });
        break;
      }
      default:
        out.unknown.push({ type, hex: hex(value) });
    }
  }
  return out;
}

/** The facts-document view of a decoded frame, as seen on local interface `iface`. */
export function frameToNeighbor(iface: string, f: LldpFrame): LldpNeighbor {
  const n: LldpNeighbor = {
    interface: iface,
    chassisId: f.chassisId.value,
    chassisIdSubtype: f.chassisId.subtypeName,
    portId: f.portId.value,
    portIdSubtype: f.portId.subtypeName,
    ttl: f.ttl,
  };
  if (f.systemName !== undefined) n.systemName = f.systemName;
  if (f.systemDescription !== undefined) n.systemDescription = f.systemDescription;
  if (f.portDescription !== undefined) n.portDescription = f.portDescription;
  if (f.managementAddresses.length) n.managementAddresses = f.managementAddresses.map((m) => m.address);
  const pvid = f.org.find((o) => o.decoded?.['name'] === 'port-vlan-id');
  if (pvid) n.vlan = pvid.decoded!['pvid'] as number;
  return n;
}

/** "0180c2…" (whitespace allowed) → bytes; throws on odd length or non-hex. */
export function hexToBytes(s: string): Uint8Array {
  const h = s.replace(/\s+/g, '');
  if (h.length % 2 || /[^0-9a-fA-F]/.test(h)) throw new LldpDecodeError('not a hex string');
  return Uint8Array.from(Buffer.from(h, 'hex'));
}

/**
 * Frames from `tcpdump -xx` text: a header line per packet, then "\t0x0010:  0180 c200 …" hex lines
 * (-xx includes the link-level header, so each frame starts at the destination MAC).
 */
export function parseTcpdumpHex(text: string): Uint8Array[] {
  const frames: string[] = [];
  let cur: string | undefined;
  for (const line of text.split('\n')) {
    const m = /^\s+0x([0-9a-f]{4}):\s+((?:[0-9a-f]{2,4}\s?)+)/.exec(line);
    if (m) {
      if (m[1] === '0000' || cur === undefined) {
        if (cur) frames.push(cur);
        cur = '';
      }
      cur += m[2]!.replace(/\s+/g, '');
    }
  }
  if (cur) frames.push(cur);
  return frames.map(hexToBytes);
}
