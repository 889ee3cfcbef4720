// The node rows of steady-state heartbeats, kept for a few seconds so that a fleet heartbeating at thousands a second
// does not read every node row on every beat (issue 15 item 4; BENCHMARKS.md "Agent API hot paths"). What is kept is
// the row only: every beat still checks its credential against the row's credential hash, as agentAuth does.
// A row is used only while
//   - it is younger than the ttl (default 5 s): the bound on how long a change made by another replica (a rotated
//     credential, a deleted node, a transition such as rebuild) takes to bite here;
//   - this replica has not changed the node since it was read (server/store/node-writes.ts): a change made here
//     bites at the next beat;
//   - it is the row of an active node whose beat went to the buffer (the steady state), as recorded by remember.
// docs/security-model.md ("Agent credentials") states the bound.
import { nodeWriteCount } from '../store/node-writes.ts';
import type { Clock } from '../clock.ts';
import type { NodeRow } from '../store/nodes.ts';

export interface BeatCache {
  /** the node row for a beat, or undefined (then read it, taking `mark` first) */
  get(uuid: string): NodeRow | undefined;
  /** this replica's change count of the node, to be taken before reading the row that `remember` is given */
  mark(uuid: string): number;
  /** keep `node` (read after `mark` returned `writes`) if it is active */
  remember(node: NodeRow, writes: number): void;
}

export function createBeatCache({ clock, ttlMs = 5_000, maxEntries = 100_000 }: { clock: Clock; ttlMs?: number; maxEntries?: number }): BeatCache {
  const entries = new Map<string, { node: NodeRow; writes: number; until: number }>();
  return {
    get(uuid) {
      const e = entries.get(uuid);
      if (!e) return undefined;
      if (e.until <= clock.now().getTime() || e.writes !== nodeWriteCount(uuid)) {
        entries.delete(uuid);
        return undefined;
      }
      return e.node;
    },
    mark: nodeWriteCount,
    remember(node, writes) {
      if (ttlMs <= 0 || node.state !== 'active') return;
      // a Map iterates in insertion order: the oldest entry goes first when the cache is full
      if (entries.size >= maxEntries && !entries.has(node.uuid)) entries.delete(entries.keys().next().value!);
      entries.delete(node.uuid);
      entries.set(node.uuid, { node, writes, until: clock.now().getTime() + ttlMs });
    },
  };
}
