// Node registry tables (issue: control plane foundation). Each area of the product keeps its tables in
// its own file under server/db/schema/; index.ts re-exports them for drizzle and drizzle-kit.
import { sql } from 'drizzle-orm';
import type { HypervisorCapacity } from '../../contract/agent.ts';
import { bigint, bigserial, boolean, index, integer, jsonb, pgTable, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

export const nodes = pgTable(
  'nodes',
  {
    /** SMBIOS system UUID, lower-case: the node's identity. */
    uuid: text('uuid').primaryKey(),
    serial: text('serial'),
    manufacturer: text('manufacturer'),
    product: text('product'),
    hostname: text('hostname'),
    state: text('state').notNull(),
    stateSince: ts('state_since').notNull().defaultNow(),
    stateReason: text('state_reason'),
    /** state to return to when maintenance ends */
    heldFrom: text('held_from'),
    labels: jsonb('labels').$type<Record<string, string>>().notNull().default({}),
    profile: text('profile'),
    lastSeen: ts('last_seen'),
    lastHeartbeat: ts('last_heartbeat'),
    /** digests the node reports it actually booted */
    kernelDigest: text('kernel_digest'),
    initrdDigest: text('initrd_digest'),
    imageName: text('image_name'),
    imageVersion: text('image_version'),
    /**
     * sha256 of the compute OS's node credential: issued with the profile at the end of stage-1 (kexec), valid for
     * the life of that boot (installed, heartbeats, events). The credential itself is never stored.
     * docs/security-model.md
     */
    credentialHash: text('credential_hash'),
    credentialIssuedAt: ts('credential_issued_at'),
    /** the boot attempt whose stage-1 was handed this credential */
    credentialAttemptId: bigint('credential_attempt_id', { mode: 'number' }),
    /** the server started a boot (rebuild, power action) and waits for it: /ipxe opens a server-started attempt */
    bootExpectedAt: ts('boot_expected_at'),
    bootExpectedReason: text('boot_expected_reason'),
    /** the firmware its iPXE last booted under ('efi' | 'pcbios', iPXE's ${platform}): a PXE override through the
     * BMC sets the UEFI flag for 'efi', or a UEFI machine may fall back to a legacy boot */
    bootPlatform: text('boot_platform'),
    rebuildAttempts: integer('rebuild_attempts').notNull().default(0),
    /** what the compute OS last reported it can host and hosts (issue 16 item 2; contract HypervisorCapacity): CPUs,
     * memory, KVM usable or not, QEMU's version, its guests. Heartbeats carry it when it changes (agent/flow.ts). */
    hypervisor: jsonb('hypervisor').$type<HypervisorCapacity>(),
    hypervisorAt: ts('hypervisor_at'),
    createdAt: ts('created_at').notNull().defaultNow(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [index('nodes_state_idx').on(t.state), index('nodes_serial_idx').on(t.serial), index('nodes_created_idx').on(t.createdAt)],
);

/**
 * One stage-1 boot attempt: opened by GET /ipxe/:uuid when a boot is expected (server/domain/boot-trust.ts), its
 * token on the stage-1 kernel command line. The token is valid only for the stage-1 endpoints, until `expiresAt`
 * (slides forward with use) or until the attempt is closed (the compute OS reported in, superseded by a newer
 * attempt from the same address, revoked by a heartbeat of the running boot). Only the token's hash is stored.
 */
export const bootAttempts = pgTable(
  'boot_attempts',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    nodeUuid: text('node_uuid')
      .notNull()
      .references(() => nodes.uuid, { onDelete: 'cascade' }),
    tokenHash: text('token_hash').notNull(),
    /** the peer address of the /ipxe request that opened it: "the node's own address" for the BMC setup plan */
    address: text('address'),
    /** expected | not-active | gone | no-credential (why a boot was expected) */
    reason: text('reason').notNull(),
    /** opened while the server waited for a boot it started (rebuild, power action) */
    serverStarted: boolean('server_started').notNull().default(false),
    openedAt: ts('opened_at').notNull().defaultNow(),
    expiresAt: ts('expires_at').notNull(),
    lastUsedAt: ts('last_used_at'),
    closedAt: ts('closed_at'),
    closeReason: text('close_reason'),
  },
  (t) => [uniqueIndex('boot_attempts_token_uq').on(t.tokenHash), index('boot_attempts_open_idx').on(t.nodeUuid).where(sql`closed_at is null`)],
);

export const interfaces = pgTable(
  'interfaces',
  {
    mac: text('mac').primaryKey(),
    nodeUuid: text('node_uuid')
      .notNull()
      .references(() => nodes.uuid, { onDelete: 'cascade' }),
    name: text('name'),
    driver: text('driver'),
    firmwareVersion: text('firmware_version'),
    switchChassis: text('switch_chassis'),
    switchName: text('switch_name'),
    switchPort: text('switch_port'),
    switchPortDescription: text('switch_port_description'),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [index('interfaces_node_idx').on(t.nodeUuid)],
);

export const facts = pgTable(
  'facts',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    nodeUuid: text('node_uuid')
      .notNull()
      .references(() => nodes.uuid, { onDelete: 'cascade' }),
    collectedAt: ts('collected_at').notNull().defaultNow(),
    agentVersion: text('agent_version'),
    facts: jsonb('facts').$type<Record<string, unknown>>().notNull(),
    failures: jsonb('failures').$type<unknown[]>().notNull().default([]),
    /** sha256 of the normalised facts document: a registration whose facts hash like the node's latest row
     * writes no new row (a held or firmware-gated node re-registers every minute) */
    hash: text('hash'),
  },
  (t) => [index('facts_node_idx').on(t.nodeUuid, t.collectedAt)],
);

export const events = pgTable(
  'events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    nodeUuid: text('node_uuid')
      .notNull()
      .references(() => nodes.uuid, { onDelete: 'cascade' }),
    at: ts('at').notNull().defaultNow(),
    /** transition | phase | action | conflict | bmc | firmware | image … */
    kind: text('kind').notNull(),
    fromState: text('from_state'),
    toState: text('to_state'),
    reason: text('reason'),
    actor: text('actor').notNull(),
    data: jsonb('data').$type<Record<string, unknown>>(),
    /** identical repeats of this event (an iPXE client polling) are coalesced into this counter */
    count: integer('count').notNull().default(1),
    /** when the latest repeat happened (null: no repeat) */
    lastAt: ts('last_at'),
  },
  (t) => [index('events_node_idx').on(t.nodeUuid, t.id), index('events_node_at_idx').on(t.nodeUuid, t.at, t.id)],
);

export const conflicts = pgTable(
  'conflicts',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    nodeUuid: text('node_uuid')
      .notNull()
      .references(() => nodes.uuid, { onDelete: 'cascade' }),
    kind: text('kind').notNull(),
    value: text('value').notNull(),
    otherUuid: text('other_uuid').notNull(),
    detectedAt: ts('detected_at').notNull().defaultNow(),
    resolvedAt: ts('resolved_at'),
  },
  (t) => [
    uniqueIndex('conflicts_open_uq').on(t.nodeUuid, t.kind, t.value, t.otherUuid).where(sql`resolved_at is null`),
  ],
);

export const bmcs = pgTable('bmcs', {
  nodeUuid: text('node_uuid')
    .primaryKey()
    .references(() => nodes.uuid, { onDelete: 'cascade' }),
  driver: text('driver').notNull(),
  address: text('address').notNull(),
  port: integer('port'),
  username: text('username').notNull(),
  /** AES-256-GCM: base64(iv).base64(tag).base64(ciphertext); see server/secrets.ts */
  passwordEnc: text('password_enc').notNull(),
  /** free-form driver options (e.g. Redfish system path, IPMI cipher suite) */
  options: jsonb('options').$type<Record<string, unknown>>().notNull().default({}),
  createdAt: ts('created_at').notNull().defaultNow(),
  updatedAt: ts('updated_at').notNull().defaultNow(),
});
