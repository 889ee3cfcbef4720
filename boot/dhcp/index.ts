// boot/dhcp public surface: server factory, config schema (embedded by server/config.ts), lease seam.
export { createDhcpServer, type DhcpServer, type DhcpServerOptions } from './server.ts';
export { DhcpConfigSchema, DhcpPoolSchema, type DhcpConfig, type DhcpConfigInput } from './config.ts';
export { type Lease, type LeaseState, type LeaseStore, MemoryLeaseStore } from './leases.ts';
export { chooseBootfile, defaultBootUrls, type BootUrls, type Bootfile } from './bootfile.ts';
export { classify, type ClientInfo } from './classify.ts';
export { decodePacket, encodePacket, type DhcpPacket } from './packet.ts';
export type { Logger, Stats as DhcpStats, Traffic as DhcpTraffic, Responder as DhcpResponder } from './responder.ts';
export { MESSAGE_TYPE_NAMES } from './responder.ts';
