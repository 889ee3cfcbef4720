// Image manifests, channel pointers and channel history in the database (the only code that touches drizzle
// for images). A channel move and its history row are written in one transaction, with the channel row locked
// so two concurrent promotions cannot both read the same "from".
import { and, desc, eq, or, sql } from 'drizzle-orm';
import type { Db } from '../db/index.ts';
import { pgErrorCode } from '../db/index.ts';
import { events, imageChannelHistory, imageChannels, images, nodes } from '../db/schema/index.ts';
import { AppError } from '../errors.ts';
import type { BootOutcome, DigestHealth } from '../domain/promotion.ts';
import { writeAudit, type AuditIntent } from './audit.ts';

export type ImageRow = typeof images.$inferSelect;
export type ImageInsert = Omit<typeof images.$inferInsert, 'id' | 'createdAt'> & { createdAt?: Date };
export type HistoryRow = typeof imageChannelHistory.$inferSelect;

export interface ChannelView {
  channel: string;
  image: ImageRow;
  updatedBy: string;
  updatedAt: Date;
}

export interface ChannelMoveInput {
  name: string;
  channel: string;
  toImageId: number;
  action: 'push' | 'promote' | 'rollback' | 'auto-rollback';
  actor: string;
  reason?: string | null;
  data?: Record<string, unknown>;
  at: Date;
  /** only move if the channel is still on this image (null: still empty); else 409 */
  expectFromImageId?: number | null;
  audit?: AuditIntent;
}

export function createImageDbStore(db: Db) {
  const store = {
    /** Insert a manifest; the same name+version again is fine only if it is the same manifest. */
    async insertImage(row: ImageInsert, audit?: AuditIntent): Promise<{ image: ImageRow; created: boolean }> {
      try {
        const image = await db.transaction(async (tx) => {
          const [image] = await tx.insert(images).values(row).returning();
          await writeAudit(tx, audit, { before: null, after: { version: image!.version, manifestDigest: image!.manifestDigest, channel: null } }, image!.createdAt);
          return image!;
        });
        return { image, created: true };
      } catch (err) {
        if (pgErrorCode(err) !== '23505') throw err;
        const existing = await store.getImage(row.name, row.version);
        if (existing && existing.manifestDigest === row.manifestDigest) return { image: existing, created: false };
        throw new AppError(409, 'conflict', `image ${row.name} version ${row.version} already exists with different content; pick a new version`, {
          name: row.name,
          version: row.version,
          existing: existing?.manifestDigest,
        });
      }
    },
    async getImage(name: string, version: string): Promise<ImageRow | null> {
      const [r] = await db.select().from(images).where(and(eq(images.name, name), eq(images.version, version)));
      return r ?? null;
    },
    async getImageById(id: number): Promise<ImageRow | null> {
      const [r] = await db.select().from(images).where(eq(images.id, id));
      return r ?? null;
    },
    async listVersions(name: string): Promise<ImageRow[]> {
      return db.select().from(images).where(eq(images.name, name)).orderBy(desc(images.createdAt), desc(images.id));
    },
    /** one row per image name: version count, newest version, bytes */
    async listNames(): Promise<{ name: string; versions: number; latest: string | null; latestAt: Date | null }[]> {
      const rows = await db.select().from(images).orderBy(images.name, desc(images.createdAt), desc(images.id));
      const out = new Map<string, { name: string; versions: number; latest: string | null; latestAt: Date | null }>();
      for (const r of rows) {
        const e = out.get(r.name);
        if (e) e.versions++;
        else out.set(r.name, { name: r.name, versions: 1, latest: r.version, latestAt: r.createdAt });
      }
      return [...out.values()];
    },
    async channels(name?: string): Promise<(ChannelView & { name: string })[]> {
      const q = db.select({ c: imageChannels, i: images }).from(imageChannels).innerJoin(images, eq(images.id, imageChannels.imageId));
      const rows = await (name ? q.where(eq(imageChannels.name, name)) : q).orderBy(imageChannels.name, imageChannels.channel);
      return rows.map((r) => ({ name: r.c.name, channel: r.c.channel, image: r.i, updatedBy: r.c.updatedBy, updatedAt: r.c.updatedAt }));
    },
    async channel(name: string, channel: string): Promise<ChannelView | null> {
      const [r] = await db
        .select({ c: imageChannels, i: images })
        .from(imageChannels)
        .innerJoin(images, eq(images.id, imageChannels.imageId))
        .where(and(eq(imageChannels.name, name), eq(imageChannels.channel, channel)));
      return r ? { channel: r.c.channel, image: r.i, updatedBy: r.c.updatedBy, updatedAt: r.c.updatedAt } : null;
    },
    /** Point a channel at an image and record the move, atomically. */
    async moveChannel(m: ChannelMoveInput): Promise<HistoryRow> {
      return db.transaction(async (tx) => {
        const [cur] = await tx
          .select()
          .from(imageChannels)
          .where(and(eq(imageChannels.name, m.name), eq(imageChannels.channel, m.channel)))
          .for('update');
        const fromId = cur?.imageId ?? null;
        if (m.expectFromImageId !== undefined && m.expectFromImageId !== fromId)
          throw new AppError(409, 'conflict', `channel ${m.name}:${m.channel} moved while this change was prepared; look again and retry`, { expected: m.expectFromImageId, actual: fromId });
        const [from] = fromId === null ? [undefined] : await tx.select().from(images).where(eq(images.id, fromId));
        const [to] = await tx.select().from(images).where(eq(images.id, m.toImageId));
        if (!to) throw new AppError(404, 'not_found', `image id ${m.toImageId} not found`);
        if (cur) await tx.update(imageChannels).set({ imageId: to.id, updatedBy: m.actor, updatedAt: m.at }).where(and(eq(imageChannels.name, m.name), eq(imageChannels.channel, m.channel)));
        else await tx.insert(imageChannels).values({ name: m.name, channel: m.channel, imageId: to.id, updatedBy: m.actor, updatedAt: m.at });
        const [h] = await tx
          .insert(imageChannelHistory)
          .values({
            name: m.name,
            channel: m.channel,
            action: m.action,
            fromImageId: from?.id ?? null,
            fromVersion: from?.version ?? null,
            fromDigest: from?.manifestDigest ?? null,
            toImageId: to.id,
            toVersion: to.version,
            toDigest: to.manifestDigest,
            actor: m.actor,
            reason: m.reason ?? null,
            data: m.data ?? null,
            at: m.at,
          })
          .returning();
        await writeAudit(tx, m.audit, { before: { channel: m.channel, version: from?.version ?? null, manifestDigest: from?.manifestDigest ?? null }, after: { channel: m.channel, version: to.version, manifestDigest: to.manifestDigest, forced: m.data?.forced ?? false } }, m.at);
        return h!;
      });
    },
    /** newest first */
    async history(name: string, channel?: string, limit = 100): Promise<HistoryRow[]> {
      const where = channel ? and(eq(imageChannelHistory.name, name), eq(imageChannelHistory.channel, channel)) : eq(imageChannelHistory.name, name);
      return db.select().from(imageChannelHistory).where(where).orderBy(desc(imageChannelHistory.id)).limit(limit);
    },
    /** Nodes now on this kernel+initrd (nodes.kernel_digest/initrd_digest: what they were told to boot or report). */
    async nodesOnImage(kernelDigest: string, initrdDigest: string): Promise<Pick<DigestHealth, 'active' | 'quarantined'>> {
      const on = and(eq(nodes.kernelDigest, kernelDigest), eq(nodes.initrdDigest, initrdDigest));
      const [r] = await db
        .select({
          active: sql<number>`count(*) filter (where ${nodes.state} = 'active')`.mapWith(Number),
          quarantined: sql<number>`count(*) filter (where ${nodes.state} = 'quarantined')`.mapWith(Number),
        })
        .from(nodes)
        .where(on);
      return r ?? { active: 0, quarantined: 0 };
    },
    /**
     * The transitions since `since` that end a boot of this kernel+initrd: fails, and provisioning → active. A
     * boot is the node's latest `provision` transition before the row (its data holds the digests the node was
     * told to boot); the domain (judgeFailure) decides which failures the image caused.
     */
    async bootOutcomes(kernelDigest: string, initrdDigest: string, since: Date): Promise<BootOutcome[]> {
      // Correlated on the outer events row, named in full ("events"."id"): drizzle writes a single-table query's
      // columns unqualified, which inside a subquery would bind to the subquery's own table. Served by
      // events_node_idx (node_uuid, id).
      const latestProvision = (col: string) =>
        sql.raw(`(select p.${col} from events p where p.node_uuid = "events"."node_uuid" and p.kind = 'transition' and p.to_state = 'provisioning' and p.id < "events"."id" order by p.id desc limit 1)`);
      const boot = latestProvision('id');
      const rows = await db
        .select({
          boot: sql<number>`${boot}`.mapWith(Number),
          node: events.nodeUuid,
          at: events.at,
          fromState: events.fromState,
          toState: events.toState,
          cause: sql<string | null>`${events.data}->>'cause'`,
          breakerOpen: sql<boolean>`coalesce((${events.data}->>'breakerOpen') = 'true', false)`,
          kexecStarted: sql<boolean>`exists (select 1 from events k where k.node_uuid = "events"."node_uuid" and k.kind = 'phase' and k.reason = 'kexec-started' and k.id > ${boot} and k.id < "events"."id")`,
          nextState: sql<string | null>`(select n.to_state from events n where n.node_uuid = "events"."node_uuid" and n.kind = 'transition' and n.id > "events"."id" order by n.id limit 1)`,
        })
        .from(events)
        .where(
          and(
            eq(events.kind, 'transition'),
            // postgres.js cannot bind a Date inside a raw fragment: bind the ISO string (see images.pg.test.ts)
            sql`${events.at} >= ${since.toISOString()}::timestamptz`,
            or(eq(events.toState, 'failed'), and(eq(events.fromState, 'provisioning'), eq(events.toState, 'active'))),
            sql`${latestProvision("data->>'kernel'")} = ${kernelDigest}`,
            sql`${latestProvision("data->>'initrd'")} = ${initrdDigest}`,
          ),
        )
        .orderBy(events.id);
      const bool = (v: unknown) => v === true || v === 't';
      return rows.map((r) => ({ ...r, toState: r.toState ?? '', kexecStarted: bool(r.kexecStarted), breakerOpen: bool(r.breakerOpen) }));
    },
    async imagesByDigest(digest: string): Promise<ImageRow[]> {
      return db
        .select()
        .from(images)
        .where(sql`${images.kernelDigest} = ${digest} or ${images.initrdDigest} = ${digest} or ${images.manifestDigest} = ${digest}`);
    },
  };
  return store;
}

export type ImageDbStore = ReturnType<typeof createImageDbStore>;
