// Resumable uploads in the database (issue 14 item 1): the only code that touches the uploads tables. Every
// step that moves an upload forward is a conditional update on its row, so two replicas (or two clients) racing
// on one upload cannot both advance it: a writer first takes a short lease on the row (claim), and only the
// holder's commit matches; the other is told the upload is busy or where it is now.
import { and, asc, eq, isNull, lt, lte, or } from 'drizzle-orm';
import type { Db } from '../db/index.ts';
import { uploadParts, uploads } from '../db/schema/index.ts';

export type UploadRow = typeof uploads.$inferSelect;
export type UploadPartRow = typeof uploadParts.$inferSelect;

export interface NewUpload {
  digest: string;
  total: number;
  store: 's3' | 'local';
  storeUploadId: string;
  hashFormat: string;
  createdBy: string;
  at: Date;
}

export interface Claim {
  partNumber: number;
  hashState: string | null;
}

export function createUploadStore(db: Db) {
  return {
    async get(digest: string): Promise<UploadRow | null> {
      const [r] = await db.select().from(uploads).where(eq(uploads.digest, digest));
      return r ?? null;
    },

    /** Insert the upload unless one for the digest exists already; returns the row that is there and whether it is ours. */
    async create(u: NewUpload): Promise<{ row: UploadRow; created: boolean }> {
      const [mine] = await db
        .insert(uploads)
        .values({ digest: u.digest, total: u.total, store: u.store, storeUploadId: u.storeUploadId, hashFormat: u.hashFormat, createdBy: u.createdBy, createdAt: u.at, updatedAt: u.at })
        .onConflictDoNothing({ target: uploads.digest })
        .returning();
      if (mine) return { row: mine, created: true };
      const [theirs] = await db.select().from(uploads).where(eq(uploads.digest, u.digest));
      if (!theirs) throw new Error(`upload of ${u.digest} vanished while it was being created`);
      return { row: theirs, created: false };
    },

    /**
     * Take the lease on the chunk at `offset`: only if the upload is open, still at that offset, and nobody holds
     * an unexpired lease. Returns the part number to write (the same for every attempt at this offset, so parts
     * stay numbered without gaps) and the hash state there; null when another writer holds it or the offset moved.
     */
    async claim(id: number, offset: number, token: string, at: Date, until: Date): Promise<Claim | null> {
      const [r] = await db
        .update(uploads)
        .set({ leaseToken: token, leaseUntil: until, updatedAt: at })
        .where(and(eq(uploads.id, id), eq(uploads.offset, offset), eq(uploads.state, 'open'), or(isNull(uploads.leaseUntil), lte(uploads.leaseUntil, at))))
        .returning({ partNumber: uploads.nextPart, hashState: uploads.hashState });
      return r ?? null;
    },

    /** Give the lease back after a failed attempt (a lease nobody releases expires). */
    async release(id: number, token: string): Promise<void> {
      await db.update(uploads).set({ leaseToken: null, leaseUntil: null }).where(and(eq(uploads.id, id), eq(uploads.leaseToken, token)));
    },

    /** Record the part the lease holder wrote and move the upload past it, in one transaction; false when the
     * lease was lost (it expired and another writer took it) or the upload expired. */
    async commit(id: number, token: string, part: { partNumber: number; offset: number; size: number; etag: string }, hashState: string, at: Date): Promise<boolean> {
      return db.transaction(async (tx) => {
        const moved = await tx
          .update(uploads)
          .set({ offset: part.offset + part.size, hashState, nextPart: part.partNumber + 1, leaseToken: null, leaseUntil: null, updatedAt: at })
          .where(and(eq(uploads.id, id), eq(uploads.leaseToken, token), eq(uploads.offset, part.offset), eq(uploads.nextPart, part.partNumber), eq(uploads.state, 'open')))
          .returning({ id: uploads.id });
        if (moved.length === 0) return false;
        await tx.insert(uploadParts).values({ uploadId: id, ...part, createdAt: at });
        return true;
      });
    },

    /** The committed parts, in blob order. */
    async parts(id: number): Promise<UploadPartRow[]> {
      return db.select().from(uploadParts).where(eq(uploadParts.uploadId, id)).orderBy(asc(uploadParts.offset));
    },

    /** Forget an upload (its parts go with it). */
    async remove(id: number): Promise<void> {
      await db.delete(uploads).where(eq(uploads.id, id));
    },

    /**
     * Uploads for the expiry sweep: idle since before `before`, or already marked expired by a sweep that did
     * not finish. Marking is a conditional update, so a chunk accepted meanwhile (which bumps updated_at) keeps
     * its upload, and once marked no claim or commit can succeed on it.
     */
    async markExpired(before: Date): Promise<UploadRow[]> {
      return db
        .update(uploads)
        .set({ state: 'expired' })
        .where(or(eq(uploads.state, 'expired'), and(eq(uploads.state, 'open'), lt(uploads.updatedAt, before))))
        .returning();
    },

    async list(): Promise<UploadRow[]> {
      return db.select().from(uploads).orderBy(asc(uploads.id));
    },
  };
}

export type UploadStore = ReturnType<typeof createUploadStore>;
