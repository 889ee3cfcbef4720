// The cluster as operators see it (GET /api/v1/cluster, `bootfarm cluster`): pure, from the replicas' presence
// rows and the leader epoch. A replica is gone after `goneAfterMs` without an upsert (missed ticks × tick).
import type { EpochState } from '../store/fence.ts';
import type { ReplicaRow } from '../store/replicas.ts';

export interface ClusterReplica {
  id: string;
  hostname: string;
  url: string | null;
  version: string;
  schemaVersion: string;
  startedAt: string;
  lastSeen: string;
  /** seconds since its last upsert */
  lastSeenAgoSeconds: number;
  status: 'up' | 'gone';
  /** holds the current leader epoch and is up */
  leader: boolean;
}

export interface ClusterView {
  /** the holder of the current epoch; up: false when it stopped reporting (a failover is under way) */
  leader: { id: string; epoch: number; since: string | null; up: boolean } | null;
  epoch: number;
  replicas: ClusterReplica[];
  goneAfterSeconds: number;
  /** the replica versions or schema versions differ (a rolling upgrade in progress, or one left behind) */
  mixedVersions: boolean;
}

export function clusterView({ rows, epoch, now, goneAfterMs }: { rows: ReplicaRow[]; epoch: EpochState; now: Date; goneAfterMs: number }): ClusterView {
  const replicas = rows.map((r): ClusterReplica => {
    const ago = now.getTime() - r.lastSeen.getTime();
    const up = ago <= goneAfterMs;
    return {
      id: r.id,
      hostname: r.hostname,
      url: r.url,
      version: r.version,
      schemaVersion: r.schemaVersion,
      startedAt: r.startedAt.toISOString(),
      lastSeen: r.lastSeen.toISOString(),
      lastSeenAgoSeconds: Math.max(0, Math.round(ago / 1000)),
      status: up ? 'up' : 'gone',
      leader: up && r.id === epoch.holder,
    };
  });
  // up first, then by id: a stable listing
  replicas.sort((a, b) => (a.status === b.status ? a.id.localeCompare(b.id) : a.status === 'up' ? -1 : 1));
  const up = replicas.filter((r) => r.status === 'up');
  return {
    leader: epoch.holder ? { id: epoch.holder, epoch: epoch.epoch, since: epoch.at?.toISOString() ?? null, up: up.some((r) => r.id === epoch.holder) } : null,
    epoch: epoch.epoch,
    replicas,
    goneAfterSeconds: Math.round(goneAfterMs / 1000),
    mixedVersions: new Set(up.map((r) => `${r.version}/${r.schemaVersion}`)).size > 1,
  };
}
