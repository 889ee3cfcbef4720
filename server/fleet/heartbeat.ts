// What a heartbeat from a node's compute OS means for its lifecycle (issue 12 §2). The agent route
// (server/api/agent.ts) authenticates the node and parses the body; everything else is here:
//   provisioning  → active     the compute OS is up; a lost `installed` call must not strand the node
//   failed        → active     the node is alive after all (recover), unless its BMC is what failed it
//   rebuilding    (unchanged)  a heartbeat from the boot being replaced: one event, the answer says "reboot"
// Each change is a lifecycle transition with its event; a heartbeat never fails a node, so a node in
// rebuilding cannot be failed twice by its own old boot.
import type { Db } from '../db/index.ts';
import type { Clock } from '../clock.ts';
import { createFleetStore } from '../store/fleet.ts';
import { StaleDecisionError, type NodeRow, type NodeStore } from '../store/nodes.ts';
import type { FailCause } from './decide.ts';
import type { BeatBuffer } from './beats.ts';
import type { HypervisorCapacity } from '../contract/agent.ts';

/**
 * Failures a heartbeat disproves: the node did not report (heartbeat, timeout) or a repair step could not reach
 * its BMC (bmc). A node its BMC reported off or critical stays failed: a heartbeat does not make the BMC's
 * reading go away, and recovering it would only flap between active and failed on every poll.
 */
const RECOVERABLE: ReadonlySet<FailCause | string> = new Set<FailCause>(['heartbeat', 'timeout', 'bmc']);

export interface HeartbeatOutcome {
  node: NodeRow;
  next: 'continue' | 'reboot';
  /** the beat was buffered (an active node reporting what it was recorded with): nothing written yet */
  buffered?: boolean;
}

/**
 * `beats`: where a steady-state heartbeat goes (server/fleet/beats.ts); without it every heartbeat writes the node
 * row at once. `buffered` in the outcome says the beat went to the buffer, which also closes guessed stage-1
 * attempts at its flush (the route then skips recordAgentUse's write).
 */
export function createHeartbeats({ nodes, db, clock, beats, actor = 'agent' }: { nodes: NodeStore; db: Db; clock: Clock; beats?: BeatBuffer; actor?: string }) {
  const fleet = createFleetStore(db);

  /** an event with data.note written once per stay in the current state */
  async function noteOnce(node: NodeRow, note: string, reason: string, data: Record<string, unknown> = {}): Promise<void> {
    if (await fleet.hasNote(node.uuid, note, node.stateSince)) return;
    await nodes.addEvent(node.uuid, { kind: 'fleet', reason, actor, data: { note, ...data } });
  }

  return async function heartbeat(node: NodeRow, seen: { kernelDigest?: string; initrdDigest?: string; hypervisor?: HypervisorCapacity }): Promise<HeartbeatOutcome> {
    const now = clock.now();
    // the steady state: only the time changes, so the beat waits in memory for the next batch (beats.ts). A beat
    // with the hypervisor capacity is written at once: the agent sends it only when it changed (a guest started or
    // stopped) or every HEARTBEAT_CAPACITY_EVERY beats, so this stays a small share of the beats
    const same = (seen.kernelDigest === undefined || seen.kernelDigest === node.kernelDigest) && (seen.initrdDigest === undefined || seen.initrdDigest === node.initrdDigest);
    if (beats && !beats.writeThrough && node.state === 'active' && same && !seen.hypervisor) {
      await beats.beat(node.uuid, now);
      return { node, next: 'continue', buffered: true };
    }
    await nodes.touch(node.uuid, {
      lastSeen: now,
      lastHeartbeat: now,
      ...(seen.kernelDigest ? { kernelDigest: seen.kernelDigest } : {}),
      ...(seen.initrdDigest ? { initrdDigest: seen.initrdDigest } : {}),
      ...(seen.hypervisor ? { hypervisor: seen.hypervisor, hypervisorAt: now } : {}),
    });
    if (node.state === 'provisioning') node = await nodes.transition(node.uuid, { type: 'installed', reason: 'heartbeat from the compute OS before installed' }, actor);
    else if (node.state === 'failed') {
      const last = await fleet.lastFailure(node.uuid);
      // only failures the fleet controller made with a cause a heartbeat disproves; a person's `fail` stands
      const cause = last?.cause ?? null;
      if (last && last.actor === 'fleet' && cause && RECOVERABLE.has(cause)) {
        try {
          node = await nodes.transition(node.uuid, { type: 'recover', reason: `heartbeat from the running node: it is alive (was failed: ${node.stateReason ?? cause})` }, actor, { cause, failedAt: last.at.toISOString() }, { expect: { state: 'failed', stateSince: node.stateSince } });
        } catch (e) {
          // the controller started a repair step in between: the node is rebuilding now, answer from that
          if (!(e instanceof StaleDecisionError)) throw e;
          node = await nodes.require(node.uuid);
        }
      } else {
        await noteOnce(node, 'heartbeat-while-failed', `heartbeat while failed (${cause ? `cause ${cause}` : `failed by ${last?.actor ?? 'unknown'}`}): left failed; a person or the repair ladder decides`, { cause });
      }
    }
    if (node.state === 'rebuilding') await noteOnce(node, 'old-boot-heartbeat', 'heartbeat from the boot being replaced while rebuilding: told to reboot, not failed again');
    return { node, next: node.state === 'rebuilding' ? 'reboot' : 'continue' };
  };
}

export type Heartbeats = ReturnType<typeof createHeartbeats>;
