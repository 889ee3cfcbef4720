// Resumable image uploads (issue 14 item 1): one row per blob being uploaded and one per part the store has, so
// any replica can continue an upload another one started, and a restart loses nothing. With the S3 store an
// upload is an S3 multipart upload (`store_upload_id` is its UploadId); with the local store its parts are files
// in the shared staging directory. The running sha256 lives in `hash_state`, so the digest is checked before
// the blob is committed under its name without reading the bytes back.
import { bigint, bigserial, index, integer, pgTable, primaryKey, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

export const uploads = pgTable(
  'uploads',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    /** the blob's sha256 (hex): at most one open upload per blob */
    digest: text('digest').notNull(),
    /** Upload-Length: the blob's size in bytes */
    total: bigint('total', { mode: 'number' }).notNull(),
    /** 's3' | 'local': the store that holds the parts */
    store: text('store').notNull(),
    /** S3 UploadId, or the staging sub-directory of the local store */
    storeUploadId: text('store_upload_id').notNull(),
    /** bytes committed (parts recorded below, contiguous from 0) */
    offset: bigint('offset', { mode: 'number' }).notNull().default(0),
    /** the part number of the next chunk: parts are numbered 1, 2, 3… with no gaps (RGW refuses to complete an
     * upload that skips a part it holds), so a failed attempt's part is overwritten by the next attempt */
    nextPart: integer('next_part').notNull().default(1),
    /** who is sending the chunk at `offset` now, until when: one writer per upload at a time */
    leaseToken: text('lease_token'),
    leaseUntil: ts('lease_until'),
    /** sha256 state after `offset` bytes (hash-wasm save(), base64); null before the first byte */
    hashState: text('hash_state'),
    /** what wrote hash_state: a replica refuses a state it cannot load */
    hashFormat: text('hash_format').notNull(),
    /** open | expired (being aborted by a sweep) */
    state: text('state').notNull().default('open'),
    createdBy: text('created_by').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
    /** last accepted chunk (or claim): the expiry sweep aborts uploads idle for longer than the TTL */
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [uniqueIndex('uploads_digest_uq').on(t.digest), index('uploads_updated_idx').on(t.updatedAt)],
);

export const uploadParts = pgTable(
  'upload_parts',
  {
    uploadId: bigint('upload_id', { mode: 'number' })
      .notNull()
      .references(() => uploads.id, { onDelete: 'cascade' }),
    partNumber: integer('part_number').notNull(),
    /** where the part starts in the blob */
    offset: bigint('offset', { mode: 'number' }).notNull(),
    size: bigint('size', { mode: 'number' }).notNull(),
    /** the ETag the store answered UploadPart with (CompleteMultipartUpload needs it) */
    etag: text('etag').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.uploadId, t.partNumber] }), uniqueIndex('upload_parts_offset_uq').on(t.uploadId, t.offset)],
);
