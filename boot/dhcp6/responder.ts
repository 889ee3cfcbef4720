// DHCPv6 decisions (RFC 8415 §18.3): a decoded message in, a reply (or silence) out. No sockets here (server.ts).
//
// Stateful service: IA_NA addresses from configured pools, one address per IA, leases keyed by (client DUID, IAID)
// as RFC 8415 §12 says, written through the Lease6Store before a Reply that binds leaves. Network boot: option 59
// (RFC 5970) chosen by option 61 and the iPXE user class (bootfile.ts), in Advertise, Reply and the Reply to an
// Information-Request (a client told by the router advertisement to get only "other configuration" still boots).
//
// Who is this machine: the backend is asked by MAC (boot/backend.ts), told from the relay's RFC 6939 option, the
// DUID or the EUI-64 link-local source (bootfile.ts clientMac). A client whose MAC cannot be told is "unknown".
//
// Relayed messages (RFC 8415 §19): the pool is chosen by the link-address of the relay closest to the client; the
// reply is wrapped in one RELAY-REPL per RELAY-FORW, with the same hop count, link and peer address and the
// Interface-ID echoed (§19.3), and goes back to the relay it came from.
import type { BootBackend, DhcpHost } from '../backend.ts';
import { createLogLimiter } from '../dhcp/limit.ts';
import type { Logger } from '../dhcp/responder.ts';
import { type Boot6Urls, type Client6, Opt6Extra, Status, chooseBootUrl6, clientMac, describeClient, rawOption } from './bootfile.ts';
import { type Dhcp6Config, type Pool6, bigToIp6, inRange, ip6ToBig, onLink, toPool6 } from './config.ts';
import type { Lease6, Lease6Store } from './leases.ts';
import { type Dhcp6ClientMessage, type Dhcp6Message, type Dhcp6RelayMessage, type Duid, type Option6, MsgType, encodeDuid, findOption, isRelay } from './packet.ts';

export interface Received6 {
  /** sender: a client's link-local address with its zone (fe80::…%eth1) port 546, or a relay's address port 547 */
  from: { address: string; port: number };
}

export interface Reply6 {
  message: Dhcp6Message;
  to: { address: string; port: number };
}

export interface Responder6Options {
  config: Dhcp6Config;
  /** this server's DUID (server.ts derives DUID-LL from the interface MAC unless configured) */
  serverDuid: Duid;
  backend: BootBackend;
  leases: Lease6Store;
  logger?: Logger;
  /** ms since epoch */
  clock?: () => number;
}

export interface Stats6 {
  received: number;
  replies: number;
  ignored: number;
  /** datagrams that did not decode (counted by server.ts) */
  undecodable: number;
  /** IAs answered NoAddrsAvail because every usable pool was full */
  exhausted: number;
  storeErrors: number;
  takenByPeer: number;
  bound: number;
  released: number;
  declined: number;
}

type EntryState = 'offered' | 'bound' | 'released' | 'declined';
interface Entry6 {
  address: bigint;
  /** hex DUID; '' for a declined address nobody owns */
  duid: string;
  iaid: number;
  mac?: string;
  state: EntryState;
  /** ms since epoch */
  expiresAt: number;
  pool: string;
}

/** UEFI HTTP boot's vendor class in DHCPv6 uses Intel's enterprise number (UEFI 2.5+ §24.7; EDK2 HttpBootDxe). */
const ENTERPRISE_INTEL = 343;
const iaKey = (duid: string, iaid: number) => `${duid}/${iaid}`;
const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** What the client sent that shapes the reply, after validation. */
interface Ctx {
  m: Dhcp6ClientMessage;
  client: Client6;
  clientIdOpt?: Option6;
  host: DhcpHost | null;
  /** pools on the client's link, and those this client may take addresses from */
  linkPools: Pool6[];
  usable: Pool6[];
}

export function createResponder6({ config, serverDuid, backend, leases, logger = silentLogger, clock = Date.now }: Responder6Options) {
  const pools = config.pools.map((p) => toPool6(p, config));
  const ourDuid = encodeDuid(serverDuid);
  const serverAddress = ip6ToBig(config.serverAddress);
  const urls: Boot6Urls = {
    httpBase: config.httpBase.replace(/\/+$/, ''),
    tftpBase: (config.tftpBase ?? `tftp://[${config.serverAddress}]`).replace(/\/+$/, ''),
    ...config.bootfiles,
  };
  const stats: Stats6 = { received: 0, replies: 0, ignored: 0, undecodable: 0, exhausted: 0, storeErrors: 0, takenByPeer: 0, bound: 0, released: 0, declined: 0 };
  const byAddr = new Map<bigint, Entry6>();
  const byIa = new Map<string, Entry6>();
  /** never handed out dynamically: the server's own address and reservations seen so far */
  const excluded = new Set<bigint>([serverAddress]);
  const take = createLogLimiter({ clock, intervalMs: config.warnIntervalSeconds * 1000 });
  const warn = (msg: string, source: string, obj: object): void => {
    const ok = take(`${msg}\0${source}`);
    if (ok) logger.warn({ source, ...obj, suppressed: ok.suppressed }, msg);
  };
  const silent = (why: string, obj: object = {}): null => {
    stats.ignored++;
    logger.debug({ ...obj, why }, 'DHCPv6 request ignored');
    return null;
  };

  // ---------------------------------------------------------------- lease table
  function set(e: Entry6): void {
    const prev = byAddr.get(e.address);
    if (prev && prev.duid && byIa.get(iaKey(prev.duid, prev.iaid)) === prev && (prev.duid !== e.duid || prev.iaid !== e.iaid)) byIa.delete(iaKey(prev.duid, prev.iaid));
    byAddr.set(e.address, e);
    if (e.duid) {
      const old = byIa.get(iaKey(e.duid, e.iaid));
      // an advertised address the client did not take goes back to the pool
      if (old && old !== e && old.address !== e.address && old.state === 'offered') byAddr.delete(old.address);
      byIa.set(iaKey(e.duid, e.iaid), e);
    }
  }
  const isFree = (a: bigint, now: number, duid: string, iaid: number): boolean => {
    const e = byAddr.get(a);
    return !e || e.expiresAt <= now || e.state === 'released' || (e.duid !== '' && e.duid === duid && e.iaid === iaid);
  };
  /** per pool: where the next search starts (just past the last address handed out) */
  const cursors = new Map<string, bigint>();
  /**
   * The next free address of the range, from the pool's cursor, wrapping once. Every address that is not free has
   * an entry or is excluded, so at most (entries + excluded + 1) candidates are tried: a /64 range costs what the
   * table holds, never 2^64 steps; and in a sparse range the cursor makes it one step (a scan from the range start
   * made 1000 allocations cost 1.8 s here, quadratic).
   */
  function allocate(pool: Pool6, now: number, duid: string, iaid: number): bigint | null {
    const size = pool.end - pool.start + 1n;
    const limit = BigInt(byAddr.size + excluded.size + 1);
    const tries = size < limit ? size : limit;
    let a = cursors.get(pool.name) ?? pool.start;
    for (let i = 0n; i < tries; i++, a++) {
      if (a > pool.end) a = pool.start;
      if (!excluded.has(a) && isFree(a, now, duid, iaid)) {
        cursors.set(pool.name, a === pool.end ? pool.start : a + 1n);
        return a;
      }
    }
    return null;
  }
  const toLease = (e: Entry6): Lease6 => ({ address: bigToIp6(e.address), duid: e.duid, iaid: e.iaid, ...(e.mac ? { mac: e.mac } : {}), state: e.state === 'offered' ? 'bound' : e.state, expiresAt: new Date(e.expiresAt), pool: e.pool });

  async function load(): Promise<number> {
    const rows = await leases.loadAll();
    for (const l of rows) {
      try {
        set({ address: ip6ToBig(l.address), duid: l.duid, iaid: l.iaid, mac: l.mac, state: l.state, expiresAt: l.expiresAt.getTime(), pool: l.pool });
      } catch {
        // a row that is not an IPv6 address cannot be served; leave it to purgeExpired
      }
    }
    return rows.length;
  }

  // ---------------------------------------------------------------- what goes in a reply
  function base(type: number, ctx: Ctx): Dhcp6ClientMessage {
    const options: Option6[] = [{ kind: 'serverId', duid: serverDuid }];
    if (ctx.clientIdOpt) options.push(ctx.clientIdOpt);
    return { type, transactionId: ctx.m.transactionId, options };
  }
  const status = (code: number, message: string): Option6 => ({ kind: 'statusCode', status: code, message });
  const iaAddr = (a: bigint, pool: Pool6 | undefined): Option6 => ({ kind: 'iaAddr', address: bigToIp6(a), preferred: pool?.preferredSeconds ?? 0, valid: pool?.validSeconds ?? 0, options: [] });
  /** RFC 8415 §21.4: T1 0.5 and T2 0.8 times the shortest preferred lifetime in the IA (0: the client chooses) */
  function iaNa(iaid: number, addrs: Option6[], extra: Option6[] = []): Option6 {
    const preferred = Math.min(...addrs.map((o) => (o.kind === 'iaAddr' && o.preferred > 0 ? o.preferred : Infinity)));
    const t = Number.isFinite(preferred) ? preferred : 0;
    return { kind: 'iaNa', iaid, t1: Math.floor(t * 0.5), t2: Math.floor(t * 0.8), options: [...addrs, ...extra] };
  }

  /** DNS when asked for, and the boot-file URL for a boot client (RFC 5970 §3.1: clients ask for 59 in their ORO). */
  function addConfig(reply: Dhcp6ClientMessage, ctx: Ctx, pool: Pool6 | undefined): void {
    const dns = (pool ?? ctx.linkPools[0])?.dns ?? [];
    if (dns.length && ctx.client.oro.includes(23)) reply.options.push({ kind: 'dnsServers', servers: dns });
    const boot = chooseBootUrl6(ctx.client, urls, ctx.host?.bootloader);
    if (!boot) return;
    if (!ctx.client.oro.includes(59) && ctx.client.arch === undefined && !ctx.client.isIpxe) return;
    reply.options.push({ kind: 'bootfileUrl', url: boot.url });
    if (boot.vendorClass) reply.options.push({ kind: 'vendorClass', enterprise: ENTERPRISE_INTEL, data: [Buffer.from(boot.vendorClass)] });
  }

  function finish(reply: Dhcp6ClientMessage): Dhcp6ClientMessage {
    stats.replies++;
    return reply;
  }

  // ---------------------------------------------------------------- addresses
  /** The address for one IA: a reservation, the IA's current one, the client's hint when free, else the first free one. */
  function choose(ctx: Ctx, iaid: number, hint: bigint | undefined, now: number): { a: bigint; pool: Pool6 } | 'reserved-taken' | null {
    const { duid } = ctx.client;
    if (ctx.host?.ipv6) {
      const a = ip6ToBig(ctx.host.ipv6);
      const pool = ctx.linkPools.find((p) => onLink(p, a));
      if (!pool) return null;
      excluded.add(a);
      const holder = byAddr.get(a);
      if (holder && !(holder.duid === duid && holder.iaid === iaid) && holder.expiresAt > now && holder.state !== 'released') {
        warn('reserved IPv6 address is leased to another client', ctx.host.mac, { mac: ctx.host.mac, address: ctx.host.ipv6, holder: holder.duid });
        return 'reserved-taken';
      }
      return { a, pool };
    }
    const mine = byIa.get(iaKey(duid, iaid));
    if (mine && mine.state !== 'declined') {
      const pool = ctx.usable.find((p) => p.name === mine.pool);
      if (pool && inRange(pool, mine.address) && !excluded.has(mine.address)) return { a: mine.address, pool };
    }
    if (hint !== undefined) {
      const pool = ctx.usable.find((p) => inRange(p, hint));
      if (pool && !excluded.has(hint) && isFree(hint, now, duid, iaid)) return { a: hint, pool };
    }
    for (const pool of ctx.usable) {
      const a = allocate(pool, now, duid, iaid);
      if (a !== null) return { a, pool };
    }
    return null;
  }

  /** Writes bindings through the store; resolves with the addresses a shared store refused, or 'error'. */
  async function persist(entries: Entry6[]): Promise<Set<bigint> | 'error'> {
    if (entries.length === 0) return new Set();
    let refused: Lease6[] = [];
    try {
      refused = (await leases.saveMany(entries.map(toLease))) ?? [];
    } catch (err) {
      stats.storeErrors++;
      logger.error({ err: String(err), addresses: entries.map((e) => bigToIp6(e.address)) }, 'DHCPv6 lease not saved; no Reply sent');
      return 'error';
    }
    const out = new Set<bigint>();
    for (const h of refused) {
      const e = entries.find((x) => bigToIp6(x.address) === h.address);
      if (!e || (h.duid === e.duid && h.iaid === e.iaid)) continue;
      stats.takenByPeer++;
      out.add(e.address);
      set({ address: e.address, duid: h.duid, iaid: h.iaid, mac: h.mac, state: h.state, expiresAt: h.expiresAt.getTime(), pool: h.pool });
    }
    return out;
  }

  function commit(entries: Entry6[], refused: Set<bigint>): void {
    for (const e of entries) {
      if (refused.has(e.address)) continue;
      set(e);
      if (e.state === 'bound') {
        stats.bound++;
        logger.info({ address: bigToIp6(e.address), duid: e.duid, iaid: e.iaid, mac: e.mac, pool: e.pool, expiresAt: new Date(e.expiresAt).toISOString() }, 'DHCPv6 lease bound');
      }
    }
  }

  const iasOf = (m: Dhcp6ClientMessage) => m.options.filter((o): o is Extract<Option6, { kind: 'iaNa' }> => o.kind === 'iaNa');
  const addrsOf = (ia: Extract<Option6, { kind: 'iaNa' }>) => ia.options.filter((o): o is Extract<Option6, { kind: 'iaAddr' }> => o.kind === 'iaAddr');
  const bigOrUndefined = (s: string | undefined): bigint | undefined => (s === undefined ? undefined : ip6ToBig(s));

  /** Solicit (advertise or, with Rapid Commit, bind) and Request (bind). */
  async function assignAll(ctx: Ctx, mode: 'advertise' | 'bind', now: number): Promise<{ ias: Option6[]; any: boolean; pool?: Pool6 } | 'error'> {
    const picks: { iaid: number; pick: { a: bigint; pool: Pool6 } | null }[] = [];
    for (const ia of iasOf(ctx.m)) {
      const hint = bigOrUndefined(addrsOf(ia)[0]?.address);
      const got = choose(ctx, ia.iaid, hint, now);
      if (got === null && !ctx.host?.ipv6 && ctx.usable.length) {
        stats.exhausted++;
        warn('DHCPv6 pool exhausted', ctx.usable.map((p) => p.name).join(','), { duid: ctx.client.duid, pools: ctx.usable.map((p) => p.name) });
      }
      const pick = got === 'reserved-taken' ? null : got;
      picks.push({ iaid: ia.iaid, pick });
      if (!pick) continue;
      // held at once, so the client's next IA in this message gets another address; an address the IA already
      // holds stays bound, a new one is held for offerSeconds (and bound below when this is a Request)
      const held = byAddr.get(pick.a);
      const keeps = held && held.duid === ctx.client.duid && held.iaid === ia.iaid && held.state === 'bound' && held.expiresAt > now;
      if (!keeps) set({ address: pick.a, duid: ctx.client.duid, iaid: ia.iaid, mac: ctx.client.mac, state: 'offered', expiresAt: now + config.offerSeconds * 1000, pool: pick.pool.name });
    }
    const entries: Entry6[] =
      mode === 'advertise'
        ? []
        : picks.flatMap(({ iaid, pick }) => (pick ? [{ address: pick.a, duid: ctx.client.duid, iaid, mac: ctx.client.mac, state: 'bound' as const, expiresAt: now + pick.pool.validSeconds * 1000, pool: pick.pool.name }] : []));
    const refused = await persist(entries);
    if (refused === 'error') return 'error';
    commit(entries, refused);
    const ias = picks.map(({ iaid, pick }) =>
      pick && !refused.has(pick.a) ? iaNa(iaid, [iaAddr(pick.a, pick.pool)]) : iaNa(iaid, [], [status(Status.NO_ADDRS_AVAIL, 'no addresses available for this IA')]),
    );
    const first = picks.find((p) => p.pick && !refused.has(p.pick.a))?.pick;
    return { ias, any: first !== undefined, pool: first?.pool };
  }

  async function solicit(ctx: Ctx, now: number): Promise<Dhcp6ClientMessage | null> {
    const rapid = ctx.client.rapidCommit && config.rapidCommit;
    const got = await assignAll(ctx, rapid ? 'bind' : 'advertise', now);
    if (got === 'error') return null;
    const reply = base(rapid ? MsgType.REPLY : MsgType.ADVERTISE, ctx);
    if (!got.any) {
      // RFC 8415 §18.3.9: no address for any IA → no IA options, a NoAddrsAvail status (the client tries other servers)
      reply.options.push(status(Status.NO_ADDRS_AVAIL, 'no addresses available'));
      return finish(reply);
    }
    if (rapid) reply.options.push({ kind: 'raw', code: Opt6Extra.RAPID_COMMIT, data: Buffer.alloc(0) });
    if (!rapid && config.preference > 0) reply.options.push({ kind: 'raw', code: Opt6Extra.PREFERENCE, data: Buffer.from([config.preference]) });
    reply.options.push(...got.ias);
    addConfig(reply, ctx, got.pool);
    return finish(reply);
  }

  async function request(ctx: Ctx, now: number): Promise<Dhcp6ClientMessage | null> {
    const got = await assignAll(ctx, 'bind', now);
    if (got === 'error') return null;
    const reply = base(MsgType.REPLY, ctx);
    reply.options.push(...got.ias);
    addConfig(reply, ctx, got.pool);
    return finish(reply);
  }

  /**
   * Renew (§18.3.4) and Rebind (§18.3.5). An address the IA holds is extended. A free address in a range this
   * client may use is bound (both sections allow it): after a restart with an in-memory store, or a wiped one,
   * clients keep their addresses. Anything else: an address not on this link or held by another client comes back
   * with lifetimes 0 (the client stops using it); a Renew for an IA we know nothing of gets NoBinding, so the
   * client sends a Request.
   */
  async function extend(ctx: Ctx, rebind: boolean, now: number): Promise<Dhcp6ClientMessage | null> {
    const entries: Entry6[] = [];
    const out: { iaid: number; addrs: { a: bigint; pool?: Pool6; keep: boolean }[]; noBinding: boolean }[] = [];
    for (const ia of iasOf(ctx.m)) {
      const asked = addrsOf(ia).map((o) => ip6ToBig(o.address));
      const res = { iaid: ia.iaid, addrs: [] as { a: bigint; pool?: Pool6; keep: boolean }[], noBinding: false };
      out.push(res);
      if (asked.length === 0) {
        const got = choose(ctx, ia.iaid, undefined, now);
        if (got && got !== 'reserved-taken') {
          entries.push({ address: got.a, duid: ctx.client.duid, iaid: ia.iaid, mac: ctx.client.mac, state: 'bound', expiresAt: now + got.pool.validSeconds * 1000, pool: got.pool.name });
          res.addrs.push({ a: got.a, pool: got.pool, keep: true });
        } else res.noBinding = !rebind;
        continue;
      }
      for (const a of asked) {
        const onThisLink = ctx.linkPools.find((p) => onLink(p, a));
        const reserved = ctx.host?.ipv6 !== undefined ? ip6ToBig(ctx.host.ipv6) : undefined;
        const held = byAddr.get(a);
        const ours = held && held.duid === ctx.client.duid && held.iaid === ia.iaid && held.state !== 'declined' && held.state !== 'released';
        const pool = onThisLink && (reserved === a ? onThisLink : ctx.usable.find((p) => p.name === onThisLink.name && inRange(p, a)));
        const allowed = onThisLink && (reserved === undefined || reserved === a) && (ours || (pool && (reserved === a || !excluded.has(a)) && isFree(a, now, ctx.client.duid, ia.iaid)));
        if (allowed && pool) {
          entries.push({ address: a, duid: ctx.client.duid, iaid: ia.iaid, mac: ctx.client.mac, state: 'bound', expiresAt: now + pool.validSeconds * 1000, pool: pool.name });
          res.addrs.push({ a, pool, keep: true });
        } else if (!onThisLink || rebind || held) {
          res.addrs.push({ a, keep: false });
        } else res.noBinding = true;
      }
      // a reservation the client does not hold yet is added beside the addresses it gives up
      if (ctx.host?.ipv6 && !res.addrs.some((x) => x.keep)) {
        const got = choose(ctx, ia.iaid, undefined, now);
        if (got && got !== 'reserved-taken') {
          entries.push({ address: got.a, duid: ctx.client.duid, iaid: ia.iaid, mac: ctx.client.mac, state: 'bound', expiresAt: now + got.pool.validSeconds * 1000, pool: got.pool.name });
          res.addrs.push({ a: got.a, pool: got.pool, keep: true });
          res.noBinding = false;
        }
      }
    }
    const refused = await persist(entries);
    if (refused === 'error') return null;
    commit(entries, refused);
    const reply = base(MsgType.REPLY, ctx);
    for (const r of out) {
      if (r.noBinding && !r.addrs.some((x) => x.keep)) {
        reply.options.push(iaNa(r.iaid, [], [status(Status.NO_BINDING, 'no binding for this IA')]));
        continue;
      }
      reply.options.push(iaNa(r.iaid, r.addrs.map((x) => (x.keep && !refused.has(x.a) ? iaAddr(x.a, x.pool) : iaAddr(x.a, undefined)))));
    }
    addConfig(reply, ctx, out.flatMap((r) => r.addrs).find((x) => x.keep)?.pool);
    return finish(reply);
  }

  /** Release (§18.3.7) and Decline (§18.3.8): only the IA's own addresses change; others get NoBinding. */
  async function forget(ctx: Ctx, decline: boolean, now: number): Promise<Dhcp6ClientMessage | null> {
    const changed: Entry6[] = [];
    const reply = base(MsgType.REPLY, ctx);
    const noBinding: number[] = [];
    for (const ia of iasOf(ctx.m)) {
      let mine = 0;
      for (const o of addrsOf(ia)) {
        const a = ip6ToBig(o.address);
        const held = byAddr.get(a);
        if (!held || held.duid !== ctx.client.duid || held.iaid !== ia.iaid || held.state === 'released' || held.state === 'declined') continue;
        mine++;
        changed.push(
          decline
            ? // the address is in use by someone else on the link: keep it out of the pool for a while
              { ...held, duid: '', state: 'declined', expiresAt: now + config.declineSeconds * 1000 }
            : { ...held, state: 'released', expiresAt: now },
        );
      }
      if (mine === 0) noBinding.push(ia.iaid);
    }
    let refused: Lease6[] = [];
    try {
      if (changed.length) refused = (await leases.saveMany(changed.map(toLease))) ?? [];
    } catch (err) {
      stats.storeErrors++;
      logger.error({ err: String(err) }, 'DHCPv6 lease change not saved');
    }
    for (const e of changed) {
      // a shared store refuses a Release of an address another replica has since bound to someone else (this
      // table still showed the sender's lapsed lease): learn the holder rather than offer its address as free
      const holder = refused.find((h) => h.address === bigToIp6(e.address));
      if (holder) {
        set({ address: e.address, duid: holder.duid, iaid: holder.iaid, mac: holder.mac, state: holder.state, expiresAt: holder.expiresAt.getTime(), pool: holder.pool });
        continue;
      }
      if (decline) {
        const old = byAddr.get(e.address);
        if (old) byIa.delete(iaKey(old.duid, old.iaid));
      }
      set(e);
      if (decline) stats.declined++;
      else stats.released++;
      logger.info({ address: bigToIp6(e.address), duid: ctx.client.duid, mac: ctx.client.mac }, decline ? 'DHCPv6 address declined' : 'DHCPv6 lease released');
    }
    reply.options.push(status(Status.SUCCESS, decline ? 'decline received' : 'release received'));
    for (const iaid of noBinding) reply.options.push(iaNa(iaid, [], [status(Status.NO_BINDING, 'no binding for this IA')]));
    return finish(reply);
  }

  /** Confirm (§18.3.3): are the client's addresses on this link? Silence when we cannot tell. */
  function confirm(ctx: Ctx): Dhcp6ClientMessage | null {
    const addrs = iasOf(ctx.m).flatMap(addrsOf);
    if (addrs.length === 0 || ctx.linkPools.length === 0) return silent('Confirm we cannot judge', { duid: ctx.client.duid });
    const ok = addrs.every((o) => ctx.linkPools.some((p) => onLink(p, ip6ToBig(o.address))));
    const reply = base(MsgType.REPLY, ctx);
    reply.options.push(ok ? status(Status.SUCCESS, 'all addresses on link') : status(Status.NOT_ON_LINK, 'addresses not on this link'));
    return finish(reply);
  }

  function inform(ctx: Ctx): Dhcp6ClientMessage {
    const reply = base(MsgType.REPLY, ctx);
    addConfig(reply, ctx, undefined);
    return finish(reply);
  }

  // ---------------------------------------------------------------- one client message
  async function lookup(mac: string | undefined): Promise<{ host: DhcpHost | null } | 'error'> {
    if (!mac) return { host: null };
    try {
      return { host: await backend.dhcpHost(mac) };
    } catch (err) {
      warn('boot backend look-up failed; DHCPv6 request dropped', 'backend', { mac, err: String(err) });
      return 'error';
    }
  }

  async function serve(m: Dhcp6ClientMessage, link: bigint, peer: string, linkLayer: Buffer | undefined): Promise<Dhcp6ClientMessage | null> {
    const clientIdOpt = m.options.find((o) => o.kind === 'clientId');
    const serverId = findOption(m.options, 'serverId');
    const ours = serverId !== undefined && encodeDuid(serverId.duid).equals(ourDuid);
    const t = m.type;
    // RFC 8415 §16: which messages a server must discard
    switch (t) {
      case MsgType.SOLICIT:
      case MsgType.CONFIRM:
      case MsgType.REBIND:
        if (!clientIdOpt || serverId) return silent(`${t === MsgType.SOLICIT ? 'Solicit' : t === MsgType.CONFIRM ? 'Confirm' : 'Rebind'} without client id or with a server id`);
        break;
      case MsgType.REQUEST:
      case MsgType.RENEW:
      case MsgType.RELEASE:
      case MsgType.DECLINE:
        if (!clientIdOpt) return silent('no client id');
        if (!ours) return silent('for another server');
        break;
      case MsgType.INFORMATION_REQUEST:
        if (serverId && !ours) return silent('for another server');
        if (iasOf(m).length) return silent('Information-Request with an IA option');
        break;
      default:
        return silent(`message type ${t} is not one a server answers`);
    }
    const duid: Duid = clientIdOpt?.kind === 'clientId' ? clientIdOpt.duid : { type: 0, raw: Buffer.alloc(0) };
    const duidHex = clientIdOpt?.kind === 'clientId' ? encodeDuid(duid).toString('hex') : '';
    const client = describeClient(m, duidHex, duid, clientMac(duid, linkLayer, peer));
    const now = clock();
    const linkPools = pools.filter((p) => onLink(p, link));
    const partial: Omit<Ctx, 'host' | 'usable'> = { m, client, clientIdOpt, linkPools };
    // Release and Decline need no backend: they only touch the sender's own IAs
    if (t === MsgType.RELEASE || t === MsgType.DECLINE) return forget({ ...partial, host: null, usable: [] }, t === MsgType.DECLINE, now);
    const found = await lookup(client.mac);
    if (found === 'error') return null;
    const { host } = found;
    if (host && !host.allowBoot) return silent('backend says do not boot', { mac: client.mac });
    if (!host && config.unknownClients === 'ignore') return silent(client.mac ? 'unknown machine' : 'MAC cannot be told from the message', { mac: client.mac, duid: duidHex });
    const known = host !== null;
    const usable = linkPools.filter((p) => p.clients === 'all' || p.clients === (known ? 'known' : 'unknown'));
    const ctx: Ctx = { ...partial, host, usable };
    switch (t) {
      case MsgType.SOLICIT:
        return solicit(ctx, now);
      case MsgType.REQUEST:
        return request(ctx, now);
      case MsgType.RENEW:
        return extend(ctx, false, now);
      case MsgType.REBIND:
        return extend(ctx, true, now);
      case MsgType.CONFIRM:
        return confirm(ctx);
      default:
        return inform(ctx);
    }
  }

  /** Decide the reply to one decoded message. Never throws: a bug in here stays one dropped packet. */
  async function handle(msg: Dhcp6Message, r: Received6): Promise<Reply6 | null> {
    stats.received++;
    try {
      const relays: Dhcp6RelayMessage[] = [];
      let cur: Dhcp6Message | undefined = msg;
      while (cur && isRelay(cur)) {
        if (cur.type !== MsgType.RELAY_FORW) return silent('RELAY-REPL sent to a server');
        relays.push(cur);
        cur = findOption(cur.options, 'relayMessage')?.message;
      }
      if (!cur) return silent('relay message without a relayed message');
      // the relay closest to the client names the link (a lightweight relay, RFC 6221, leaves it ::: look further out)
      const named = [...relays].reverse().find((x) => x.linkAddress !== '::');
      if (relays.length && !named) return silent('relayed with no link-address');
      const link = named ? ip6ToBig(named.linkAddress) : serverAddress;
      const closest = relays.at(-1);
      const peer = closest ? closest.peerAddress : r.from.address;
      const linkLayer = closest ? rawOption(closest, Opt6Extra.CLIENT_LINKLAYER_ADDR) : undefined;
      const reply = await serve(cur, link, peer, linkLayer);
      if (!reply) return null;
      let out: Dhcp6Message = reply;
      for (const relay of [...relays].reverse()) {
        const ifId = relay.options.find((o) => o.kind === 'raw' && o.code === Opt6Extra.INTERFACE_ID);
        out = { type: MsgType.RELAY_REPL, hopCount: relay.hopCount, linkAddress: relay.linkAddress, peerAddress: relay.peerAddress, options: [...(ifId ? [ifId] : []), { kind: 'relayMessage', message: out }] };
      }
      return { message: out, to: r.from };
    } catch (err) {
      logger.error({ err: String(err), stack: (err as Error)?.stack }, 'DHCPv6 request handling failed');
      return null;
    }
  }

  return { handle, load, stats, table: byAddr, pools };
}

export type Responder6 = ReturnType<typeof createResponder6>;
