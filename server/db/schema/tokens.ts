// API tokens in the database (issue 14 item 1): created, listed and revoked through the API and CLI, the same on
// every replica. Only the sha256 of a token is stored. Tokens from configuration stay in memory (bootstrap).
import { sql } from 'drizzle-orm';
import { boolean, pgTable, serial, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

export const apiTokens = pgTable(
  'api_tokens',
  {
    id: serial('id').primaryKey(),
    name: text('name').notNull(),
    /** viewer | operator | admin */
    role: text('role').notNull(),
    /** sha256 hex of the token: the per-request lookup (unique index) */
    tokenHash: text('token_hash').notNull(),
    createdAt: ts('created_at').notNull(),
    createdBy: text('created_by').notNull(),
    /** updated at most once a minute per token (server/store/tokens.ts) */
    lastUsedAt: ts('last_used_at'),
    expiresAt: ts('expires_at'),
    revokedAt: ts('revoked_at'),
    revokedBy: text('revoked_by'),
    /** the admin token a replica with no configured tokens writes to <dataDir>/admin.token: one per database */
    bootstrap: boolean('bootstrap').notNull().default(false),
  },
  (t) => [uniqueIndex('api_tokens_hash_uq').on(t.tokenHash), uniqueIndex('api_tokens_bootstrap_uq').on(t.bootstrap).where(sql`bootstrap`)],
);
