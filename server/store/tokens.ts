// API tokens in the database (server/db/schema/tokens.ts). A token is shown once, at creation; afterwards only
// its sha256 exists. Every replica authenticates against this table with one indexed lookup per request, so a
// revocation on one replica holds on all of them from the next request (no cache). Creating and revoking write
// an audit row in the same transaction; revoking also deletes the dashboard sessions the token opened.
import { and, asc, eq, gt, isNull, lt, or } from 'drizzle-orm';
import { randomBytes } from 'node:crypto';
import type { Db } from '../db/index.ts';
import { apiTokens, uiSessions } from '../db/schema/index.ts';
import type { Clock } from '../clock.ts';
import type { Role } from '../config.ts';
import { AppError, notFound } from '../errors.ts';
import { hashToken } from '../secrets.ts';
import { audit, writeAuditAs, type AuditIntent } from './audit.ts';

/** last_used_at is written at most this often per token: not a write per request */
export const LAST_USED_RESOLUTION_MS = 60_000;

type Row = typeof apiTokens.$inferSelect;

export interface TokenView {
  id: number;
  name: string;
  role: Role;
  createdAt: Date;
  createdBy: string;
  lastUsedAt: Date | null;
  expiresAt: Date | null;
  revokedAt: Date | null;
  revokedBy: string | null;
  bootstrap: boolean;
}

/** What authentication needs of a valid token. */
export interface TokenMatch {
  id: number;
  name: string;
  role: Role;
  lastUsedAt: Date | null;
}

export const tokenView = (r: Row): TokenView => ({ id: r.id, name: r.name, role: r.role as Role, createdAt: r.createdAt, createdBy: r.createdBy, lastUsedAt: r.lastUsedAt, expiresAt: r.expiresAt, revokedAt: r.revokedAt, revokedBy: r.revokedBy, bootstrap: r.bootstrap });

/** A new random token (32 bytes, base64url), recognisable in logs and secret scanners by its prefix. */
export const newApiToken = () => `bft_${randomBytes(32).toString('base64url')}`;

export function createTokenStore(db: Db, { clock }: { clock: Clock }) {
  return {
    /** Creates a token; the returned `token` is the only time its value exists outside the caller. */
    async create(t: { name: string; role: Role; createdBy: string; expiresAt?: Date | null }, intent?: AuditIntent): Promise<{ token: string; view: TokenView }> {
      const token = newApiToken();
      const now = clock.now();
      return db.transaction(async (tx) => {
        const [row] = await tx.insert(apiTokens).values({ name: t.name, role: t.role, tokenHash: hashToken(token), createdAt: now, createdBy: t.createdBy, expiresAt: t.expiresAt ?? null }).returning();
        const view = tokenView(row!);
        // the view holds neither the token nor its hash
        const target = { kind: 'token', id: String(view.id) };
        await writeAuditAs(tx, intent, { actor: t.createdBy, action: 'token.create', target }, { target, before: null, after: view }, now);
        return { token, view };
      });
    },

    async list(): Promise<TokenView[]> {
      return (await db.select().from(apiTokens).orderBy(asc(apiTokens.id))).map(tokenView);
    },

    /** Revokes a token and ends its dashboard sessions; 404 unknown, 409 already revoked. */
    async revoke(id: number, actor: string, intent?: AuditIntent): Promise<TokenView> {
      const now = clock.now();
      return db.transaction(async (tx) => {
        const [before] = await tx.select().from(apiTokens).where(eq(apiTokens.id, id)).for('update');
        if (!before) throw notFound(`token ${id}`, { id });
        if (before.revokedAt) throw new AppError(409, 'conflict', `token ${id} (${before.name}) was already revoked at ${before.revokedAt.toISOString()} by ${before.revokedBy ?? 'unknown'}`, { id });
        const [row] = await tx.update(apiTokens).set({ revokedAt: now, revokedBy: actor }).where(eq(apiTokens.id, id)).returning();
        await tx.delete(uiSessions).where(eq(uiSessions.credentialHash, before.tokenHash));
        await writeAuditAs(tx, intent, { actor, action: 'token.revoke', target: { kind: 'token', id: String(id) } }, { before: tokenView(before), after: tokenView(row!) }, now);
        return tokenView(row!);
      });
    },

    /** The valid (not revoked, not expired) token with this sha256: one lookup on a unique index. */
    async lookup(hash: string): Promise<TokenMatch | null> {
      const [row] = await db
        .select({ id: apiTokens.id, name: apiTokens.name, role: apiTokens.role, lastUsedAt: apiTokens.lastUsedAt })
        .from(apiTokens)
        .where(and(eq(apiTokens.tokenHash, hash), isNull(apiTokens.revokedAt), or(isNull(apiTokens.expiresAt), gt(apiTokens.expiresAt, clock.now()))))
        .limit(1);
      return row ? { ...row, role: row.role as Role } : null;
    },

    /** Records a use, unless one was recorded less than a minute ago (by any replica). */
    async used(t: Pick<TokenMatch, 'id' | 'lastUsedAt'>): Promise<void> {
      const now = clock.now();
      if (t.lastUsedAt && now.getTime() - t.lastUsedAt.getTime() < LAST_USED_RESOLUTION_MS) return;
      const cutoff = new Date(now.getTime() - LAST_USED_RESOLUTION_MS);
      await db
        .update(apiTokens)
        .set({ lastUsedAt: now })
        .where(and(eq(apiTokens.id, t.id), or(isNull(apiTokens.lastUsedAt), lt(apiTokens.lastUsedAt, cutoff))));
    },

    /** The database's bootstrap admin token (revoked or not), if any replica created one. */
    async bootstrap(): Promise<TokenView & { tokenHash: string } | null> {
      const [row] = await db.select().from(apiTokens).where(eq(apiTokens.bootstrap, true));
      return row ? { ...tokenView(row), tokenHash: row.tokenHash } : null;
    },

    /** Stores `hash` as the bootstrap admin token unless another replica got there first (unique index):
     * returns whether this one won, and the bootstrap token that stands. */
    async claimBootstrap(hash: string): Promise<{ won: boolean; tokenHash: string }> {
      const now = clock.now();
      return db.transaction(async (tx) => {
        const won = await tx
          .insert(apiTokens)
          .values({ name: 'local-admin', role: 'admin', tokenHash: hash, createdAt: now, createdBy: 'bootstrap', bootstrap: true })
          .onConflictDoNothing()
          .returning({ id: apiTokens.id });
        if (won.length) await audit(tx, { actor: 'system', action: 'token.create', target: `token:${won[0]!.id}`, after: { name: 'local-admin', role: 'admin', bootstrap: true } }, now);
        const [row] = await tx.select({ tokenHash: apiTokens.tokenHash }).from(apiTokens).where(eq(apiTokens.bootstrap, true));
        return { won: won.length > 0, tokenHash: row?.tokenHash ?? hash };
      });
    },
  };
}
export type TokenStore = ReturnType<typeof createTokenStore>;
