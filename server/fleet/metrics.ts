// Prometheus metrics of the fleet, on a registry handed in (never prom-client's global default, so tests and
// several instances in one process do not collide). metricsResponse() is what the lead mounts at /metrics.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { NODE_STATES } from '../contract/lifecycle.ts';
import type { BmcError } from '../bmc/types.ts';

export function createFleetMetrics(registry: Registry) {
  const m = {
    registry,
    nodes: new Gauge({ name: 'bootfarm_nodes', help: 'Nodes by lifecycle state', labelNames: ['state'] as const, registers: [registry] }),
    heartbeatAge: new Histogram({
      name: 'bootfarm_heartbeat_age_seconds',
      help: 'Age of the last heartbeat of each active node, observed every controller tick',
      buckets: [5, 15, 30, 60, 90, 120, 180, 300, 600, 1800],
      registers: [registry],
    }),
    rebuildsStarted: new Counter({ name: 'bootfarm_rebuilds_started_total', help: 'Rebuilds started (bootdev pxe + power cycle issued)', registers: [registry] }),
    rebuildsSucceeded: new Counter({ name: 'bootfarm_rebuilds_succeeded_total', help: 'Rebuilds after which the node became active again', registers: [registry] }),
    rebuildsFailed: new Counter({ name: 'bootfarm_rebuilds_failed_total', help: 'Rebuild attempts that failed (BMC error, or the node failed again)', registers: [registry] }),
    quarantined: new Counter({ name: 'bootfarm_quarantined_total', help: 'Nodes quarantined by the fleet controller', registers: [registry] }),
    failures: new Counter({ name: 'bootfarm_node_failures_total', help: 'Nodes failed by the health controller, by cause', labelNames: ['cause'] as const, registers: [registry] }),
    timeToRecover: new Histogram({
      name: 'bootfarm_time_to_recover_seconds',
      help: 'From the first failure to active again, over all rebuild attempts',
      buckets: [30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 21600],
      registers: [registry],
    }),
    bmcLatency: new Histogram({
      name: 'bootfarm_bmc_call_duration_seconds',
      help: 'BMC call latency by driver and operation',
      labelNames: ['driver', 'operation'] as const,
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    bmcErrors: new Counter({ name: 'bootfarm_bmc_call_errors_total', help: 'BMC calls that failed, by driver, operation and kind', labelNames: ['driver', 'operation', 'kind'] as const, registers: [registry] }),
    webhookDeliveries: new Counter({ name: 'bootfarm_webhook_deliveries_total', help: 'Webhook delivery attempts by result', labelNames: ['result'] as const, registers: [registry] }),
    peerHold: new Gauge({ name: 'bootfarm_fleet_peer_hold_replicas', help: 'Peer replicas silent within the hold (fleet.replicas.silenceHoldSeconds): while above 0 the leader judges no heartbeat', registers: [registry] }),
    breakerOpen: new Gauge({ name: 'bootfarm_fleet_breaker_open', help: '1 while the fleet-wide circuit breaker is open: automatic repair stopped until an operator resumes it', registers: [registry] }),
    breakerTrips: new Counter({ name: 'bootfarm_fleet_breaker_trips_total', help: 'Times the fleet-wide circuit breaker opened', registers: [registry] }),
    ladderSteps: new Counter({ name: 'bootfarm_repair_steps_total', help: 'Escalation ladder steps taken, by step (confirm, soft-reset, reprovision, bmc-reset)', labelNames: ['step'] as const, registers: [registry] }),
    isLeader: new Gauge({ name: 'bootfarm_fleet_leader', help: '1 when this replica runs the fleet controllers', registers: [registry] }),
    // with the registry's default label replica=<id> (main.ts), every replica's series are told apart
    leader: new Gauge({ name: 'bootfarm_leader', help: '1 when this replica is the leader (holds the lock and the current leader epoch)', registers: [registry] }),
    leaderEpoch: new Gauge({ name: 'bootfarm_leader_epoch', help: 'The leader epoch (fencing token) this replica holds or last held; 0 before it ever led', registers: [registry] }),

    /** leadership changed (or was confirmed): both leader gauges and the epoch */
    setLeader(on: boolean, epoch?: number) {
      m.isLeader.set(on ? 1 : 0);
      m.leader.set(on ? 1 : 0);
      if (epoch !== undefined) m.leaderEpoch.set(epoch);
    },

    /** the BmcDeps.observe hook */
    observeBmc(driver: string, operation: string, ms: number, error?: BmcError) {
      // operations are a small fixed set ("power on", "bootdev pxe" …): safe as a label
      m.bmcLatency.observe({ driver, operation }, ms / 1000);
      if (error) m.bmcErrors.inc({ driver, operation, kind: error.kind });
    },
    setNodeCounts(counts: Record<string, number>) {
      for (const s of new Set([...NODE_STATES, ...Object.keys(counts)])) m.nodes.set({ state: s }, counts[s] ?? 0);
    },
  };
  return m;
}

export type FleetMetrics = ReturnType<typeof createFleetMetrics>;

/** GET /metrics: the registry in Prometheus text format (a web Response, usable from hono as-is). */
export async function metricsResponse(registry: Registry): Promise<Response> {
  return new Response(await registry.metrics(), { status: 200, headers: { 'content-type': registry.contentType } });
}
