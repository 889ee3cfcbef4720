// TFTP configuration, parsed once in server/config.ts (which embeds this schema) and passed down.
import { z } from 'zod';

export const tftpConfigSchema = z.object({
  enabled: z.boolean().default(true),
  /** Bind a specific address on multi-homed hosts: Node's dgram cannot learn which local
   * address a request arrived on, so with 0.0.0.0 replies leave from the kernel's choice. */
  address: z.string().default('0.0.0.0'),
  port: z.number().int().min(0).max(65535).default(69),
  /** directory served as-is (paths confined to it); its files win over the built-in iPXE names */
  root: z.string().optional(),
  /** extra names → absolute file paths, e.g. { "undionly.kpxe": "/usr/lib/ipxe/undionly.kpxe" } */
  files: z.record(z.string(), z.string()).default({}),
  /** also serve Debian's iPXE binaries under their usual names (DEFAULT_IPXE_FILES) when neither
   * `files` nor the root has a file of that name */
  ipxeDefaults: z.boolean().default(true),
  /** RFC 2348; 1468 fills a 1500-byte Ethernet frame (1500 − 20 IP − 8 UDP − 4 TFTP) */
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
