// Shared wire primitives. server/contract is the only server code agent/ may import,
// so nothing here touches the database, the logger or Node-only APIs.
import { z } from 'zod';

/** SMBIOS system UUID (DMTF DSP0134 type 1), canonical lower-case 8-4-4-4-12 — the form iPXE's ${uuid} and
 * /sys/class/dmi/id/product_uuid print. Upper case is accepted and folded. */
export const SmbiosUuid = z
  .string()
  .trim()
  .regex(/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/, 'must be an SMBIOS UUID like 4c4c4544-0042-3510-8052-b4c04f4e4d32')
  .transform((s) => s.toLowerCase());

/** An Ethernet MAC address; ':' or '-' separated, folded to lower-case colon form. */
export const Mac = z
  .string()
  .trim()
  .regex(/^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$/, 'must be a MAC address like 52:54:00:12:34:56')
  .transform((s) => s.toLowerCase().replaceAll('-', ':'));

/** A sha256 content digest, hex. */
export const Digest = z.string().regex(/^[0-9a-f]{64}$/, 'must be a sha256 digest: 64 lower-case hex characters');

/** Labels: kubernetes-style key=value, used for rack, role, site… */
export const LabelKey = z.string().regex(/^[a-zA-Z0-9]([a-zA-Z0-9._/-]{0,61}[a-zA-Z0-9])?$/, 'label keys are 1-63 characters of letters, digits, ".", "_", "/", "-"');
export const Labels = z.record(LabelKey, z.string().max(256));

export const ErrorBody = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    details: z.unknown().optional(),
  }),
});
export type ErrorBody = z.infer<typeof ErrorBody>;
