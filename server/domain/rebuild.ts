// A rebuild attempt as the fleet controller reasons about it. It lives in the domain (not in server/fleet/) so the
// store, which sits below the controllers, can return it without importing upward.
export interface RebuildRecord {
  id: number;
  nodeUuid: string;
  attempt: number;
  rack: string | null;
  failedAt: Date;
  startedAt: Date;
  finishedAt: Date | null;
  outcome: string;
  /** escalation ladder step: confirm (attempt 0) | soft-reset | reprovision | bmc-reset (server/fleet/ladder.ts) */
  step?: string;
  reason?: string | null;
}
