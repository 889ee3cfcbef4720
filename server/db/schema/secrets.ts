// Shared secrets (issue 14 item 1): data keys that seal BMC passwords, stored wrapped by the key-encryption key
// (KEK) every replica gets from its configuration, so any replica on the database opens any sealed value.
// server/store/keyring.ts; docs/security-model.md "Secrets at rest".
import { sql } from 'drizzle-orm';
import { boolean, index, jsonb, pgTable, serial, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

export const dataKeys = pgTable(
  'data_keys',
  {
    /** named in every value it sealed: "v2.<id>.…" */
    id: serial('id').primaryKey(),
    /** AES-256-GCM under the KEK: base64(iv).base64(tag).base64(key) */
    wrappedKey: text('wrapped_key').notNull(),
    /** HMAC-SHA256(KEK, constant), 16 hex: which KEK wrapped this key. A replica whose KEK does not match
     * refuses to start (instead of failing later on every BMC call). Reveals nothing about the KEK. */
    kekCheck: text('kek_check').notNull(),
    /** the one key new values are sealed with */
    active: boolean('active').notNull().default(false),
    /** imported from a pre-issue-14 `secret.key`: opens "v1.…" values */
    legacy: boolean('legacy').notNull().default(false),
    createdAt: ts('created_at').notNull().defaultNow(),
    retiredAt: ts('retired_at'),
  },
  (t) => [uniqueIndex('data_keys_one_active_uq').on(t.active).where(sql`active`)],
);

/** Admin actions (who, what, when, before/after). One writer: server/store/audit.ts `audit()`. */
export const auditLog = pgTable(
  'audit_log',
  {
    id: serial('id').primaryKey(),
    at: ts('at').notNull(),
    /** "api:<token name>", "cli", "system" … */
    actor: text('actor').notNull(),
    /** dotted verb: token.create, token.revoke, secrets.rotate … */
    action: text('action').notNull(),
    /** what it acted on (token id, node uuid …) */
    target: text('target'),
    /** the state before and after, never a secret (token hashes and sealed values are left out) */
    before: jsonb('before').$type<unknown>(),
    after: jsonb('after').$type<unknown>(),
    /** viewer | operator | admin, as the credential had it (issue 17 item 6); null for system actions */
    role: text('role'),
    /** the request's X-Request-Id, to find it in the server's log */
    requestId: text('request_id'),
    /** the client address (behind a trusted proxy: its X-Forwarded-For) */
    source: text('source'),
  },
  (t) => [index('audit_log_at_idx').on(t.at, t.id), index('audit_log_target_idx').on(t.target), index('audit_log_actor_idx').on(t.actor, t.at), index('audit_log_action_idx').on(t.action, t.at)],
);
