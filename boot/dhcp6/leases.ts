// DHCPv6 lease persistence seam, shaped like boot/dhcp/leases.ts (the responder writes a binding through the
// store before its Reply leaves, so a restart loses nothing a client was told).
//
// Why not the DHCPv4 store: a DHCPv6 lease belongs to an IA, keyed by (client DUID, IAID) (RFC 8415 §6.1, §12),
// not to a MAC: a client need not reveal its MAC at all (DUID-UUID from iPXE and EDK2), and one client may hold
// several IA_NAs. server/store/leases6.ts implements this seam on its own table, dhcp6_leases (address primary
// key, DUID, IAID, nullable MAC), and is what server/main.ts wires. Replicas serving one link share it: a write
// replaces a row only when it is the same IA's, released or expired (declines excepted: they give the address to
// nobody), so saveMany's result names the holders of the addresses it refused and the responder answers
// NoAddrsAvail (or lifetimes 0 on a Renew). Each replica's table learns the others' leases at load() and on such a
// refusal only (no refresh on change, as for DHCPv4). MemoryLease6Store below serves unit tests and benches.

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
   * Insert or replace by address, in one write. A binding or a release is a claim: it must not replace another
   * IA's unexpired, unreleased lease (another replica bound the address meanwhile). A shared store returns the
   * current holders of the addresses it refused; the responder answers NoAddrsAvail for a refused binding and
   * learns the holder of a refused release. A store only one responder writes returns nothing.
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
