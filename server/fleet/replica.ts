// Who this replica is, for the replicas table (GET /api/v1/cluster): id, host, advertised URL, build and schema
// version, start time. The id is the fleet controller's instance id and the leader epoch's holder.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { buildSchemaVersion } from '../db/index.ts';
import type { ReplicaPresence } from '../store/replicas.ts';

/** host:pid:random — new for every process, so a restarted replica is a new one (and a new leader) */
export const newReplicaId = () => `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;

/** BOOTFARM_VERSION, else package.json's version, else "unknown" */
export function productVersion(): string {
  if (process.env.BOOTFARM_VERSION) return process.env.BOOTFARM_VERSION;
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export function describeReplica({ id = newReplicaId(), url, startedAt = new Date() }: { id?: string; url?: string | null; startedAt?: Date } = {}): ReplicaPresence {
  return { id, hostname: hostname(), url: url ?? null, version: productVersion(), schemaVersion: buildSchemaVersion(), startedAt };
}
