// Fleet controller configuration, parsed once in main (zod) and passed down. Every duration is in seconds.
import { z } from 'zod';

const seconds = (d: number) => z.number().positive().default(d);

export const LADDER_STEPS = ['confirm', 'soft-reset', 'reprovision', 'bmc-reset'] as const;
export const LadderStep = z.enum(LADDER_STEPS);
export type LadderStep = z.infer<typeof LadderStep>;
/** what an operator would accept: look before touching, the gentlest reboot first, the BMC itself last */
export const DEFAULT_LADDER: readonly LadderStep[] = ['confirm', 'soft-reset', 'reprovision', 'bmc-reset'];

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
        /**
         * steady-state heartbeats are kept in memory and written in one statement this often (server/fleet/beats.ts);
         * the database, and so the leader, sees a heartbeat at most this much (plus one flush) late. Must stay well
         * below interval × missed (main refuses more than a quarter of the smallest). 0: write each one at once.
         */
        flushSeconds: z.number().min(0).max(60).default(2),
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
        /**
         * Escalation ladder (issue 12 §5): `confirm` (ask the BMC, wait one more heartbeat interval) before the first
         * attempt, then one step per attempt; attempts past the end repeat the last step; after maxAttempts the
         * node is quarantined. See ladder.ts.
         */
        ladder: z.array(LadderStep).min(1).default([...DEFAULT_LADDER]),
        /** per-profile ladders (profile name → steps), for hardware that needs another order */
        profileLadders: z.record(z.string(), z.array(LadderStep).min(1)).default({}),
        /** after `mc reset cold`, how long to wait for the BMC to answer again before re-provisioning */
        bmcResetWaitSeconds: seconds(120),
      })
      .prefault({}),
    bmc: z
      .object({
        /** poll power state (and health where the driver has it) of active nodes */
        poll: z.boolean().default(true),
        pollSeconds: seconds(60),
        /** BMC calls in parallel per tick */
        parallel: z.number().int().min(1).default(8),
        /**
         * power-ons (on, cycle, reset: the commands a boot follows) per second, from rebuilds and from the power API
         * together, per replica; `powerOnBurst` may go out at once (server/bmc/pacer.ts). Rebuild waves of
         * rebuild.maxConcurrent stay below it; a bulk power action of a rack goes out in waves. 0: no pacing.
         */
        powerOnsPerSecond: z.number().min(0).default(5),
        powerOnBurst: z.number().int().min(1).default(10),
        /** fail an active node whose BMC reports Critical health */
        failOnCritical: z.boolean().default(true),
      })
      .prefault({}),
    /** issue 12 §1: judge missed heartbeats only over time in which the control plane could have heard them */
    outage: z
      .object({
        /**
         * A gap between two successful controller ticks longer than this is an outage of the control plane (the
         * process, the database or the timers did not run): a new observation window starts and no node is judged
         * on heartbeats for interval × missed. Default: 3 × tickSeconds.
         */
        maxTickGapSeconds: z.number().positive().optional(),
      })
      .prefault({}),
    /** issue 12 §3: many nodes failing together is a shared outage (switch, PDU, boot network), not many bad nodes */
    breaker: z
      .object({
        enabled: z.boolean().default(true),
        /** open when more than this share of active nodes (fleet-wide, or within one rack) failed inside the window */
        share: z.number().gt(0).max(1).default(0.1),
        windowSeconds: seconds(15 * 60),
        /** fewer failures than this never open it (1 of 3 nodes in a rack is not an outage) */
        minFailures: z.number().int().min(1).default(3),
        /** also judge each value of rebuild.rackLabel on its own */
        perRack: z.boolean().default(true),
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
    /** replica presence (GET /api/v1/cluster): every replica upserts itself each tick */
    replicas: z
      .object({
        /** a replica that missed this many ticks is listed as gone */
        missedTicks: z.number().int().min(1).default(3),
        /** rows of replicas gone this long are deleted */
        forgetSeconds: seconds(24 * 3600),
        /**
         * After a peer replica stops reporting (missedTicks), the leader judges no heartbeat for up to this long
         * (then restarts its observation window): heartbeats the silent replica acknowledged but could not write,
         * or that the load balancer kept sending it until its health check took it out, are not node failures.
         * Covers the balancer's detection time plus its server timeout (docs/ha.md).
         */
        silenceHoldSeconds: seconds(120),
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
    /**
     * Serial console capture over IPMI SOL (fleet/console.ts, bmc/sol.ts): the leader keeps one SOL session open
     * for each node in a booting state, at most maxSessions at once (the rest wait their turn; a session is an
     * ipmitool process and an RMCP+ session the BMC must hold).
     */
    console: z
      .object({
        enabled: z.boolean().default(true),
        maxSessions: z.number().int().min(0).max(1000).default(32),
        /** the states whose boot is captured, most wanted first (the order decides who waits at maxSessions) */
        states: z.array(z.enum(['rebuilding', 'provisioning', 'inspecting', 'firmware-updating', 'active', 'failed', 'ready'])).default(['rebuilding', 'provisioning', 'inspecting', 'firmware-updating']),
        /** output kept per node (older chunks are deleted as new ones arrive) */
        maxBytesPerNode: z.number().int().min(4096).max(64 * 1024 * 1024).default(256 * 1024),
        /** console lines a node's `failed` transition event carries */
        failureLines: z.number().int().min(0).max(200).default(20),
        /** how often buffered output is written (one insert per node per flush, not one per read) */
        flushMs: z.number().int().min(10).max(10_000).default(500),
      })
      .prefault({}),
  })
  .refine((c) => !c.webhooks.urls.length || !!c.webhooks.secret, { message: 'webhooks.secret is required when webhooks.urls is set', path: ['webhooks', 'secret'] });

export type FleetConfig = z.output<typeof FleetConfig>;
export type FleetConfigInput = z.input<typeof FleetConfig>;
