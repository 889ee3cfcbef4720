// The node lifecycle as a pure function (ARCHITECTURE.md "Node lifecycle"):
//   discovered → inspecting → (firmware-updating) → ready → provisioning → active
//   active → failed → rebuilding → inspecting …, rebuilding ×N → quarantined, failed → active (recover),
//   any → maintenance (held by an operator) → back; retired is final.
// The store applies a transition together with its event row in one transaction; this file knows nothing
// of storage, time or HTTP.
import type { NodeState } from '../contract/lifecycle.ts';

export type LifecycleEvent =
  /** stage-1 registered: the node is being inspected */
  | { type: 'inspect'; reason?: string }
  /** facts say firmware must be updated before the node may become ready (enforce policy) */
  | { type: 'firmware-required'; reason?: string }
  /** inspection (and firmware) passed */
  | { type: 'inspected'; reason?: string }
  /** the agent fetched its profile and is about to kexec */
  | { type: 'provision'; reason?: string }
  /** the compute OS reported in with its boot token */
  | { type: 'installed'; reason?: string }
  | { type: 'fail'; reason: string }
  /** a failed node, not being rebuilt, proved alive (a heartbeat with its current boot's credential) */
  | { type: 'recover'; reason: string }
  | { type: 'rebuild'; reason: string }
  | { type: 'quarantine'; reason: string }
  | { type: 'maintenance-on'; reason?: string }
  | { type: 'maintenance-off'; reason?: string }
  | { type: 'retire'; reason?: string };

export type LifecycleEventType = LifecycleEvent['type'];

export interface LifecycleNode {
  state: NodeState;
  /** state to return to when maintenance ends */
  heldFrom: NodeState | null;
  rebuildAttempts: number;
}

export interface TransitionResult extends LifecycleNode {
  reason: string | null;
}

export class TransitionError extends Error {
  constructor(
    readonly from: NodeState,
    readonly event: LifecycleEventType,
    message: string,
  ) {
    super(message);
    this.name = 'TransitionError';
  }
}

/** Which states each event may leave from, and where it goes. Maintenance and retire are special-cased. */
const MOVES: Record<Exclude<LifecycleEventType, 'maintenance-on' | 'maintenance-off' | 'retire'>, { from: readonly NodeState[]; to: NodeState }> = {
  // A diskless node passes through stage-1 on every boot, so any running state may re-enter inspection:
  // an active node that PXE boots again has rebooted under us and is inspected afresh.
  inspect: { from: ['discovered', 'rebuilding', 'ready', 'firmware-updating', 'provisioning', 'active', 'failed'], to: 'inspecting' },
  'firmware-required': { from: ['inspecting'], to: 'firmware-updating' },
  inspected: { from: ['inspecting', 'firmware-updating'], to: 'ready' },
  provision: { from: ['ready'], to: 'provisioning' },
  installed: { from: ['provisioning'], to: 'active' },
  fail: { from: ['inspecting', 'firmware-updating', 'provisioning', 'active', 'rebuilding', 'ready'], to: 'failed' },
  // only from failed: a node being rebuilt (rebuilding) is on its way through PXE, and its old boot is stale
  recover: { from: ['failed'], to: 'active' },
  // quarantined → rebuilding is the person deciding to try again
  rebuild: { from: ['failed', 'active', 'ready', 'quarantined', 'provisioning', 'inspecting'], to: 'rebuilding' },
  quarantine: { from: ['discovered', 'inspecting', 'firmware-updating', 'ready', 'provisioning', 'active', 'failed', 'rebuilding'], to: 'quarantined' },
};

export function transition(node: LifecycleNode, event: LifecycleEvent): TransitionResult {
  const from = node.state;
  const reason = event.reason ?? null;
  if (from === 'retired') {
    throw new TransitionError(from, event.type, `node is retired; "${event.type}" is not possible from a final state`);
  }
  switch (event.type) {
    case 'maintenance-on':
      if (from === 'maintenance') throw new TransitionError(from, event.type, 'node is already in maintenance');
      return { state: 'maintenance', heldFrom: from, rebuildAttempts: node.rebuildAttempts, reason };
    case 'maintenance-off':
      if (from !== 'maintenance') throw new TransitionError(from, event.type, `node is ${from}, not in maintenance`);
      return { state: node.heldFrom ?? 'discovered', heldFrom: null, rebuildAttempts: node.rebuildAttempts, reason };
    case 'retire':
      return { state: 'retired', heldFrom: null, rebuildAttempts: node.rebuildAttempts, reason };
    default: {
      const move = MOVES[event.type];
      if (!move.from.includes(from)) {
        throw new TransitionError(from, event.type, `cannot ${event.type} a node that is ${from} (allowed from: ${move.from.join(', ')})`);
      }
      let rebuildAttempts = node.rebuildAttempts;
      if (event.type === 'rebuild') rebuildAttempts = from === 'quarantined' ? 1 : rebuildAttempts + 1;
      // reaching active closes the repair loop: the next failure starts counting again
      if (event.type === 'installed' || event.type === 'recover') rebuildAttempts = 0;
      return { state: move.to, heldFrom: null, rebuildAttempts, reason };
    }
  }
}

/** Whether `event` is allowed from `state`, without building a result. */
export function canTransition(state: NodeState, type: LifecycleEventType): boolean {
  try {
    transition({ state, heldFrom: null, rebuildAttempts: 0 }, { type, reason: 'probe' } as LifecycleEvent);
    return true;
  } catch {
    return false;
  }
}
