// DHCPv6 configuration schema (zod), embedded by server/config.ts as the `dhcp6` section and parsed once in main.
// Off unless `enabled: true`: the responder joins ff02::1:2 and binds port 547 on a named interface.
import { z } from 'zod';
import { ip6ToBuffer, ip6ToString } from './packet.ts';

export const isIPv6 = (s: string): boolean => {
  try {
    ip6ToBuffer(s);
    return true;
  } catch {
    return false;
  }
};

/** 128-bit address arithmetic for pool ranges (a /64 does not fit a double). */
export const ip6ToBig = (s: string): bigint => BigInt(`0x${ip6ToBuffer(s).toString('hex')}`);
export const bigToIp6 = (n: bigint): string => ip6ToString(Buffer.from(n.toString(16).padStart(32, '0'), 'hex'));
const prefixMask = (bits: number): bigint => (bits === 0 ? 0n : ((1n << BigInt(bits)) - 1n) << BigInt(128 - bits));

const Ipv6 = z.string().refine(isIPv6, 'must be an IPv6 address like fd5b::1 (no zone, no prefix length)');
const Prefix6 = z
  .string()
  .regex(/^[0-9a-fA-F:]+\/\d{1,3}$/, 'must be a prefix like fd5b:0:0:1::/64')
  .refine((s) => isIPv6(s.split('/')[0]!) && Number(s.split('/')[1]) <= 126, 'bad prefix address or prefix length over /126');

const ULONG = 0xffffffff;

export const Dhcp6PoolSchema = z
  .object({
    /** defaults to the prefix */
    name: z.string().min(1).optional(),
    /** the link's prefix: direct clients are served from the pool holding serverAddress, relayed ones by link-address */
    prefix: Prefix6,
    /** first and last address handed out dynamically (inclusive) */
    range: z.object({ start: Ipv6, end: Ipv6 }),
    /** option 23 (RFC 3646), sent when the client asks for it in its ORO */
    dns: z.array(Ipv6).default([]),
    preferredSeconds: z.number().int().min(60).max(ULONG).optional(),
    validSeconds: z.number().int().min(60).max(ULONG).optional(),
    /** known: only machines the backend knows; unknown: a discovery pool for the others */
    clients: z.enum(['all', 'known', 'unknown']).default('all'),
  })
  .superRefine((p, ctx) => {
    if (!isIPv6(p.range.start) || !isIPv6(p.range.end) || !isIPv6(p.prefix.split('/')[0]!)) return;
    const mask = prefixMask(Number(p.prefix.split('/')[1]));
    const net = ip6ToBig(p.prefix.split('/')[0]!) & mask;
    const inNet = (a: string) => (ip6ToBig(a) & mask) === net;
    if (!inNet(p.range.start) || !inNet(p.range.end)) ctx.addIssue({ code: 'custom', message: `range ${p.range.start}-${p.range.end} is not inside ${p.prefix}` });
    else if (ip6ToBig(p.range.start) > ip6ToBig(p.range.end)) ctx.addIssue({ code: 'custom', message: 'range start is after range end' });
  });
export type Dhcp6PoolConfig = z.output<typeof Dhcp6PoolSchema>;

export const Dhcp6ConfigSchema = z
  .object({
    enabled: z.boolean().default(false),
    /** the interface to serve, e.g. eth1: multicast ff02::1:2 is joined there, replies to link-local clients leave there */
    interface: z.string().min(1),
    /** this server's global or ULA address on that interface: picks the pool for direct clients, default TFTP host */
    serverAddress: Ipv6,
    /**
     * server DUID as hex, type included (e.g. 0003 0001 + MAC for DUID-LL). Default: DUID-LL from the interface's MAC
     * (RFC 8415 §11.4): stable across restarts, which clients need (a Renew names the server by it).
     */
    serverDuid: z
      .string()
      .regex(/^([0-9a-fA-F]{2}){3,130}$/, 'must be hex: a 2-byte DUID type then at least 1 byte')
      .optional(),
    /** base URL of the boot HTTP server reachable over IPv6, e.g. http://[fd5b::1]:8080 */
    httpBase: z.string().url(),
    /** base URL for UEFI PXE (arch 7) over IPv6, which loads by TFTP only; default tftp://[serverAddress] */
    tftpBase: z
      .string()
      .regex(/^tftp:\/\/\S+$/, 'must be a tftp:// URL like tftp://[fd5b::1]')
      .optional(),
    bootfiles: z
      .object({
        uefi: z.string().default('snponly.efi'),
        uefiHttp: z.string().default('ipxe.efi'),
        script: z.string().default('boot.ipxe'),
        /** what a shim-grub node is handed instead of the x64 UEFI iPXE, as `dhcp.bootfiles.secureBoot` over IPv4 */
        secureBoot: z.string().default('shimx64.efi'),
      })
      .default({ uefi: 'snponly.efi', uefiHttp: 'ipxe.efi', script: 'boot.ipxe', secureBoot: 'shimx64.efi' }),
    /** empty: stateless service only (Information-Request: DNS and boot-file URL, no addresses) */
    pools: z.array(Dhcp6PoolSchema).default([]),
    /** a machine unknown to the backend (or whose MAC cannot be told from its messages): serve it or stay silent */
    unknownClients: z.enum(['serve', 'ignore']).default('serve'),
    preferredSeconds: z.number().int().min(60).max(ULONG).default(3600),
    validSeconds: z.number().int().min(60).max(ULONG).default(7200),
    /** how long an advertised address is held for the client's Request */
    offerSeconds: z.number().int().min(5).default(60),
    /** how long a Declined address stays out of use (RFC 8415 §18.3.8: it is in use elsewhere on the link) */
    declineSeconds: z.number().int().min(10).default(600),
    /** answer a Solicit carrying Rapid Commit (option 14) with a Reply at once (RFC 8415 §18.3.1): two messages, not four */
    rapidCommit: z.boolean().default(true),
    /**
     * option 7 in Advertise. 255 makes a client take this Advertise at once instead of collecting others for a second
     * (RFC 8415 §18.2.9); leave 0 when another DHCPv6 server shares the link. Not sent when 0.
     */
    preference: z.number().int().min(0).max(255).default(0),
    warnIntervalSeconds: z.number().int().min(1).default(60),
    /** UDP ports (tests move them; production uses 547 and 546) */
    port: z.number().int().min(1).max(65535).default(547),
  })
  .superRefine((c, ctx) => {
    if (c.preferredSeconds > c.validSeconds) ctx.addIssue({ code: 'custom', path: ['preferredSeconds'], message: `preferredSeconds ${c.preferredSeconds} is over validSeconds ${c.validSeconds} (RFC 8415 §21.6: the client discards such an address)` });
    for (const [i, p] of c.pools.entries()) {
      if ((p.preferredSeconds ?? c.preferredSeconds) > (p.validSeconds ?? c.validSeconds)) ctx.addIssue({ code: 'custom', path: ['pools', i, 'preferredSeconds'], message: 'preferred lifetime is over the valid lifetime' });
    }
  });
export type Dhcp6Config = z.output<typeof Dhcp6ConfigSchema>;
export type Dhcp6ConfigInput = z.input<typeof Dhcp6ConfigSchema>;

export interface Pool6 {
  name: string;
  network: bigint;
  mask: bigint;
  start: bigint;
  end: bigint;
  dns: string[];
  preferredSeconds: number;
  validSeconds: number;
  clients: 'all' | 'known' | 'unknown';
}

export function toPool6(p: Dhcp6PoolConfig, c: Pick<Dhcp6Config, 'preferredSeconds' | 'validSeconds'>): Pool6 {
  const [net, bits] = p.prefix.split('/') as [string, string];
  const mask = prefixMask(Number(bits));
  return {
    name: p.name ?? p.prefix,
    network: ip6ToBig(net) & mask,
    mask,
    start: ip6ToBig(p.range.start),
    end: ip6ToBig(p.range.end),
    dns: p.dns,
    preferredSeconds: p.preferredSeconds ?? c.preferredSeconds,
    validSeconds: p.validSeconds ?? c.validSeconds,
    clients: p.clients,
  };
}

export const onLink = (pool: Pool6, a: bigint): boolean => (a & pool.mask) === pool.network;
export const inRange = (pool: Pool6, a: bigint): boolean => a >= pool.start && a <= pool.end;
