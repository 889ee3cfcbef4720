// DHCP lease store on drizzle: implements boot/dhcp's LeaseStore (server → boot, never the other way).
// The DHCP responder batches concurrent bindings into one saveMany, so a burst of DHCPACKs costs one
// multi-row upsert, not one round trip each.
import { inArray, lt, sql } from 'drizzle-orm';
import type { Lease, LeaseStore } from '../../boot/dhcp/leases.ts';
import type { Db } from '../db/index.ts';
import { dhcpLeases } from '../db/schema/index.ts';

/** PostgreSQL caps a statement at 65535 bind parameters; 8 columns a row. */
const ROWS_PER_STATEMENT = 5000;

const toLease = (r: typeof dhcpLeases.$inferSelect): Lease => ({
  ip: r.ip,
  mac: r.mac,
  clientId: r.clientId ?? undefined,
  hostname: r.hostname ?? undefined,
  state: r.state as Lease['state'],
  expiresAt: r.expiresAt,
  pool: r.pool,
});

/**
 * Replicas serving one segment share this table, and the primary key on ip is the uniqueness constraint
 * that makes an address have one holder (an address lies in exactly one pool, so it is also unique per
 * pool). The upsert only replaces a row with a binding when the row is the same MAC's, released, or
 * expired by the database's clock (one clock for all replicas); row locks on the key serialise two
 * replicas claiming one address, and the loser's row comes back missing from RETURNING.
 */
export function createLeaseDbStore(db: Db): Omit<LeaseStore, 'saveMany'> & { saveMany(leases: Lease[]): Promise<Lease[]> } {
  return {
    async loadAll(): Promise<Lease[]> {
      const rows = await db.select().from(dhcpLeases);
      return rows.map(toLease);
    },

    async saveMany(leases: Lease[]): Promise<Lease[]> {
      if (leases.length === 0) return [];
      // one statement may not touch a row twice (ON CONFLICT … cannot affect row a second time): last wins
      const byIp = new Map(leases.map((l) => [l.ip, l]));
      const rows = [...byIp.values()].map((l) => ({
        ip: l.ip,
        mac: l.mac,
        clientId: l.clientId ?? null,
        hostname: l.hostname ?? null,
        state: l.state,
        expiresAt: l.expiresAt,
        pool: l.pool,
        updatedAt: new Date(),
      }));
      const written = new Set<string>();
      for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) {
        const done = await db
          .insert(dhcpLeases)
          .values(rows.slice(i, i + ROWS_PER_STATEMENT))
          .onConflictDoUpdate({
            target: dhcpLeases.ip,
            set: {
              mac: sql`excluded.mac`,
              clientId: sql`excluded.client_id`,
              hostname: sql`excluded.hostname`,
              state: sql`excluded.state`,
              expiresAt: sql`excluded.expires_at`,
              pool: sql`excluded.pool`,
              updatedAt: sql`excluded.updated_at`,
            },
            setWhere: sql`excluded.state <> 'bound' or ${dhcpLeases.mac} = excluded.mac or ${dhcpLeases.state} = 'released' or ${dhcpLeases.expiresAt} <= now()`,
          })
          .returning({ ip: dhcpLeases.ip });
        for (const d of done) written.add(d.ip);
      }
      const refused = rows.filter((r) => !written.has(r.ip)).map((r) => r.ip);
      if (refused.length === 0) return [];
      // the holders, so the caller's table learns them and does not offer those addresses again
      return (await db.select().from(dhcpLeases).where(inArray(dhcpLeases.ip, refused))).map(toLease);
    },

    async purgeExpired(before: Date): Promise<number> {
      const gone = await db.delete(dhcpLeases).where(lt(dhcpLeases.expiresAt, before)).returning({ ip: dhcpLeases.ip });
      return gone.length;
    },
  };
}
