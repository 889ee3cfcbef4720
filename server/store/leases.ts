// DHCP lease store on drizzle: implements boot/dhcp's LeaseStore (server → boot, never the other way).
// The DHCP responder batches concurrent bindings into one saveMany, so a burst of DHCPACKs costs one
// multi-row upsert, not one round trip each.
import { lt, sql } from 'drizzle-orm';
import type { Lease, LeaseStore } from '../../boot/dhcp/leases.ts';
import type { Db } from '../db/index.ts';
import { dhcpLeases } from '../db/schema/index.ts';

/** PostgreSQL caps a statement at 65535 bind parameters; 8 columns a row. */
const ROWS_PER_STATEMENT = 5000;

export function createLeaseDbStore(db: Db): LeaseStore {
  return {
    async loadAll(): Promise<Lease[]> {
      const rows = await db.select().from(dhcpLeases);
      return rows.map((r) => ({
        ip: r.ip,
        mac: r.mac,
        clientId: r.clientId ?? undefined,
        hostname: r.hostname ?? undefined,
        state: r.state as Lease['state'],
        expiresAt: r.expiresAt,
        pool: r.pool,
      }));
    },

    async saveMany(leases: Lease[]): Promise<void> {
      if (leases.length === 0) return;
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
      for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) {
        await db
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
          });
      }
    },

    async purgeExpired(before: Date): Promise<number> {
      const gone = await db.delete(dhcpLeases).where(lt(dhcpLeases.expiresAt, before)).returning({ ip: dhcpLeases.ip });
      return gone.length;
    },
  };
}
