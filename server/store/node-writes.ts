// Which nodes this process has changed, as a count per node. A cache of node rows (server/api/beat-cache.ts) takes
// the count before it reads a row and uses the row only while the count is unchanged, so a change this replica makes
// (a transition, a new node credential, new digests, a deletion) bites at its next request. Counted after the
// change's transaction has committed (NodeStore's public methods, the inventory's delete): a count taken before a
// read that raced the commit differs afterwards. A store made on an outer transaction (the fleet controller's)
// counts before that transaction commits; changes from other replicas are not seen here at all: for both, the
// cache's ttl is the bound (docs/security-model.md). One map per process, as "this replica" is one process; it
// holds one number per node ever changed here.
const writes = new Map<string, number>();

export const nodeWriteCount = (uuid: string): number => writes.get(uuid) ?? 0;

export function nodeWritten(uuid: string): void {
  writes.set(uuid, nodeWriteCount(uuid) + 1);
}
