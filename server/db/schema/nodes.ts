// Node registry tables (issue: control plane foundation). Each area of the product keeps its tables in
// its own file under server/db/schema/; index.ts re-exports them for drizzle and drizzle-kit.
import { sql } from 'drizzle-orm';
import { bigserial, index, integer, jsonb, pgTable, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';

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
    /** sha256 of the per-boot token handed out on the compute kernel command line; the token itself is never stored */
    bootTokenHash: text('boot_token_hash'),
    bootTokenIssuedAt: ts('boot_token_issued_at'),
    rebuildAttempts: integer('rebuild_attempts').notNull().default(0),
    createdAt: ts('created_at').notNull().defaultNow(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [index('nodes_state_idx').on(t.state), index('nodes_serial_idx').on(t.serial)],
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
  },
  (t) => [index('events_node_idx').on(t.nodeUuid, t.id)],
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
