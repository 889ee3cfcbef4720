// Every table of the product, for drizzle (typed queries) and drizzle-kit (migrations).
export * from './nodes.ts';
export * from './firmware.ts';
export * from './fleet.ts';
export * from './images.ts';
export * from './leases.ts';
export * from './leases6.ts';
export * from './sessions.ts';
export * from './uploads.ts';
export * from './secrets.ts';
export * from './tokens.ts';
export * from './bmc-setups.ts';
export * from './cabling.ts';
export * from './ipam.ts';
export * from './console.ts';
