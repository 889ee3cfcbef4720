// Wire formats of the in-band BMC setup (GET/POST /api/v1/agent/:uuid/bmc-setup), shared by the server routes
// (server/api/bmc-setup.ts) and the agent (agent/bmc/).
// agent/bmc/bmc.test.ts parses the real server's answers with these schemas, so a drift fails a test.
import { z } from 'zod';

/** The plan of server/bmc/setup.ts (version 1). `script` holds the new password: never log or report it. */
export const BmcSetupPlan = z.object({
  version: z.literal(1),
  interface: z.literal('open'),
  channel: z.number().int(),
  userId: z.number().int(),
  script: z.string().min(1).max(65536),
  /** the script with the password masked: the only form that may be logged or reported */
  redacted: z.string(),
  expect: z.object({ address: z.string(), port: z.number().int(), username: z.string() }),
});
export type BmcSetupPlan = z.infer<typeof BmcSetupPlan>;

/** GET: a pending setup is handed out once; afterwards (or when none was requested) `pending: false`. */
export const BmcSetupOffer = z.discriminatedUnion('pending', [
  z.object({ pending: z.literal(false) }),
  z.object({ pending: z.literal(true), setupId: z.string().min(1).max(64), plan: BmcSetupPlan }),
]);
export type BmcSetupOffer = z.infer<typeof BmcSetupOffer>;

/** POST: what `ipmitool -I open exec FILE` did. `output` is redacted by the agent (and again by the server). */
export const BmcSetupResult = z.strictObject({
  setupId: z.string().min(1).max(64),
  /** null when ipmitool was killed (timeout) or could not start */
  exitCode: z.number().int().nullable(),
  output: z.string().max(65536).default(''),
  durationMs: z.number().int().nonnegative().optional(),
  timedOut: z.boolean().optional(),
});
export type BmcSetupResult = z.input<typeof BmcSetupResult>;

/** The server's verdict after it tried the new credentials out-of-band. */
export const BmcSetupOutcome = z.object({
  setupId: z.string(),
  ok: z.boolean(),
  state: z.enum(['verified', 'failed']),
  message: z.string(),
});
export type BmcSetupOutcome = z.infer<typeof BmcSetupOutcome>;
