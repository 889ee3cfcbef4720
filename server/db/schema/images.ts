// Image pipeline tables (issue 4): image manifests, the channel pointers profiles follow (dev/canary/prod…),
// and the history of every channel move (who, when, from, to, why). Blobs themselves live in the ImageStore,
// content-addressed by sha256; these rows only name them.
import { bigint, bigserial, index, jsonb, pgTable, primaryKey, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

export const images = pgTable(
  'images',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    name: text('name').notNull(),
    version: text('version').notNull(),
    arch: text('arch').notNull(),
    kernelDigest: text('kernel_digest').notNull(),
    kernelSize: bigint('kernel_size', { mode: 'number' }).notNull(),
    initrdDigest: text('initrd_digest').notNull(),
    initrdSize: bigint('initrd_size', { mode: 'number' }).notNull(),
    cmdline: text('cmdline').notNull().default(''),
    /** kernel + initrd bytes */
    size: bigint('size', { mode: 'number' }).notNull(),
    /** sha256 of the canonical manifest JSON: the identity channel history records */
    manifestDigest: text('manifest_digest').notNull(),
    notes: text('notes'),
    createdBy: text('created_by').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [uniqueIndex('images_name_version_uq').on(t.name, t.version), index('images_manifest_idx').on(t.manifestDigest), index('images_digests_idx').on(t.kernelDigest, t.initrdDigest)],
);

export const imageChannels = pgTable(
  'image_channels',
  {
    name: text('name').notNull(),
    channel: text('channel').notNull(),
    imageId: bigint('image_id', { mode: 'number' })
      .notNull()
      .references(() => images.id, { onDelete: 'restrict' }),
    updatedBy: text('updated_by').notNull(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.name, t.channel] })],
);

export const imageChannelHistory = pgTable(
  'image_channel_history',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    name: text('name').notNull(),
    channel: text('channel').notNull(),
    /** push | promote | rollback | auto-rollback */
    action: text('action').notNull(),
    fromImageId: bigint('from_image_id', { mode: 'number' }),
    fromVersion: text('from_version'),
    fromDigest: text('from_digest'),
    toImageId: bigint('to_image_id', { mode: 'number' }).notNull(),
    toVersion: text('to_version').notNull(),
    toDigest: text('to_digest').notNull(),
    actor: text('actor').notNull(),
    reason: text('reason'),
    /** gate results, rollback figures… */
    data: jsonb('data').$type<Record<string, unknown>>(),
    at: ts('at').notNull().defaultNow(),
  },
  (t) => [index('image_channel_history_idx').on(t.name, t.channel, t.id)],
);
