// What happens after a node registers: the inspection gate decides whether it may become ready.
// The firmware compliance module supplies the real gate; the default lets every node through.
import type { Facts } from '../contract/facts.ts';
import type { NodeState } from '../contract/lifecycle.ts';

export interface InspectionSubject {
  uuid: string;
  state: NodeState;
  manufacturer: string | null;
  product: string | null;
  labels: Record<string, string>;
}

export type InspectionVerdict =
  | { action: 'ready'; reason?: string }
  /** the node must run a firmware plan in stage-1 before it may become ready (policy enforce) */
  | { action: 'firmware'; reason: string }
  /** too many failed attempts: a person decides */
  | { action: 'quarantine'; reason: string };

export type InspectionGate = (node: InspectionSubject, facts: Facts) => Promise<InspectionVerdict>;

export const allowAll: InspectionGate = async () => ({ action: 'ready' });
