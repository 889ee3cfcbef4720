// DHCPv6 lease store on drizzle: implements boot/dhcp6's Lease6Store (server → boot, never the other way), the
// DHCPv6 twin of server/store/leases.ts. The responder writes every binding of a message in one saveMany before
// its Reply leaves, so a restart loses nothing a client was told.
import { inArray, lt, sql } from 'drizzle-orm';
import type { Lease6, Lease6Store } from '../../boot/dhcp6/leases.ts';
import type { Db } from '../db/index.ts';
import { dhcp6Leases } from '../db/schema/index.ts';

/** PostgreSQL caps a statement at 65535 bind parameters; 8 columns a row. */
const ROWS_PER_STATEMENT = 5000;

const toLease = (r: typeof dhcp6Leases.$inferSelect): Lease6 => ({
  address: r.address,
  duid: r.duid,
  iaid: r.iaid,
  ...(r.mac ? { mac: r.mac } : {}),
  state: r.state as Lease6['state'],
  expiresAt: r.expiresAt,
  pool: r.pool,
});

/**
 * Replicas serving one link share this table, and the primary key on the address is what makes an address have
 * one holder. A row is replaced only when it is the same IA's (same DUID and IAID), released, or expired by the
 * database's clock (one clock for all replicas); row locks on the key serialise two replicas claiming one address,
 * and the loser's row is missing from RETURNING. The rule covers releases as well as bindings: a replica whose
 * table still shows a client holding an address the client let expire (and another replica has since bound to
 * someone else) must not free it for a third client. A decline is always written: it gives the address to nobody,
 * so it cannot make two holders, only take the address out of use for declineSeconds (RFC 8415 §18.3.8 says it is
 * in use on the link).
 */
export function createLease6DbStore(db: Db): Omit<Lease6Store, 'saveMany'> & { saveMany(leases: Lease6[]): Promise<Lease6[]> } {
  return {
    async loadAll(): Promise<Lease6[]> {
      return (await db.select().from(dhcp6Leases)).map(toLease);
    },

    async saveMany(leases: Lease6[]): Promise<Lease6[]> {
      if (leases.length === 0) return [];
      // one statement may not touch a row twice (ON CONFLICT … cannot affect row a second time): last wins
      const byAddress = new Map(leases.map((l) => [l.address, l]));
      const now = new Date();
      const rows = [...byAddress.values()].map((l) => ({ address: l.address, duid: l.duid, iaid: l.iaid, mac: l.mac ?? null, state: l.state, expiresAt: l.expiresAt, pool: l.pool, updatedAt: now }));
      const written = new Set<string>();
      for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) {
        const done = await db
          .insert(dhcp6Leases)
          .values(rows.slice(i, i + ROWS_PER_STATEMENT))
          .onConflictDoUpdate({
            target: dhcp6Leases.address,
            set: {
              duid: sql`excluded.duid`,
              iaid: sql`excluded.iaid`,
              mac: sql`excluded.mac`,
              state: sql`excluded.state`,
              expiresAt: sql`excluded.expires_at`,
              pool: sql`excluded.pool`,
              updatedAt: sql`excluded.updated_at`,
            },
            setWhere: sql`excluded.state = 'declined' or (${dhcp6Leases.duid} = excluded.duid and ${dhcp6Leases.iaid} = excluded.iaid) or ${dhcp6Leases.state} = 'released' or ${dhcp6Leases.expiresAt} <= now()`,
          })
          .returning({ address: dhcp6Leases.address });
        for (const d of done) written.add(d.address);
      }
      const refused = rows.filter((r) => !written.has(r.address)).map((r) => r.address);
      if (refused.length === 0) return [];
      // the holders, so the caller's table learns them and does not offer those addresses again
      return (await db.select().from(dhcp6Leases).where(inArray(dhcp6Leases.address, refused))).map(toLease);
    },

    async purgeExpired(before: Date): Promise<number> {
      const gone = await db.delete(dhcp6Leases).where(lt(dhcp6Leases.expiresAt, before)).returning({ address: dhcp6Leases.address });
      return gone.length;
    },
  };
}
