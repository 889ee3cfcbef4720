// The facts document the stage-1 agent sends at registration. Every section but `system` is optional:
// a probe that failed leaves its section out and adds an entry to `failures` (STYLE.md §11), so the server
// must never assume a section is present. Sections are loose objects: a newer agent may add fields.
import { z } from 'zod';
import { Mac, SmbiosUuid } from './common.ts';

const str = z.string().max(512);

export const SystemFacts = z.looseObject({
  uuid: SmbiosUuid,
  serial: str.optional(),
  manufacturer: str.optional(),
  product: str.optional(),
  sku: str.optional(),
  family: str.optional(),
  version: str.optional(),
});

export const BiosFacts = z.looseObject({
  vendor: str.optional(),
  version: str.optional(),
  releaseDate: str.optional(),
});

export const BoardFacts = z.looseObject({
  manufacturer: str.optional(),
  product: str.optional(),
  version: str.optional(),
  serial: str.optional(),
});

export const LldpNeighbor = z.looseObject({
  /** local interface the neighbour was seen on */
  interface: str,
  chassisId: str.optional(),
  chassisIdSubtype: str.optional(),
  systemName: str.optional(),
  systemDescription: str.optional(),
  portId: str.optional(),
  portIdSubtype: str.optional(),
  portDescription: str.optional(),
  managementAddresses: z.array(str).optional(),
  vlan: z.number().int().optional(),
  ttl: z.number().int().optional(),
});
export type LldpNeighbor = z.infer<typeof LldpNeighbor>;

export const NicFacts = z.looseObject({
  name: str,
  mac: Mac,
  driver: str.optional(),
  driverVersion: str.optional(),
  firmwareVersion: str.optional(),
  busInfo: str.optional(),
  /** PCI vendor:device, e.g. "8086:1572" */
  pciId: str.optional(),
  link: z.boolean().optional(),
  speedMbps: z.number().int().optional(),
  /** true for the NIC the node PXE-booted from (BOOTIF) */
  boot: z.boolean().optional(),
});
export type NicFacts = z.infer<typeof NicFacts>;

export const BmcFacts = z.looseObject({
  ipAddress: str.optional(),
  macAddress: str.optional(),
  ipSource: str.optional(),
  firmwareVersion: str.optional(),
  interfaceType: str.optional(),
});

export const CpuFacts = z.looseObject({
  model: str.optional(),
  sockets: z.number().int().optional(),
  cores: z.number().int().optional(),
  threads: z.number().int().optional(),
  flags: z.array(z.string()).optional(),
});

export const MemoryFacts = z.looseObject({
  totalBytes: z.number().int().nonnegative().optional(),
  devices: z.array(z.looseObject({})).optional(),
});

export const DiskFacts = z.looseObject({
  name: str,
  sizeBytes: z.number().int().nonnegative().optional(),
  model: str.optional(),
  serial: str.optional(),
  rotational: z.boolean().optional(),
});

/** UEFI Secure Boot as read from efivars (agent/facts/secureboot.ts): 'unknown' when the variables cannot be read. */
export const SecureBootState = z.enum(['enabled', 'disabled', 'setup-mode', 'not-uefi', 'unknown']);
export type SecureBootState = z.infer<typeof SecureBootState>;
/** The active mode of /sys/kernel/security/lockdown (kernel_lockdown(7)). */
export const LockdownMode = z.enum(['none', 'integrity', 'confidentiality']);
export type LockdownMode = z.infer<typeof LockdownMode>;

export const FirmwareFacts = z.looseObject({
  secureBoot: SecureBootState.optional(),
});

export const KernelFacts = z.looseObject({
  lockdown: LockdownMode.optional(),
});

export const Facts = z.looseObject({
  system: SystemFacts,
  bios: BiosFacts.optional(),
  baseboard: BoardFacts.optional(),
  chassis: z.looseObject({}).optional(),
  processors: z.array(z.looseObject({})).optional(),
  cpu: CpuFacts.optional(),
  memory: MemoryFacts.optional(),
  bmc: BmcFacts.optional(),
  nics: z.array(NicFacts).max(256).default([]),
  lldp: z.array(LldpNeighbor).max(256).optional(),
  disks: z.array(DiskFacts).max(256).optional(),
  firmware: FirmwareFacts.optional(),
  kernel: KernelFacts.optional(),
});
export type Facts = z.infer<typeof Facts>;

/** One probe that failed; the report goes on without it. */
export const ProbeFailure = z.object({
  probe: z.string().max(64),
  message: z.string().max(4096),
  command: z.string().max(1024).optional(),
  stderr: z.string().max(16384).optional(),
  exitCode: z.number().int().nullable().optional(),
});
export type ProbeFailure = z.infer<typeof ProbeFailure>;
