// BMC credentials. The password is sealed (server/store/keyring.ts in production) before it reaches the database
// and is opened only for a driver call: list/get return a view without it.
import { eq } from 'drizzle-orm';
import type { Db } from '../db/index.ts';
import { bmcs, events, nodes } from '../db/schema/index.ts';
import type { SecretBox } from '../secrets.ts';
import { notFound } from '../errors.ts';
import { systemClock, type Clock } from '../clock.ts';
import { writeAudit, type AuditIntent } from './audit.ts';

export interface BmcView {
  nodeUuid: string;
  driver: string;
  address: string;
  port: number | null;
  username: string;
  options: Record<string, unknown>;
  updatedAt: Date;
}

export interface BmcCredentials extends BmcView {
  password: string;
}

export interface BmcInput {
  driver: string;
  address: string;
  port?: number | null;
  username: string;
  password: string;
  options?: Record<string, unknown>;
}

const view = (r: typeof bmcs.$inferSelect): BmcView => ({ nodeUuid: r.nodeUuid, driver: r.driver, address: r.address, port: r.port, username: r.username, options: r.options, updatedAt: r.updatedAt });

export function createBmcStore(db: Db, secrets: SecretBox, { clock = systemClock }: { clock?: Clock } = {}) {
  return {
    /** The sealed form of a BMC password as stored (bulk enrollment writes it in its own transaction). */
    seal: async (password: string): Promise<string> => secrets.encrypt(password),
    /** Stores a node's BMC. With `enroll`, a node that does not exist yet is created as `discovered` in the same
     * transaction, so a failure leaves neither the node nor the BMC behind. */
    async set(uuid: string, input: BmcInput, actor: string, { enroll, audit }: { enroll?: string; audit?: AuditIntent } = {}): Promise<BmcView> {
      const now = clock.now();
      const values = { driver: input.driver, address: input.address, port: input.port ?? null, username: input.username, passwordEnc: await secrets.encrypt(input.password), options: input.options ?? {}, updatedAt: now };
      return db.transaction(async (tx) => {
        if (enroll) {
          const created = await tx.insert(nodes).values({ uuid, state: 'discovered', stateSince: now, stateReason: enroll, lastSeen: now, createdAt: now, updatedAt: now }).onConflictDoNothing().returning({ uuid: nodes.uuid });
          if (created.length) await tx.insert(events).values({ nodeUuid: uuid, at: now, kind: 'transition', fromState: null, toState: 'discovered', reason: enroll, actor });
        }
        const [old] = await tx.select().from(bmcs).where(eq(bmcs.nodeUuid, uuid)).for('update');
        const [row] = await tx.insert(bmcs).values({ nodeUuid: uuid, ...values, createdAt: now }).onConflictDoUpdate({ target: bmcs.nodeUuid, set: values }).returning();
        // never the password, sealed or not: only that one was set
        await writeAudit(tx, audit, { before: old ? view(old) : null, after: { ...view(row!), password: 'set' } }, now);
        // the event names the BMC, never its password
        await tx.insert(events).values({ nodeUuid: uuid, at: now, kind: 'bmc', reason: `BMC enrolled: ${input.driver} ${input.address}${input.port ? `:${input.port}` : ''} as ${input.username}`, actor });
        return view(row!);
      });
    },
    async get(uuid: string): Promise<BmcView | null> {
      const [row] = await db.select().from(bmcs).where(eq(bmcs.nodeUuid, uuid));
      return row ? view(row) : null;
    },
    async list(): Promise<BmcView[]> {
      return (await db.select().from(bmcs).orderBy(bmcs.nodeUuid)).map(view);
    },
    /** For BMC drivers only: the decrypted password. Never return this from the API or log it. */
    async getCredentials(uuid: string): Promise<BmcCredentials | null> {
      const [row] = await db.select().from(bmcs).where(eq(bmcs.nodeUuid, uuid));
      return row ? { ...view(row), password: await secrets.decrypt(row.passwordEnc) } : null;
    },
    async remove(uuid: string, actor: string): Promise<void> {
      const gone = await db.delete(bmcs).where(eq(bmcs.nodeUuid, uuid)).returning();
      if (!gone.length) throw notFound(`BMC of node ${uuid}`);
      await db.insert(events).values({ nodeUuid: uuid, at: clock.now(), kind: 'bmc', reason: 'BMC removed', actor });
    },
  };
}

export type BmcStore = ReturnType<typeof createBmcStore>;
