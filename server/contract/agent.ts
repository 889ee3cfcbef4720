// Wire formats between the node agent and the server (/api/v1/agent/*).
import { z } from 'zod';
import { Digest, SmbiosUuid } from './common.ts';
import { Facts, ProbeFailure } from './facts.ts';
import { NodeState, PhaseName } from './lifecycle.ts';

export const RegisterRequest = z.strictObject({
  facts: Facts,
  failures: z.array(ProbeFailure).max(256).default([]),
  agentVersion: z.string().max(64).optional(),
});
export type RegisterRequest = z.infer<typeof RegisterRequest>;

export const Conflict = z.object({
  kind: z.enum(['mac', 'serial']),
  value: z.string(),
  otherUuid: z.string(),
  detectedAt: z.string(),
});
export type Conflict = z.infer<typeof Conflict>;

export const RegisterResponse = z.object({
  uuid: SmbiosUuid,
  state: NodeState,
  created: z.boolean(),
  conflicts: z.array(Conflict),
  /** what the agent should do next: provision (fetch profile), firmware (fetch the plan), wait (held), poweroff
   * (inventory only: registered and checked, never provisioned) */
  next: z.enum(['provision', 'firmware', 'hold', 'poweroff']),
  reason: z.string().optional(),
});
export type RegisterResponse = z.infer<typeof RegisterResponse>;

export const BootArtifact = z.object({
  url: z.string(),
  sha256: Digest,
  size: z.number().int().nonnegative().optional(),
});

export const Profile = z.object({
  uuid: SmbiosUuid,
  profile: z.string(),
  image: z.object({
    name: z.string(),
    channel: z.string().optional(),
    version: z.string().optional(),
    manifestDigest: z.string().optional(),
  }),
  kernel: BootArtifact,
  initrd: BootArtifact,
  /** full kernel command line for kexec, including the compute OS's node credential (bootfarm.token=), issued with this
   * profile for that boot; the stage-1 token is not valid there (docs/security-model.md) */
  cmdline: z.string(),
  heartbeatIntervalSeconds: z.number().int().positive(),
});
export type Profile = z.infer<typeof Profile>;

/** One address the compute OS puts on a device (issue 16 item 1), with iproute2: `ip addr add <address> dev <device>`. */
export const DetailAddress = z.object({
  /** the IPAM network it comes from */
  network: z.string(),
  /** the interface name or role the profile gives it ("bond0"): the allocation's key, stable across rebuilds */
  interface: z.string(),
  /** the device to configure: the bond, the single NIC, or <device>.<vlan> */
  device: z.string(),
  /** address/prefix, e.g. 10.20.0.7/24 or fd00:20::7/64 */
  address: z.string(),
  family: z.union([z.literal(4), z.literal(6)]),
  gateway: z.string().optional(),
  vlan: z.number().int().min(1).max(4094).optional(),
});
export type DetailAddress = z.infer<typeof DetailAddress>;

export const Detail = z.object({
  uuid: SmbiosUuid,
  hostname: z.string(),
  interfaces: z.array(z.object({ name: z.string(), mac: z.string(), addresses: z.array(z.string()).default([]) })),
  bond: z
    .object({
      name: z.string(),
      /** from the profile: 802.3ad (LACP) or active-backup */
      mode: z.string(),
      members: z.array(z.string()),
      /** how the members were chosen from LLDP: two-switches, one-switch, no-lldp */
      spread: z.string().optional(),
    })
    .optional(),
  /** 802.1Q devices to create before the addresses: `ip link add link <link> name <device> type vlan id <id>` */
  vlans: z.array(z.object({ device: z.string(), link: z.string(), id: z.number().int().min(1).max(4094) })).default([]),
  /** the node's addresses from IPAM, one per network of its profile (absent from servers before IPAM: none) */
  addresses: z.array(DetailAddress).default([]),
  /** `ip route add <to> via <via> dev <device>`; to is "default" or a CIDR */
  routes: z.array(z.object({ to: z.string(), via: z.string(), device: z.string() })).default([]),
  /** DNS servers, in order: the profile's networks' servers, without repeats */
  dns: z.array(z.string()).default([]),
  iscsi: z
    .object({
      portal: z.string(),
      target: z.string(),
      lun: z.number().int().nonnegative(),
      initiator: z.string(),
      chapUser: z.string().optional(),
      chapPassword: z.string().optional(),
    })
    .optional(),
  labels: z.record(z.string(), z.string()),
});
export type Detail = z.infer<typeof Detail>;

/**
 * The node found another device answering for an address it was given (issue 16 item 1): a DHCPDECLINE
 * (RFC 2131 §4.4.1) or an ARP probe / duplicate address detection that got an answer (RFC 5227, RFC 4862 §5.4).
 * The server marks the address conflict and answers with the replacement.
 */
export const AddressConflict = z.strictObject({
  address: z.string().min(2).max(64),
  /** needed only when the node holds the same address on two networks */
  network: z.string().max(63).optional(),
  how: z.enum(['dhcp-decline', 'arp-probe', 'ipv6-dad', 'other']).default('other'),
  /** what answered, e.g. the MAC in the ARP reply */
  detail: z.string().max(512).optional(),
});
export type AddressConflict = z.infer<typeof AddressConflict>;
export const AddressConflictResponse = z.object({ declined: z.string(), network: z.string(), replacement: DetailAddress });

export const AgentEvent = z.strictObject({
  phase: PhaseName,
  message: z.string().max(4096).optional(),
  data: z.record(z.string(), z.unknown()).optional(),
  at: z.iso.datetime({ offset: true }).optional(),
});
export const AgentEvents = z.union([AgentEvent, z.strictObject({ events: z.array(AgentEvent).min(1).max(100) })]);
export type AgentEvent = z.infer<typeof AgentEvent>;

export const InstalledRequest = z.strictObject({
  kernelDigest: Digest.optional(),
  initrdDigest: Digest.optional(),
  bootId: z.string().max(128).optional(),
});
export type InstalledRequest = z.infer<typeof InstalledRequest>;

/** What the compute OS actually configured from its detail (issue 16 item 1), as `ip -j addr` / the bonding driver
 * show it: the server compares it with what it handed out, and a difference is a node event. */
export const ConfiguredNetwork = z.strictObject({
  /** address/prefix per device, e.g. {device: "bond0", address: "10.20.0.7/24"} */
  addresses: z.array(z.strictObject({ device: z.string().min(1).max(32), address: z.string().min(2).max(68) })).max(64),
  bond: z.strictObject({ name: z.string().min(1).max(32), mode: z.string().max(32), members: z.array(z.string().min(1).max(32)).max(16) }).optional(),
});
export type ConfiguredNetwork = z.infer<typeof ConfiguredNetwork>;

/** A guest the compute OS runs (issue 16 item 2): its name and QEMU's run state (QMP `query-status`: running,
 * paused, shutdown, …; `gone` when its QEMU no longer answers). */
export const Guest = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'guest names are 1–64 letters, digits, "_", "." or "-"'),
  status: z.string().regex(/^[a-z][a-z-]{0,31}$/),
  vcpus: z.number().int().min(1).max(1024).optional(),
  memoryMiB: z.number().int().min(1).max(16 * 1024 * 1024).optional(),
});
export type Guest = z.infer<typeof Guest>;

/** What the compute OS can host and hosts now (issue 16 item 2): sent with the first heartbeat of a boot, whenever
 * it changes and every few minutes (HEARTBEAT_CAPACITY_EVERY in agent/flow.ts); the server keeps the last one. */
export const HypervisorCapacity = z.strictObject({
  cpus: z.number().int().min(1).max(4096),
  memoryMiB: z.number().int().min(1).max(64 * 1024 * 1024),
  /** /dev/kvm is there and QEMU could open a VM with it (`-accel kvm -machine none`) */
  kvm: z.boolean(),
  /** why kvm is false: no /dev/kvm (no VT-x/AMD-V, or the module did not load), or QEMU's words */
  kvmDetail: z.string().max(300).optional(),
  /** the VM manager: absent when the image has no QEMU */
  qemu: z.strictObject({ version: z.string().max(64) }).optional(),
  guests: z.array(Guest).max(256),
});
export type HypervisorCapacity = z.infer<typeof HypervisorCapacity>;

export const HeartbeatRequest = z.strictObject({
  uptimeSeconds: z.number().nonnegative().optional(),
  load1: z.number().nonnegative().optional(),
  iscsi: z.enum(['up', 'down', 'none']).optional(),
  kernelDigest: Digest.optional(),
  initrdDigest: Digest.optional(),
  /** sent with the first heartbeat of a boot and whenever it changes (the server reads more for it) */
  network: ConfiguredNetwork.optional(),
  hypervisor: HypervisorCapacity.optional(),
});
export type HeartbeatRequest = z.infer<typeof HeartbeatRequest>;

export const HeartbeatResponse = z.object({ state: NodeState, next: z.enum(['continue', 'reboot']) });
