import { z } from 'zod';

/** Node lifecycle states (ARCHITECTURE.md "Node lifecycle"). */
export const NODE_STATES = [
  'discovered',
  'inspecting',
  'firmware-updating',
  'ready',
  'provisioning',
  'active',
  'failed',
  'rebuilding',
  'quarantined',
  'maintenance',
  'retired',
] as const;
export const NodeState = z.enum(NODE_STATES);
export type NodeState = z.infer<typeof NodeState>;

/** Phases the agent reports on its timeline (POST /api/v1/agent/:uuid/events). Free-form names are allowed
 * too (lower-case, dashed) so a newer agent can add phases without a server release. */
export const KNOWN_PHASES = [
  'stage1-started',
  'facts-collected',
  'registered',
  'firmware-check',
  'firmware-ok',
  'firmware-updating',
  'firmware-updated',
  'firmware-failed',
  'profile-fetched',
  'image-downloaded',
  'kexec-started',
  'compute-started',
  'iscsi-login',
  'installed',
  'agent-error',
] as const;
export const PhaseName = z.string().regex(/^[a-z][a-z0-9-]{1,47}$/, 'phase names are lower-case words joined by "-"');
