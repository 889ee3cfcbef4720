// Firmware compliance wire formats: the baseline document an operator applies (CLI and admin API), the plan
// the stage-1 agent fetches (GET /api/v1/agent/:uuid/firmware) and the report it posts back
// (POST /api/v1/agent/:uuid/firmware). The agent imports this file; keep it free of server-only code.
import { z } from 'zod';
import { Digest } from './common.ts';

const text = (max: number) => z.string().trim().min(1).max(max);

export const FIRMWARE_COMPONENT_TYPES = ['bios', 'bmc', 'nic'] as const;
export const FirmwareComponentType = z.enum(FIRMWARE_COMPONENT_TYPES);
export type FirmwareComponentType = z.infer<typeof FirmwareComponentType>;

export const FIRMWARE_POLICIES = ['report', 'enforce'] as const;
export const FirmwarePolicy = z.enum(FIRMWARE_POLICIES);
export type FirmwarePolicy = z.infer<typeof FirmwarePolicy>;

/** Per-component status in a compliance report; `unmanaged` is node-level only (no baseline matches). */
export const COMPONENT_STATUSES = ['compliant', 'outdated', 'unknown', 'updating', 'failed'] as const;
export const ComponentStatus = z.enum(COMPONENT_STATUSES);
export type ComponentStatus = z.infer<typeof ComponentStatus>;
export const NODE_FIRMWARE_STATES = [...COMPONENT_STATUSES, 'unmanaged'] as const;
export const NodeFirmwareState = z.enum(NODE_FIRMWARE_STATES);
export type NodeFirmwareState = z.infer<typeof NodeFirmwareState>;

/** Which machines a baseline is for. Values compare case-insensitively with surrounding space ignored, against
 * the facts: system.manufacturer, system.product, baseboard.product (board), system.sku (SMBIOS type 1/2). */
export const BaselineSelector = z.strictObject({
  manufacturer: text(256),
  product: text(256),
  board: text(256).optional(),
  sku: text(256).optional(),
});
export type BaselineSelector = z.infer<typeof BaselineSelector>;

export const UpdatePackage = z.strictObject({
  /** the package blob in the image store, by content digest; the agent downloads /images/<sha256> */
  sha256: Digest,
  /** run by the agent with `sh -c`; the downloaded file's path is in $BOOTFARM_FIRMWARE_FILE */
  command: text(4096),
  timeoutSeconds: z.number().int().min(1).max(24 * 3600).default(1800),
  /** the update takes effect only after a reboot */
  reboot: z.boolean().default(false),
});
export type UpdatePackage = z.infer<typeof UpdatePackage>;

const versionText = text(256);

export const BaselineComponent = z
  .strictObject({
    type: FirmwareComponentType,
    /** nic only: match NICs by kernel driver (`ethtool -i` driver) … */
    driver: text(64).optional(),
    /** … or by PCI vendor:device ("8086:1592", from sysfs) */
    pciId: z
      .string()
      .trim()
      .regex(/^[0-9a-fA-F]{4}:[0-9a-fA-F]{4}$/, 'must be a PCI vendor:device id like 8086:1592')
      .transform((s) => s.toLowerCase())
      .optional(),
    /** nic only: a machine without such a NIC (an optional card) is fine; otherwise a missing NIC is `unknown` */
    optional: z.boolean().optional(),
    /** exactly one of exact / minimum / allowed */
    exact: versionText.optional(),
    minimum: versionText.optional(),
    allowed: z.array(versionText).min(1).max(64).optional(),
    update: UpdatePackage.optional(),
  })
  .superRefine((c, ctx) => {
    const rules = (['exact', 'minimum', 'allowed'] as const).filter((k) => c[k] !== undefined);
    if (rules.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: rules.length > 1 ? [rules[1]!] : [],
        message: rules.length === 0 ? 'needs a version rule: one of exact, minimum, allowed' : `has more than one version rule (${rules.join(', ')}); keep one`,
      });
    }
    if (c.type === 'nic') {
      if ((c.driver === undefined) === (c.pciId === undefined)) {
        ctx.addIssue({ code: 'custom', path: c.driver !== undefined ? ['pciId'] : [], message: 'a nic component matches by exactly one of driver or pciId' });
      }
    } else {
      for (const k of ['driver', 'pciId', 'optional'] as const) {
        if (c[k] !== undefined) ctx.addIssue({ code: 'custom', path: [k], message: `${k} only applies to nic components` });
      }
    }
  });
export type BaselineComponent = z.infer<typeof BaselineComponent>;

export const BaselineName = z
  .string()
  .regex(/^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$/, 'names are 1-64 lower-case letters, digits, ".", "_", "-", starting and ending with a letter or digit');

export const Baseline = z
  .strictObject({
    name: BaselineName,
    description: z.string().max(1024).optional(),
    selector: BaselineSelector,
    /** report: compliance is reported and nodes boot on; enforce: stage-1 updates before the node may become ready */
    policy: FirmwarePolicy.default('report'),
    /** enforce: update attempts before the node is quarantined */
    maxAttempts: z.number().int().min(1).max(20).default(3),
    components: z.array(BaselineComponent).min(1).max(64),
    /**
     * required: a node whose latest facts do not say firmware.secureBoot 'enabled' is not compliant (issue 19).
     * It is a check, never an update: no package turns Secure Boot on, so under enforce such a node is quarantined.
     */
    secureBoot: z.enum(['required']).optional(),
  })
  .superRefine((b, ctx) => {
    const seen = new Map<string, number>();
    b.components.forEach((c, i) => {
      const id = componentId(c);
      const first = seen.get(id);
      if (first !== undefined) ctx.addIssue({ code: 'custom', path: ['components', i], message: `duplicates components[${first}] (${id})` });
      else seen.set(id, i);
    });
  });
export type Baseline = z.infer<typeof Baseline>;
export type BaselineInput = z.input<typeof Baseline>;

/** A stable name for a baseline component in reports, plans and filters: bios, bmc, nic:ice, nic:8086:1592. */
export function componentId(c: { type: FirmwareComponentType; driver?: string | undefined; pciId?: string | undefined }): string {
  if (c.type !== 'nic') return c.type;
  return `nic:${c.driver ?? c.pciId ?? '?'}`;
}

// ---- agent step -------------------------------------------------------------------------------------------

export const PlanStep = z.object({
  /** component id (bios, bmc, nic:ice …) */
  component: z.string(),
  /** nic only: the interfaces this update is for */
  devices: z.array(z.string()).default([]),
  current: z.string().nullable(),
  required: z.string(),
  package: z.object({
    /** path on the boot server: /images/<sha256> */
    url: z.string(),
    sha256: Digest,
  }),
  command: z.string(),
  timeoutSeconds: z.number().int().positive(),
  reboot: z.boolean(),
});
export type PlanStep = z.infer<typeof PlanStep>;

export const FirmwarePlan = z.object({
  uuid: z.string(),
  /** null when no baseline matches the node (nothing to do) */
  baseline: z.object({ name: z.string(), version: z.number().int(), policy: FirmwarePolicy }).nullable(),
  /** the attempt this plan belongs to; quote it in the report. null when there is nothing to run */
  attempt: z.number().int().positive().nullable(),
  steps: z.array(PlanStep),
  /** reboot after all steps succeeded (any step needs it) */
  reboot: z.boolean(),
});
export type FirmwarePlan = z.infer<typeof FirmwarePlan>;

export const StepResult = z.strictObject({
  component: z.string().max(128),
  command: z.string().max(4096).optional(),
  /** null when the command was killed (timeout) or could not start */
  exitCode: z.number().int().nullable(),
  /** the tail of each stream; the agent truncates, the server refuses more */
  stdout: z.string().max(65536).default(''),
  stderr: z.string().max(65536).default(''),
  durationMs: z.number().int().nonnegative().optional(),
  timedOut: z.boolean().optional(),
  /** the package digest the agent verified before running the command */
  sha256: Digest.optional(),
});
export type StepResult = z.infer<typeof StepResult>;

/** What the agent ran. It never claims a version: only the facts of the next registration change compliance. */
export const FirmwareReport = z.strictObject({
  attempt: z.number().int().positive(),
  results: z.array(StepResult).max(64),
});
export type FirmwareReport = z.infer<typeof FirmwareReport>;

export const FirmwareReportResponse = z.object({
  attempt: z.number().int().positive(),
  ok: z.boolean(),
  /** reboot: updates applied and need a reboot; register: run stage-1 registration again (fresh facts) */
  next: z.enum(['reboot', 'register']),
});
export type FirmwareReportResponse = z.infer<typeof FirmwareReportResponse>;
