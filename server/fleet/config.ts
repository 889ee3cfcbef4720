// Fleet controller configuration, parsed once in main (zod) and passed down. Every duration is in seconds.
import { z } from 'zod';

const seconds = (d: number) => z.number().positive().default(d);

export const FleetConfig = z
  .object({
    enabled: z.boolean().default(true),
    /** how often the controller loop runs */
    tickSeconds: seconds(15),
    heartbeat: z
      .object({
        /** the interval an agent heartbeats at, unless its profile has its own */
        intervalSeconds: seconds(30),
        /** per-profile heartbeat interval (profile name → seconds) */
        profiles: z.record(z.string(), z.number().positive()).default({}),
        /** a node is failed after this many intervals without a heartbeat */
        missed: z.number().int().min(1).default(3),
      })
      .prefault({}),
    /** how long a node may stay in a transient state before it is failed */
    timeouts: z
      .object({
        inspectingSeconds: seconds(15 * 60),
        firmwareUpdatingSeconds: seconds(2 * 3600),
        readySeconds: seconds(15 * 60),
        /** provisioning must reach `installed` within this */
        provisioningSeconds: seconds(30 * 60),
        /** after the power cycle the node must PXE boot and register (rebuilding → inspecting) within this */
        rebuildingSeconds: seconds(15 * 60),
      })
      .prefault({}),
    rebuild: z
      .object({
        enabled: z.boolean().default(true),
        /** rebuilds in flight at once, whole fleet */
        maxConcurrent: z.number().int().min(1).default(5),
        /** rebuilds in flight at once per value of the rack label */
        maxConcurrentPerRack: z.number().int().min(1).default(2),
        rackLabel: z.string().default('rack'),
        /** after this many failed rebuilds in one repair loop the node is quarantined */
        maxAttempts: z.number().int().min(1).default(3),
        /** wait before attempt n ≥ 2: base × 2^(n−2), capped */
        backoffBaseSeconds: seconds(60),
        backoffMaxSeconds: seconds(3600),
        /** a node without an enrolled BMC cannot be rebuilt remotely: quarantine it (true) or leave it failed */
        quarantineWithoutBmc: z.boolean().default(true),
      })
      .prefault({}),
    bmc: z
      .object({
        /** poll power state (and health where the driver has it) of active nodes */
        poll: z.boolean().default(true),
        pollSeconds: seconds(60),
        /** BMC calls in parallel per tick */
        parallel: z.number().int().min(1).default(8),
        /** fail an active node whose BMC reports Critical health */
        failOnCritical: z.boolean().default(true),
      })
      .prefault({}),
    webhooks: z
      .object({
        urls: z.array(z.url()).default([]),
        /** HMAC-SHA256 key; X-Bootfarm-Signature: sha256=<hex> over the raw body */
        secret: z.string().min(16).optional(),
        maxAttempts: z.number().int().min(1).default(8),
        backoffBaseSeconds: seconds(5),
        backoffMaxSeconds: seconds(3600),
        timeoutMs: z.number().int().positive().default(5000),
      })
      .prefault({}),
    leader: z
      .object({
        /** pg_advisory_lock key; one per bootfarm installation sharing a database */
        lockKey: z.number().int().default(0x6266_6c74), // "bflt"
        /** how often a follower tries to take the lock / the leader checks it still holds it */
        checkSeconds: seconds(5),
      })
      .prefault({}),
  })
  .refine((c) => !c.webhooks.urls.length || !!c.webhooks.secret, { message: 'webhooks.secret is required when webhooks.urls is set', path: ['webhooks', 'secret'] });

export type FleetConfig = z.output<typeof FleetConfig>;
export type FleetConfigInput = z.input<typeof FleetConfig>;
