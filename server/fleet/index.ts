// Fleet health and automatic rebuild (issue 6): what main wires.
export { createFleet, type Fleet, type FleetDeps, type TickReport } from './controller.ts';
export { FleetConfig, type FleetConfigInput } from './config.ts';
export { metricsResponse, createFleetMetrics, type FleetMetrics } from './metrics.ts';
export { createPgLeaderElector, localLeader, type LeaderElector } from './leader.ts';
export { sign as signWebhook, verifySignature as verifyWebhookSignature, SIGNATURE_HEADER } from './webhooks.ts';
export * from './decide.ts';
