// Lease persistence seam. boot/ imports nothing from server/, so the DHCP server asks for a LeaseStore;
// server/store/leases.ts implements it with drizzle, MemoryLeaseStore below serves tests and benches.
//
// The responder keeps the working set in memory and writes every binding through the store before it
// answers, so a restart loses nothing that a client was told. Replicas serving one segment share the
// store: it refuses a binding of an address another MAC holds (saveMany's result), and the responder
// answers that client DHCPNAK; a replica's table only learns other replicas' leases at load() and on such
// a refusal (no refresh on change yet).

export type LeaseState = 'bound' | 'released' | 'declined';

export interface Lease {
  ip: string;
  /** lower-case colon MAC (chaddr); '' for a declined address nobody owns */
  mac: string;
  /** option 61, hex */
  clientId?: string;
  hostname?: string;
  state: LeaseState;
  expiresAt: Date;
  /** name of the pool the address came from */
  pool: string;
}

export interface LeaseStore {
  /** every stored lease (expired ones too: a returning client gets its old address back) */
  loadAll(): Promise<Lease[]>;
  /**
   * Insert or replace by ip, all in one write; the responder batches concurrent bindings into one call.
   * A binding (state 'bound') is a claim: it must not replace another MAC's unexpired, unreleased lease on
   * the address (another replica of a shared store bound it meanwhile). A store shared between replicas
   * returns the current holders of the addresses it refused; the responder then answers DHCPNAK and the
   * client's next DHCPDISCOVER gets another address. A store only one responder writes returns nothing.
   */
  saveMany(leases: Lease[]): Promise<Lease[] | void>;
  /** delete leases that expired before `before`; returns how many */
  purgeExpired(before: Date): Promise<number>;
}

export class MemoryLeaseStore implements LeaseStore {
  readonly rows = new Map<string, Lease>();
  /** number of saveMany calls (tests check batching) */
  writes = 0;
  async loadAll(): Promise<Lease[]> {
    return [...this.rows.values()].map((l) => ({ ...l }));
  }
  async saveMany(leases: Lease[]): Promise<void> {
    this.writes++;
    for (const l of leases) this.rows.set(l.ip, { ...l });
  }
  async purgeExpired(before: Date): Promise<number> {
    let n = 0;
    for (const [ip, l] of this.rows) if (l.expiresAt < before) (this.rows.delete(ip), n++);
    return n;
  }
}

/** A store whose writes fail: the responder must then stay silent rather than ACK an unsaved lease. */
export class BrokenLeaseStore implements LeaseStore {
  async loadAll(): Promise<Lease[]> {
    return [];
  }
  async saveMany(): Promise<void> {
    throw new Error('lease store unavailable');
  }
  async purgeExpired(): Promise<number> {
    return 0;
  }
}
