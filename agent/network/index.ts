// The compute OS's network from its detail (issue 16 item 1): plan.ts (pure planner), state.ts (iproute2 JSON
// parsers and the heartbeat's read-back), apply.ts (the runner, conflict probes, hostname, resolv.conf).
export { planNetwork, BOND_MIIMON_MS, type Step } from './plan.ts';
export { parseIpLink, parseIpAddr, parseIpRoute, readState, configuredFrom, canonicalPrefixed, IpJsonError, type NetState, type LinkState, type AddressState, type RouteState } from './state.ts';
export { applyNetwork, pendingChanges, arpProbe, resolvConfText, type ApplyOptions, type ApplyResult, type FoundConflict, type StepFailure } from './apply.ts';
