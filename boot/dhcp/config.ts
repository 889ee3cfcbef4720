// DHCP configuration schema (zod). Exported so server/config.ts can embed it; parsed once in main.
import { z } from 'zod';
import { intToIp, ipToInt, isIPv4 } from './packet.ts';

const Ipv4 = z.string().refine(isIPv4, 'must be a dotted IPv4 address like 10.0.0.1');
const Cidr = z
  .string()
  .regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/, 'must be a subnet like 10.0.0.0/24')
  .refine((s) => isIPv4(s.split('/')[0]!) && Number(s.split('/')[1]) <= 30, 'bad subnet address or prefix longer than /30');

export const DhcpPoolSchema = z
  .object({
    /** defaults to the subnet */
    name: z.string().min(1).optional(),
    subnet: Cidr,
    /** first and last address handed out dynamically (inclusive) */
    range: z.object({ start: Ipv4, end: Ipv4 }),
    routers: z.array(Ipv4).default([]),
    dns: z.array(Ipv4).default([]),
    domain: z.string().optional(),
    leaseSeconds: z.number().int().min(60).max(365 * 86400).optional(),
    /** known: only machines the backend knows; unknown: a discovery pool for the others */
    clients: z.enum(['all', 'known', 'unknown']).default('all'),
  })
  .superRefine((p, ctx) => {
    const [net, bits] = p.subnet.split('/') as [string, string];
    const mask = Number(bits) === 0 ? 0 : (~0 << (32 - Number(bits))) >>> 0;
    const inNet = (ip: string) => ((ipToInt(ip) & mask) >>> 0) === ((ipToInt(net) & mask) >>> 0);
    if (!isIPv4(p.range.start) || !isIPv4(p.range.end)) return;
    if (!inNet(p.range.start) || !inNet(p.range.end)) ctx.addIssue({ code: 'custom', message: `range ${p.range.start}-${p.range.end} is not inside ${p.subnet}` });
    else if (ipToInt(p.range.start) > ipToInt(p.range.end)) ctx.addIssue({ code: 'custom', message: 'range start is after range end' });
  });
export type DhcpPoolConfig = z.output<typeof DhcpPoolSchema>;

export const DhcpConfigSchema = z
  .object({
    enabled: z.boolean().default(true),
    /** full: addresses + boot; proxy: boot info only, beside another DHCP server (PXE spec 2.1 proxyDHCP) */
    mode: z.enum(['full', 'proxy']).default('proxy'),
    /** the interface to serve, e.g. eth1 */
    interface: z.string().min(1),
    /** this server's address on that interface: server identifier (option 54) and source of replies */
    serverIp: Ipv4,
    /** TFTP server for PXE ROMs (siaddr, option 66); defaults to serverIp */
    nextServer: Ipv4.optional(),
    /** base URL of the boot HTTP server, e.g. http://10.0.0.1:8080 */
    httpBase: z.string().url(),
    bootfiles: z
      .object({
        bios: z.string().default('undionly.kpxe'),
        uefi: z.string().default('snponly.efi'),
        uefiHttp: z.string().default('ipxe.efi'),
        script: z.string().default('boot.ipxe'),
        /** UEFI nodes whose profile says `bootloader: shim-grub` (docs/secure-boot.md) */
        secureBoot: z.string().default('shimx64.efi'),
      })
      .default({ bios: 'undionly.kpxe', uefi: 'snponly.efi', uefiHttp: 'ipxe.efi', script: 'boot.ipxe', secureBoot: 'shimx64.efi' }),
    pools: z.array(DhcpPoolSchema).default([]),
    /** full mode, machine unknown to the backend: serve it (from pools open to unknown clients) or stay silent */
    unknownClients: z.enum(['serve', 'ignore']).default('serve'),
    leaseSeconds: z.number().int().min(60).default(3600),
    /** how long an offered address is held for the client's DHCPREQUEST */
    offerSeconds: z.number().int().min(5).default(60),
    /** how long a DECLINEd address stays out of use (RFC 2131 §3.1.5: the address is in use elsewhere) */
    declineSeconds: z.number().int().min(10).default(600),
    /** warnings a client can provoke (forged DECLINE/RELEASE, bad hlen, …): at most one line per source per interval */
    warnIntervalSeconds: z.number().int().min(1).default(60),
    /**
     * SO_RCVBUF asked for each socket: a storm of DISCOVERs arrives faster than one event-loop turn reads them.
     * Linux caps it at net.core.rmem_max (the effective size is logged at start; raise rmem_max to get more)
     * and doubles it for its bookkeeping. Drops are counted in /metrics (bootfarm_dhcp_socket_drops).
     */
    recvBufferBytes: z.number().int().min(4096).max(1 << 30).default(4 * 1024 * 1024),
    /** UDP ports (tests move them; production uses 67 and 4011) */
    port: z.number().int().min(1).max(65535).default(67),
    proxyPort: z.number().int().min(1).max(65535).default(4011),
    clientPort: z.number().int().min(1).max(65535).default(68),
  })
  .superRefine((c, ctx) => {
    if (c.mode === 'full' && c.pools.length === 0) ctx.addIssue({ code: 'custom', path: ['pools'], message: 'full mode needs at least one pool' });
  });
export type DhcpConfig = z.output<typeof DhcpConfigSchema>;
export type DhcpConfigInput = z.input<typeof DhcpConfigSchema>;

export interface Pool {
  name: string;
  network: number;
  mask: number;
  prefix: number;
  start: number;
  end: number;
  broadcast: number;
  routers: string[];
  dns: string[];
  domain?: string;
  leaseSeconds: number;
  clients: 'all' | 'known' | 'unknown';
}

export function toPool(p: DhcpPoolConfig, defaultLease: number): Pool {
  const [net, bits] = p.subnet.split('/') as [string, string];
  const prefix = Number(bits);
  const mask = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
  const network = (ipToInt(net) & mask) >>> 0;
  return {
    name: p.name ?? p.subnet,
    network,
    mask,
    prefix,
    start: ipToInt(p.range.start),
    end: ipToInt(p.range.end),
    broadcast: (network | (~mask >>> 0)) >>> 0,
    routers: p.routers,
    dns: p.dns,
    domain: p.domain,
    leaseSeconds: p.leaseSeconds ?? defaultLease,
    clients: p.clients,
  };
}

export const inSubnet = (pool: Pool, ip: number): boolean => ((ip & pool.mask) >>> 0) === pool.network;
export const maskString = (pool: Pool): string => intToIp(pool.mask);
