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

export const Detail = z.object({
  uuid: SmbiosUuid,
  hostname: z.string(),
  interfaces: z.array(z.object({ name: z.string(), mac: z.string(), addresses: z.array(z.string()).default([]) })),
  bond: z
    .object({ name: z.string(), mode: z.string(), members: z.array(z.string()) })
    .optional(),
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

export const HeartbeatRequest = z.strictObject({
  uptimeSeconds: z.number().nonnegative().optional(),
  load1: z.number().nonnegative().optional(),
  iscsi: z.enum(['up', 'down', 'none']).optional(),
  kernelDigest: Digest.optional(),
  initrdDigest: Digest.optional(),
});
export type HeartbeatRequest = z.infer<typeof HeartbeatRequest>;

export const HeartbeatResponse = z.object({ state: NodeState, next: z.enum(['continue', 'reboot']) });
