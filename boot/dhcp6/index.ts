// boot/dhcp6 public surface: server factory, config schema (embedded by server/config.ts), lease seam, codec.
export { createDhcp6Server, type Dhcp6Server, type Dhcp6ServerOptions } from './server.ts';
export { Dhcp6ConfigSchema, Dhcp6PoolSchema, type Dhcp6Config, type Dhcp6ConfigInput } from './config.ts';
export { type Lease6, type Lease6State, type Lease6Store, MemoryLease6Store } from './leases.ts';
export { chooseBootUrl6, type Boot6, type Boot6Urls } from './bootfile.ts';
export { decodeDhcp6, encodeDhcp6, type Dhcp6Message } from './packet.ts';
export type { Responder6, Stats6 as Dhcp6Stats } from './responder.ts';
