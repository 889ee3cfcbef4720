// DHCPv6 lease persistence seam, shaped like boot/dhcp/leases.ts (the responder writes a binding through the
// store before its Reply leaves, so a restart loses nothing a client was told).
//
// Why not the DHCPv4 store: a DHCPv6 lease belongs to an IA, keyed by (client DUID, IAID) (RFC 8415 §6.1, §12),
// not to a MAC: a client need not reveal its MAC at all (DUID-UUID from iPXE and EDK2), and one client may hold
// several IA_NAs. server/db's dhcp_leases table has `mac NOT NULL` and no DUID/IAID columns, so a DB-backed
// store needs a migration: a table dhcp6_leases (address text primary key, duid text, iaid bigint, mac text
// null, state, expires_at, pool) with a unique index on (duid, iaid, address), and the same conditional upsert
// as server/store/leases.ts (a binding replaces only the same client's, a released or an expired row) so
// replicas sharing it never hand one address to two clients. Until then MemoryLease6Store below is what main
// wires: leases are lost on restart, and clients keep their addresses anyway because a Renew or Rebind of a
// free in-range address is honoured (responder.ts).

export type Lease6State = 'bound' | 'released' | 'declined';

export interface Lease6 {
  /** RFC 5952 text form */
  address: string;
  /** client DUID, hex, type included; '' for a declined address nobody owns */
  duid: string;
  iaid: number;
  /** lower-case colon MAC when the client's messages revealed one (for the operator and the backend) */
  mac?: string;
  state: Lease6State;
  expiresAt: Date;
  pool: string;
}

export interface Lease6Store {
  /** every stored lease (expired ones too: a returning client gets its old address back) */
  loadAll(): Promise<Lease6[]>;
  /**
   * Insert or replace by address, in one write. A shared store returns the current holders of the addresses it
   * refused (another replica's unexpired binding); the responder then answers NoAddrsAvail for that IA.
   */
  saveMany(leases: Lease6[]): Promise<Lease6[] | void>;
  /** delete leases that expired before `before`; returns how many */
  purgeExpired(before: Date): Promise<number>;
}

export class MemoryLease6Store implements Lease6Store {
  readonly rows = new Map<string, Lease6>();
  writes = 0;
  async loadAll(): Promise<Lease6[]> {
    return [...this.rows.values()].map((l) => ({ ...l }));
  }
  async saveMany(leases: Lease6[]): Promise<void> {
    this.writes++;
    for (const l of leases) this.rows.set(l.address, { ...l });
  }
  async purgeExpired(before: Date): Promise<number> {
    let n = 0;
    for (const [a, l] of this.rows) if (l.expiresAt < before) (this.rows.delete(a), n++);
    return n;
  }
}
