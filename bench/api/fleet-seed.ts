// The fleet bench/api/fleet-list.ts reads: N nodes written straight into the tables in batches (the lifecycle is
// what bench/api/bench.ts measures; here it would take an hour for 10,000), with the rows a registered, installed
// node has — two interfaces with their switch ports, one facts document the size of a small server's, four
// events — so the node list, the fleet page and the memory per node are read over realistic tables, not bare
// node rows. States and labels are spread by index so filters match a known share (state failed: 1 in 6,
// rack r4: 1 in 20).
import { sql } from 'drizzle-orm';
import type { DbHandle } from '../../server/db/index.ts';
import { events, facts, interfaces, nodes } from '../../server/db/schema/index.ts';

export const STATES = ['active', 'active', 'active', 'ready', 'failed', 'maintenance'] as const;
export const fleetUuid = (i: number) => `f1ee0000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
const mac = (i: number, port: number) => `52:54:${port.toString(16).padStart(2, '0')}:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;

/** A facts document shaped like the agent's (agent/ probes): system, BIOS, CPUs, memory, disks, NICs, LLDP. */
function factsOf(i: number, uuid: string) {
  return {
    system: { uuid, serial: `FLEET-${i}`, manufacturer: 'Dell Inc.', product: 'PowerEdge R650' },
    bios: { vendor: 'Dell Inc.', version: '1.13.2', releaseDate: '06/13/2024' },
    cpu: { model: 'Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz', sockets: 2, cores: 64, threads: 128 },
    memory: { totalBytes: 512 * 2 ** 30, dimms: Array.from({ length: 16 }, (_, d) => ({ slot: `A${d + 1}`, sizeBytes: 32 * 2 ** 30, speedMTs: 3200, manufacturer: 'Hynix' })) },
    disks: Array.from({ length: 4 }, (_, d) => ({ name: `nvme${d}n1`, model: 'Dell Ent NVMe CM6 RI 3.84TB', serial: `S${i}D${d}`, sizeBytes: 3_840_755_982_336, rotational: false })),
    nics: [0, 1].map((p) => ({ name: `eno${p + 1}`, mac: mac(i, p), driver: 'ice', firmwareVersion: '4.40 0x8001c967 1.3534.0', link: true, speedMbps: 25000 })),
    lldp: [0, 1].map((p) => ({ interface: `eno${p + 1}`, chassisId: `02:00:00:00:${(i % 20).toString(16).padStart(2, '0')}:0${p}`, systemName: `tor-r${i % 20}-${p}`, portId: `swp${(i % 48) + 1}`, portDescription: `rack r${i % 20} port ${(i % 48) + 1}` })),
  };
}

export async function seedFleet(handle: DbHandle, n: number, { batch = 500 } = {}): Promise<void> {
  const db = handle.db;
  const now = new Date();
  for (let from = 0; from < n; from += batch) {
    const ids = Array.from({ length: Math.min(batch, n - from) }, (_, k) => from + k);
    await db.insert(nodes).values(ids.map((i) => ({
      uuid: fleetUuid(i), serial: `FLEET-${i}`, manufacturer: 'Dell Inc.', product: 'PowerEdge R650', hostname: `node-${i}`,
      state: STATES[i % STATES.length]!, stateSince: now, stateReason: 'seeded', labels: { rack: `r${i % 20}`, role: i % 2 ? 'hv' : 'storage' },
      lastSeen: now, lastHeartbeat: now, kernelDigest: 'a'.repeat(64), initrdDigest: 'b'.repeat(64), imageName: 'compute', imageVersion: '2026.11.1', createdAt: now, updatedAt: now,
    })));
    await db.insert(interfaces).values(ids.flatMap((i) => [0, 1].map((p) => ({ mac: mac(i, p), nodeUuid: fleetUuid(i), name: `eno${p + 1}`, driver: 'ice', firmwareVersion: '4.40', switchChassis: `02:00:00:00:00:0${p}`, switchName: `tor-r${i % 20}-${p}`, switchPort: `swp${(i % 48) + 1}`, updatedAt: now }))));
    await db.insert(facts).values(ids.map((i) => ({ nodeUuid: fleetUuid(i), collectedAt: now, agentVersion: '0.9.0', facts: factsOf(i, fleetUuid(i)), failures: [], hash: `${i}` })));
    await db.insert(events).values(ids.flatMap((i) => [
      { nodeUuid: fleetUuid(i), at: now, kind: 'transition', toState: 'discovered', reason: 'registered', actor: 'agent' },
      { nodeUuid: fleetUuid(i), at: now, kind: 'phase', reason: 'registered', actor: 'agent', data: { phase: 'registered', nics: 2, failures: 0 } },
      { nodeUuid: fleetUuid(i), at: now, kind: 'transition', fromState: 'provisioning', toState: 'active', reason: 'installed', actor: 'agent' },
      { nodeUuid: fleetUuid(i), at: now, kind: 'phase', reason: 'heartbeat', actor: 'agent', data: { uptimeSeconds: i } },
    ]));
  }
  // the planner's statistics as a long-running server would have them (autovacuum analyzes after bulk writes)
  await db.execute(sql`analyze`);
}
