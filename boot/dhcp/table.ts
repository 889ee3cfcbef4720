// In-memory lease table and address allocator. Pure data structure: the clock is a parameter.
//
// Allocation must stay fast with 100k leases and must never loop when a pool is full (the npm `dhcp`
// package spins at 100% CPU there). Each pool keeps a cursor that walks its range once, and a stack of
// addresses known to be free again. Only when both are used up does it sweep the range for expired
// leases — at most once per second, and not before the earliest known expiry — so a full pool costs
// one failed lookup per request, not a scan.
import { type Pool, inSubnet } from './config.ts';

export type EntryState = 'offered' | 'bound' | 'released' | 'declined';

export interface Entry {
  ip: number;
  mac: string;
  state: EntryState;
  /** ms since epoch */
  expiresAt: number;
  pool: string;
  clientId?: string;
  hostname?: string;
}

interface Cursor {
  next: number;
  free: number[];
  sweepAfter: number;
}

export class LeaseTable {
  readonly byIp = new Map<number, Entry>();
  readonly byMac = new Map<string, Entry>();
  private readonly cursors = new Map<string, Cursor>();
  /** addresses never handed out dynamically (the server's own, reservations seen so far) */
  readonly excluded = new Set<number>();

  constructor(readonly pools: readonly Pool[]) {
    for (const p of pools) this.cursors.set(p.name, { next: p.start, free: [], sweepAfter: 0 });
  }

  /** free for a new owner: never used, expired, or released (declined addresses wait out their expiry) */
  isFree(ip: number, now: number, forMac?: string): boolean {
    if (this.excluded.has(ip)) return false;
    const e = this.byIp.get(ip);
    if (!e) return true;
    if (forMac !== undefined && e.mac === forMac && e.state !== 'declined') return true;
    return e.expiresAt <= now || e.state === 'released';
  }

  /** put an entry in (replacing whoever held the address and the MAC's previous entry) */
  set(e: Entry): void {
    const prevIp = this.byIp.get(e.ip);
    if (prevIp && prevIp.mac && this.byMac.get(prevIp.mac) === prevIp) this.byMac.delete(prevIp.mac);
    const prevMac = e.mac ? this.byMac.get(e.mac) : undefined;
    if (prevMac && prevMac.ip !== e.ip && this.byIp.get(prevMac.ip) === prevMac) {
      // the client moved: its old address is free again
      this.byIp.delete(prevMac.ip);
      this.cursors.get(prevMac.pool)?.free.push(prevMac.ip);
    }
    this.byIp.set(e.ip, e);
    if (e.mac && e.state !== 'declined') this.byMac.set(e.mac, e);
  }

  /** drop an offer that the client turned down (it chose another server) */
  dropOffer(mac: string): void {
    const e = this.byMac.get(mac);
    if (e && e.state === 'offered') {
      this.byMac.delete(mac);
      this.byIp.delete(e.ip);
      this.cursors.get(e.pool)?.free.push(e.ip);
    }
  }

  /** next free address of a pool, or null when the pool is exhausted */
  allocate(pool: Pool, now: number): number | null {
    const c = this.cursors.get(pool.name);
    if (!c) return null;
    while (c.free.length > 0) {
      const ip = c.free.pop()!;
      if (this.isFree(ip, now)) return ip;
    }
    while (c.next <= pool.end) {
      const ip = c.next++;
      if (ip === pool.network || ip === pool.broadcast) continue;
      if (this.isFree(ip, now)) return ip;
    }
    if (now < c.sweepAfter) return null;
    // Range walked once: collect what has expired since, then wait for the next expiry.
    let earliest = Infinity;
    for (let ip = pool.start; ip <= pool.end; ip++) {
      if (ip === pool.network || ip === pool.broadcast || this.excluded.has(ip)) continue;
      if (this.isFree(ip, now)) c.free.push(ip);
      else {
        const e = this.byIp.get(ip);
        if (e && e.expiresAt < earliest) earliest = e.expiresAt;
      }
    }
    c.free.reverse(); // hand out low addresses first
    c.sweepAfter = Math.max(now + 1000, earliest === Infinity ? now + 1000 : earliest);
    const ip = c.free.pop();
    return ip ?? null;
  }

  poolOf(ip: number): Pool | undefined {
    return this.pools.find((p) => inSubnet(p, ip) && ip >= p.start && ip <= p.end);
  }

  /** counts per state, for metrics */
  counts(now: number): Record<EntryState | 'expired', number> {
    const out = { offered: 0, bound: 0, released: 0, declined: 0, expired: 0 };
    for (const e of this.byIp.values()) {
      if (e.expiresAt <= now && e.state !== 'released') out.expired++;
      else out[e.state]++;
    }
    return out;
  }
}
