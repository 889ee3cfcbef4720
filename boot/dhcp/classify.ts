// What kind of client sent a request: PXE ROM, UEFI HTTP boot, iPXE, or a plain OS DHCP client.
// Pure: a parsed packet in, a plain object out.
import { type DhcpPacket, MessageType, Opt, macOf, optIp, optString, optU16, optU8, subOptions } from './packet.ts';

/** RFC 4578 §2.1 / IANA "Processor Architecture Types" values we act on. */
export const Arch = {
  BIOS: 0,
  EFI_IA32: 6,
  EFI_X64: 7,
  EFI_BC: 9, // historically "EFI BC", sent by x64 firmware in practice
  EFI_IA32_HTTP: 15, // UEFI HTTP boot, x86 (UEFI 2.5+ §24.7; IANA "x86 uefi boot from http")
  EFI_X64_HTTP: 16, // UEFI HTTP boot, x64 (OVMF sends this, with option 60 "HTTPClient:Arch:00016:…")
} as const;

/** The architecture a PXE or HTTP boot client names in its option 60 ("PXEClient:Arch:00007:UNDI:003016",
 * PXE spec 2.1 §2.3; "HTTPClient:Arch:00016:…", UEFI 2.5+ §24.7.2): the fallback when option 93 is absent. */
export function archFromVendorClass(vendorClass: string | undefined): number | undefined {
  const m = /^(?:PXEClient|HTTPClient):Arch:(\d{5})(?::|$)/.exec(vendorClass ?? '');
  return m ? Number(m[1]) : undefined;
}

export interface RelayInfo {
  circuitId?: Buffer;
  remoteId?: Buffer;
  /** RFC 3527 link selection sub-option (5): the subnet to allocate from, when the relay says so */
  linkSelection?: string;
}

export interface ClientInfo {
  messageType?: number;
  mac: string;
  clientId?: Buffer;
  hostname?: string;
  /** option 60, e.g. "PXEClient:Arch:00000:UNDI:002001" or "HTTPClient:Arch:00016:UNDI:003001" */
  vendorClass?: string;
  /** option 77 instances (RFC 3004), or the bare string iPXE sends */
  userClass: string[];
  /** option 93, first entry */
  arch?: number;
  /** option 94 (type, major, minor) */
  ndi?: [number, number, number];
  /** option 97 as a GUID string (type byte 0 + 16 bytes), lower case */
  uuid?: string;
  /** raw option 97, echoed back in proxyDHCP replies (PXE spec 2.1 §2.5) */
  uuidRaw?: Buffer;
  requestedIp?: string;
  serverId?: string;
  maxSize?: number;
  paramList: number[];
  relay?: RelayInfo;
  isPxe: boolean;
  isHttpClient: boolean;
  isIpxe: boolean;
}

/** RFC 3004: user class is a list of length-prefixed strings. iPXE sends "iPXE" unprefixed, so when the
 * length prefixes do not add up to the option length, the whole value is taken as one string. */
export function parseUserClass(v: Buffer | undefined): string[] {
  if (!v || v.length === 0) return [];
  const out: string[] = [];
  let i = 0;
  while (i < v.length) {
    const len = v[i]!;
    if (len === 0 || i + 1 + len > v.length) return [v.toString('latin1')];
    out.push(v.subarray(i + 1, i + 1 + len).toString('latin1'));
    i += 1 + len;
  }
  return out;
}

/** SMBIOS byte order: the first three fields little-endian, as iPXE's ${uuid} and dmidecode print them. */
function guid(b: Buffer): string {
  const h = (s: Buffer) => s.toString('hex');
  const le = (s: Buffer) => h(Buffer.from(s).reverse());
  return `${le(b.subarray(0, 4))}-${le(b.subarray(4, 6))}-${le(b.subarray(6, 8))}-${h(b.subarray(8, 10))}-${h(b.subarray(10, 16))}`;
}

export function classify(p: DhcpPacket): ClientInfo {
  const vendorClass = optString(p, Opt.VENDOR_CLASS);
  const userClass = parseUserClass(p.options.get(Opt.USER_CLASS));
  // RFC 4578 §2.1: option 93 is what counts; the arch in option 60 only when a client left 93 out
  const arch = optU16(p, Opt.CLIENT_ARCH) ?? archFromVendorClass(vendorClass);
  const ndiRaw = p.options.get(Opt.CLIENT_NDI);
  const uuidRaw = p.options.get(Opt.CLIENT_UUID);
  const relayRaw = p.options.get(Opt.RELAY_AGENT);
  let relay: RelayInfo | undefined;
  if (relayRaw) {
    const subs = subOptions(relayRaw);
    const link = subs.get(5);
    relay = {
      circuitId: subs.get(1),
      remoteId: subs.get(2),
      linkSelection: link && link.length === 4 ? `${link[0]}.${link[1]}.${link[2]}.${link[3]}` : undefined,
    };
  }
  // UEFI 2.5+ §24.7.2: an HTTP boot client says HTTPClient in option 60 and an HTTP arch (15, 16, …) in option 93
  const isHttpClient = vendorClass?.startsWith('HTTPClient') === true || arch === Arch.EFI_X64_HTTP || arch === Arch.EFI_IA32_HTTP;
  return {
    messageType: optU8(p, Opt.MESSAGE_TYPE),
    mac: macOf(p),
    clientId: p.options.get(Opt.CLIENT_ID),
    hostname: optString(p, Opt.HOSTNAME),
    vendorClass,
    userClass,
    arch,
    ndi: ndiRaw && ndiRaw.length >= 3 ? [ndiRaw[0]!, ndiRaw[1]!, ndiRaw[2]!] : undefined,
    uuid: uuidRaw && uuidRaw.length === 17 && uuidRaw[0] === 0 ? guid(uuidRaw.subarray(1)) : undefined,
    uuidRaw,
    requestedIp: optIp(p, Opt.REQUESTED_IP),
    serverId: optIp(p, Opt.SERVER_ID),
    maxSize: optU16(p, Opt.MAX_SIZE),
    paramList: [...(p.options.get(Opt.PARAM_LIST) ?? [])],
    relay,
    isPxe: vendorClass?.startsWith('PXEClient') === true,
    isHttpClient,
    isIpxe: userClass.includes('iPXE') || p.options.has(Opt.IPXE),
  };
}

export const isBootClient = (c: ClientInfo): boolean => c.isPxe || c.isHttpClient || c.isIpxe;
export const isDiscover = (c: ClientInfo): boolean => c.messageType === MessageType.DISCOVER;
