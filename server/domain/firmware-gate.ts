// The real InspectionGate (server/domain/inspection.ts): after every registration, decide from the fresh facts
// whether the node may become ready, must update firmware in stage-1 first, or goes to quarantine. The rules are
// decideGate's (pure); this file only reads baselines and keeps the attempt streak through a narrow port that
// server/store/firmware.ts satisfies, so the domain stays free of drizzle.
import type { Facts } from '../contract/facts.ts';
import type { PlanStep } from '../contract/firmware.ts';
import type { InspectionGate, InspectionSubject } from './inspection.ts';
import { decideGate, evaluateCompliance, identityFromFacts, selectBaseline, type StoredBaseline } from './firmware.ts';

export interface FirmwareGatePort {
  listBaselines(): Promise<StoredBaseline[]>;
  openAttempts(uuid: string): Promise<readonly unknown[]>;
  startAttempt(uuid: string, baseline: { name: string; version: number }, steps: PlanStep[], actor: string): Promise<unknown>;
  closeAttempts(uuid: string, outcome: 'closed' | 'gave-up'): Promise<number>;
}

export function createFirmwareGate({ store, actor = 'firmware-gate' }: { store: FirmwareGatePort; actor?: string }): InspectionGate {
  return async function firmwareGate(node: InspectionSubject, facts: Facts) {
    const baseline = selectBaseline(await store.listBaselines(), identityFromFacts(facts));
    const compliance = evaluateCompliance(baseline, facts);
    const open = await store.openAttempts(node.uuid);
    const decision = decideGate(baseline, compliance, open.length);
    switch (decision.verdict.action) {
      case 'ready':
        // compliant now (or no longer enforced): the streak of attempts is over, the next problem starts at 1
        if (open.length) await store.closeAttempts(node.uuid, 'closed');
        break;
      case 'quarantine':
        // a person decides now; if they send it round again, it gets a fresh set of attempts
        await store.closeAttempts(node.uuid, 'gave-up');
        break;
      case 'firmware':
        await store.startAttempt(node.uuid, { name: baseline!.spec.name, version: baseline!.version }, decision.steps, actor);
        break;
    }
    return decision.verdict;
  };
}
