// What a DHCPv6 client is told to boot (RFC 5970 option 59), and who it is. Pure: a parsed message in, values out.
import { Arch } from '../dhcp/classify.ts';
import { decideBootfile } from '../dhcp/bootfile.ts';
import { type Dhcp6ClientMessage, type Duid, type Option6, findOption, ip6ToBuffer } from './packet.ts';

/** RFC 8415 §21.15 User Class, §21.14 Rapid Commit, RFC 6939 client link-layer address (from a relay). */
export const Opt6Extra = { PREFERENCE: 7, RAPID_COMMIT: 14, USER_CLASS: 15, INTERFACE_ID: 18, CLIENT_LINKLAYER_ADDR: 79 } as const;

/** RFC 8415 §21.13 status codes */
export const Status = { SUCCESS: 0, UNSPEC_FAIL: 1, NO_ADDRS_AVAIL: 2, NO_BINDING: 3, NOT_ON_LINK: 4, USE_MULTICAST: 5 } as const;

export interface Boot6Urls {
  /** base of the boot HTTP server over IPv6, e.g. http://[fd5b::1]:8080 (no trailing slash) */
  httpBase: string;
  /** base for UEFI PXE over IPv6, e.g. tftp://[fd5b::1] (no trailing slash) */
  tftpBase: string;
  uefi: string;
  uefiHttp: string;
  script: string;
  /** the signed shim for x64 UEFI nodes whose profile says `bootloader: shim-grub` (docs/secure-boot.md) */
  secureBoot: string;
}

export interface Boot6 {
  url: string;
  /** UEFI HTTP boot takes only a reply that carries vendor class "HTTPClient" (UEFI 2.5+ §24.7.2, option 16 in DHCPv6) */
  vendorClass?: 'HTTPClient';
}

export interface Client6 {
  /** DUID bytes as hex (the lease key with the IAID) */
  duid: string;
  duidType: number;
  /** MAC, when one can be told: RFC 6939 option from a relay, DUID-LL/LLT over Ethernet, or an EUI-64 link-local source */
  mac?: string;
  /** option 61 (RFC 5970 §3.3), the client's first (preferred) architecture */
  arch?: number;
  /** option 15 contains "iPXE" (iPXE sends it, length-prefixed as RFC 8415 §21.15 says) */
  isIpxe: boolean;
  /** codes from the ORO (option 6) */
  oro: number[];
  rapidCommit: boolean;
}

const macText = (b: Buffer): string => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');

/**
 * The MAC behind a DHCPv6 client, in the order Kea's `mac-sources` uses by default: a relay's RFC 6939 option
 * (the relay saw the frame), a DUID that embeds an Ethernet address (type 1/3, hardware type 1), else the
 * modified EUI-64 interface identifier of the client's link-local address (RFC 4291 appendix A: ff:fe in the middle,
 * universal/local bit flipped). iPXE and EDK2 send DUID-UUID, so the link-local address is often the only source.
 */
export function clientMac(duid: Duid, linkLayerOption: Buffer | undefined, peer: string | undefined): string | undefined {
  if (linkLayerOption && linkLayerOption.length === 8 && linkLayerOption.readUInt16BE(0) === 1) return macText(linkLayerOption.subarray(2));
  if ((duid.type === 1 || duid.type === 3) && 'hwType' in duid && duid.hwType === 1 && duid.linkLayer.length === 6) return macText(duid.linkLayer);
  if (!peer) return undefined;
  let peerBytes: Buffer;
  try {
    peerBytes = ip6ToBuffer(peer.replace(/%.*$/, ''));
  } catch {
    return undefined;
  }
  // fe80::/10, and the interface identifier is a modified EUI-64 (ff:fe in bytes 11–12)
  if (peerBytes[0] === 0xfe && (peerBytes[1]! & 0xc0) === 0x80 && peerBytes[11] === 0xff && peerBytes[12] === 0xfe) {
    const b = Buffer.from([peerBytes[8]! ^ 0x02, peerBytes[9]!, peerBytes[10]!, peerBytes[13]!, peerBytes[14]!, peerBytes[15]!]);
    return macText(b);
  }
  return undefined;
}

/** RFC 8415 §21.15: user-class-data items, each with a 2-byte length; a value that does not parse so is one string. */
export function userClasses(v: Buffer | undefined): string[] {
  if (!v || v.length === 0) return [];
  const out: string[] = [];
  for (let i = 0; i < v.length; ) {
    if (i + 2 > v.length) return [v.toString('latin1')];
    const n = v.readUInt16BE(i);
    if (n === 0 || i + 2 + n > v.length) return [v.toString('latin1')];
    out.push(v.subarray(i + 2, i + 2 + n).toString('latin1'));
    i += 2 + n;
  }
  return out;
}

/** an option the codec keeps raw (7, 14, 15, 18, 79), by code */
export const rawOption = (m: { options: Option6[] }, code: number): Buffer | undefined => {
  const o = m.options.find((x) => x.kind === 'raw' && x.code === code);
  return o && o.kind === 'raw' ? o.data : undefined;
};

/**
 * The boot-file URL for a client, or null: DHCPv4's decision (boot/dhcp/bootfile.ts decideBootfile), so the order
 * and the boot loader are the same on both protocols:
 * 1. iPXE first: once loaded it asks again with the same arch as the firmware; handing it the binary again would
 *    chain-load forever. Its user class "iPXE" gets the script.
 * 2. UEFI HTTP boot (arch 16, x64): the URL of the x64 iPXE over HTTP, with vendor class HTTPClient.
 * 3. UEFI PXE (arch 7, or 9 which x64 firmware also sends): EDK2's PXE over IPv6 loads only tftp:// URLs
 *    (RFC 5970 §3.1 allows any scheme; the firmware does not), so the EFI iPXE over TFTP.
 * In 2 and 3 a known node whose profile says `shim-grub` (`loader`, from the boot backend) gets the signed shim
 * instead, as over IPv4. BIOS PXE (arch 0) has no IPv6 (PXE 2.1 is IPv4 only) and other arches get nothing: we
 * ship only x64 iPXE.
 *
 * DHCPv6 has no option 60 to say PXEClient or HTTPClient: option 61 (RFC 5970 §3.3) is sent only by network-boot
 * firmware, and its value says which kind (15, 16: UEFI HTTP boot, IANA "Processor Architecture Types").
 */
export function chooseBootUrl6(client: Pick<Client6, 'isIpxe' | 'arch'>, urls: Boot6Urls, loader: 'ipxe' | 'shim-grub' = 'ipxe'): Boot6 | null {
  const isHttpClient = client.arch === Arch.EFI_IA32_HTTP || client.arch === Arch.EFI_X64_HTTP;
  const d = decideBootfile({ isIpxe: client.isIpxe, isHttpClient, isPxe: client.arch !== undefined && client.arch !== Arch.BIOS && !isHttpClient, arch: client.arch }, loader);
  // 'bios' cannot come back (arch 0 is not a PXE client here); were it to, there is no BIOS file over IPv6
  if (!d || d.file === 'bios') return null;
  return { url: `${d.via === 'http' ? urls.httpBase : urls.tftpBase}/${urls[d.file]}`, ...(d.vendorClass ? { vendorClass: d.vendorClass } : {}) };
}

export function describeClient(m: Dhcp6ClientMessage, duidHex: string, duid: Duid, mac: string | undefined): Client6 {
  return {
    duid: duidHex,
    duidType: duid.type,
    mac,
    arch: findOption(m.options, 'clientArch')?.arches[0],
    isIpxe: userClasses(rawOption(m, Opt6Extra.USER_CLASS)).includes('iPXE'),
    oro: findOption(m.options, 'oro')?.codes ?? [],
    rapidCommit: rawOption(m, Opt6Extra.RAPID_COMMIT) !== undefined,
  };
}
