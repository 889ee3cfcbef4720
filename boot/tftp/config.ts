// TFTP configuration, parsed once in server/config.ts (which embeds this schema) and passed down.
import { z } from 'zod';
import { listenListProblems, parseListenAddress, type ListenAddress } from './address.ts';

export const tftpConfigSchema = z.object({
  enabled: z.boolean().default(true),
  /**
   * Where to listen: one IPv4 or IPv6 address, or a list of them (all on `port`). Bind a specific address on
   * multi-homed hosts: Node's dgram cannot learn which local address a request arrived on, so with a wildcard
   * (0.0.0.0, ::) replies leave from the kernel's choice of source address. Each address gets its own socket and
   * IPv6 sockets are IPv6-only, so dual stack is a list: ['0.0.0.0', '::'], or ['10.20.0.1', 'fd5b:0:0:20::1']
   * (address.ts says why not one socket taking v4-mapped addresses). No hostnames (the family must be known) and
   * no zone ids.
   */
  address: z
    .union([z.string(), z.array(z.string()).min(1, 'give at least one address')])
    .default('0.0.0.0')
    // checked here rather than per member of the union, whose failure zod reports as a bare "Invalid input"
    .superRefine((value, ctx) => {
      const list: ListenAddress[] = [];
      for (const [i, text] of (Array.isArray(value) ? value : [value]).entries()) {
        const r = parseListenAddress(text);
        if (r.ok) list.push(r.value);
        else ctx.addIssue({ code: 'custom', path: Array.isArray(value) ? [i] : [], message: r.reason });
      }
      for (const message of listenListProblems(list)) ctx.addIssue({ code: 'custom', message });
    }),
  port: z.number().int().min(0).max(65535).default(69),
  /** directory served as-is (paths confined to it); its files win over the built-in iPXE names */
  root: z.string().optional(),
  /** extra names → absolute file paths, e.g. { "undionly.kpxe": "/usr/lib/ipxe/undionly.kpxe" } */
  files: z.record(z.string(), z.string()).default({}),
  /** also serve Debian's iPXE binaries under their usual names (DEFAULT_IPXE_FILES) when neither
   * `files` nor the root has a file of that name */
  ipxeDefaults: z.boolean().default(true),
  /** RFC 2348; 1468 fills a 1500-byte Ethernet frame (1500 − 20 IP − 8 UDP − 4 TFTP). Over IPv6 the cap is 20
   * less (1448 by default), its header being 40 bytes: the same frame size, so no DATA packet is fragmented. */
  maxBlksize: z.number().int().min(8).max(65464).default(1468),
  /** RFC 7440 */
  maxWindow: z.number().int().min(1).max(65535).default(64),
  /** first retransmission timeout; doubles on each retry */
  timeoutMs: z.number().int().min(10).max(255_000).default(1000),
  /** wait before resending an OACK; longer than common clients' own timeout (transfer.ts) */
  oackTimeoutMs: z.number().int().min(10).max(255_000).default(2000),
  retries: z.number().int().min(1).max(30).default(6),
  /** concurrent transfers; requests beyond this are dropped silently so the client retries */
  maxTransfers: z.number().int().min(1).max(65536).default(1024),
});

export type TftpConfig = z.infer<typeof tftpConfigSchema>;
