// Dashboard sessions (issue 13 item 6): /ui/login exchanges an API token for a random session id; the browser's
// cookie carries only that id and the table keeps only its sha256, so neither the cookie nor a database dump
// yields an API token or a usable session.
import { index, pgTable, text, timestamp } from 'drizzle-orm/pg-core';

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

export const uiSessions = pgTable(
  'ui_sessions',
  {
    /** sha256 hex of the session id in the cookie */
    idHash: text('id_hash').primaryKey(),
    principalName: text('principal_name').notNull(),
    /** viewer | operator | admin, as the token had at login */
    role: text('role').notNull(),
    /** sha256 hex of the API token that opened the session: revoking the token ends its sessions */
    credentialHash: text('credential_hash').notNull(),
    createdAt: ts('created_at').notNull(),
    expiresAt: ts('expires_at').notNull(),
  },
  (t) => [index('ui_sessions_expires_idx').on(t.expiresAt), index('ui_sessions_credential_idx').on(t.credentialHash, t.createdAt)],
);
