// DHCP decisions: a parsed request in, a reply (or silence) out. No sockets here; the lease table is
// in memory, bindings are written through the LeaseStore before a DHCPACK leaves.
//
// Leases are keyed by chaddr (the MAC), not by option 61: on a boot farm the PXE ROM, iPXE and the
// installed OS each send a different client identifier for the same NIC, and the machine should keep
// one address across that chain. RFC 2131 §4.2 allows chaddr when no identifier is used. The identifier
// the lease was last bound with is kept, and a DECLINE or RELEASE must carry it (see forget()).
//
// Everything a client can make us log at warn goes through a per-source rate limit (limit.ts) and is
// counted in `stats` (exported to /metrics), so a flood of forged packets costs one line a minute.
import type { BootBackend, DhcpHost } from '../backend.ts';
import { type BootUrls, chooseBootfile } from './bootfile.ts';
import { type ClientInfo, classify, isBootClient } from './classify.ts';
import { type DhcpConfig, type Pool, inSubnet, toPool } from './config.ts';
import type { Lease, LeaseStore } from './leases.ts';
import { createLogLimiter } from './limit.ts';
import {
  BOOTREPLY,
  type DhcpPacket,
  MessageType,
  Opt,
  encodeSubOptions,
  intToIp,
  ipToInt,
  ips,
  str,
  u32,
  u8,
} from './packet.ts';
import { type Entry, LeaseTable } from './table.ts';

/** The subset of pino the DHCP server uses: pass a pino logger or anything shaped like it. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

export interface Received {
  /** 'dhcp' = port 67, 'pxe' = proxyDHCP port 4011 */
  on: 'dhcp' | 'pxe';
  from: { address: string; port: number };
}

export interface Reply {
  packet: DhcpPacket;
  to: { address: string; port: number };
  /** true: limited broadcast out of the served interface */
  broadcast: boolean;
  /** client's option 57, for the encoder */
  maxSize?: number;
}

export interface ResponderOptions {
  config: DhcpConfig;
  backend: BootBackend;
  leases: LeaseStore;
  logger?: Logger;
  /** ms since epoch */
  clock?: () => number;
}

const ZERO = '0.0.0.0';
const BROADCAST = '255.255.255.255';
const BROADCAST_FLAG = 0x8000;

export interface Stats {
  received: number;
  replies: number;
  acks: number;
  naks: number;
  ignored: number;
  exhausted: number;
  storeErrors: number;
  /** bindings a shared lease store refused because another replica had bound the address first */
  takenByPeer: number;
  /** packets dropped because hlen does not fit htype (RFC 2131 §2) */
  badHlen: number;
  /** datagrams that did not decode as DHCP/BOOTP (counted by the socket layer, server.ts) */
  undecodable: number;
  /** RELEASEs / DECLINEs for a lease the sender does not own: ignored */
  foreignReleases: number;
  foreignDeclines: number;
  /** DECLINEs of a reserved address from a client other than its owner: ignored (an alert: someone forges them) */
  reservedDeclinesRefused: number;
  /** DECLINEs of a reserved address from its owner: another machine uses that address; the reservation is kept */
  reservedConflicts: number;
}

/** DHCP message types by option 53 value as metric label values; index 0: no option 53 (BOOTP), 9: any other */
export const MESSAGE_TYPE_NAMES = ['none', 'discover', 'offer', 'request', 'decline', 'ack', 'nak', 'release', 'inform', 'other'] as const;
const typeIndex = (t: number | undefined): number => (t === undefined ? 0 : t >= 1 && t <= 8 ? t : 9);
const byType = (): number[] => new Array<number>(MESSAGE_TYPE_NAMES.length).fill(0);

/**
 * Traffic by message type, as plain arrays indexed like MESSAGE_TYPE_NAMES: a packet costs one increment and
 * no label object (server/dhcp-metrics.ts turns them into labelled counters at scrape time).
 */
export interface Traffic {
  /** requests (op 1) by how they reached us: direct on port 67, relayed (giaddr set), or on the PXE port 4011 */
  received: { direct: number[]; relayed: number[]; pxe: number[] };
  /** replies by type (OFFER, ACK, NAK) */
  sent: number[];
  /** leases written and acknowledged (an ACK in full mode) */
  bound: number;
  /** RELEASEs and DECLINEs from the lease's owner that changed the lease */
  released: number;
  declined: number;
}

/**
 * Why a packet's hardware address cannot be trusted as a lease key, or undefined when it can.
 * RFC 2131 §2: hlen is the length of chaddr for htype; for Ethernet (htype 1, "Assigned Numbers") it is 6.
 * Leases are keyed by chaddr, so a packet without one (hlen 0, e.g. IPoIB clients per RFC 4390) is not
 * served either: its empty key would match every other keyless packet, and did (a RELEASE with hlen 0
 * used to free an address that a DECLINE had locked, whose owner is recorded as '').
 */
export function hlenProblem(p: Pick<DhcpPacket, 'htype' | 'hlen'>): string | undefined {
  if (p.htype === 1 && p.hlen !== 6) return `htype 1 (Ethernet) needs hlen 6, got ${p.hlen}`;
  if (p.hlen === 0 || p.hlen > 16) return `hlen ${p.hlen} is outside 1..16`;
  return undefined;
}

/** chaddr's first six bytes as a MAC: who a malformed packet claims to be, for the log only */
const chaddrGuess = (p: DhcpPacket): string => [...p.chaddr.subarray(0, 6)].map((b) => b.toString(16).padStart(2, '0')).join(':');


export function createResponder({ config, backend, leases, logger = silentLogger, clock = Date.now }: ResponderOptions) {
  const pools = config.pools.map((p) => toPool(p, config.leaseSeconds));
  const table = new LeaseTable(pools);
  table.excluded.add(ipToInt(config.serverIp));
  const urls: BootUrls = { httpBase: config.httpBase.replace(/\/+$/, ''), ...config.bootfiles };
  const nextServer = config.nextServer ?? config.serverIp;
  const traffic: Traffic = { received: { direct: byType(), relayed: byType(), pxe: byType() }, sent: byType(), bound: 0, released: 0, declined: 0 };
  const stats: Stats = { received: 0, replies: 0, acks: 0, naks: 0, ignored: 0, exhausted: 0, storeErrors: 0, takenByPeer: 0, badHlen: 0, undecodable: 0, foreignReleases: 0, foreignDeclines: 0, reservedDeclinesRefused: 0, reservedConflicts: 0 };
  /** reserved address → the MAC it is reserved for, as the backend told us in offers and bindings */
  const reservations = new Map<number, string>();
  const take = createLogLimiter({ clock, intervalMs: config.warnIntervalSeconds * 1000 });
  /** a warning a client can provoke: at most one line per (message, source) per warnIntervalSeconds */
  const warn = (msg: string, source: string, obj: object): void => {
    const ok = take(`${msg}\0${source}`);
    if (ok) logger.warn({ source, ...obj, suppressed: ok.suppressed }, msg);
  };

  // ---- group commit: bindings that arrive while a write is in flight go out together in the next one
  let pending: { lease: Lease; done: (err?: unknown, holder?: Lease) => void }[] = [];
  let writing = false;
  const flush = async (): Promise<void> => {
    if (writing || pending.length === 0) return;
    writing = true;
    const batch = pending;
    pending = [];
    try {
      const refused = (await leases.saveMany(batch.map((b) => b.lease))) ?? [];
      const holders = new Map(refused.map((l) => [l.ip, l]));
      for (const b of batch) {
        const h = holders.get(b.lease.ip);
        b.done(undefined, h && h.mac !== b.lease.mac ? h : undefined);
      }
    } catch (err) {
      for (const b of batch) b.done(err);
    } finally {
      writing = false;
      if (pending.length > 0) void flush();
    }
  };
  /** resolves to the address's current holder when a shared store refused the binding (another replica's) */
  const persist = (lease: Lease): Promise<Lease | undefined> =>
    new Promise((resolve, reject) => {
      pending.push({ lease, done: (err, holder) => (err ? reject(err) : resolve(holder)) });
      if (!writing) setImmediate(() => void flush());
    });

  const fromLease = (l: Lease, ip: number): Entry => ({ ip, mac: l.mac, state: l.state, expiresAt: l.expiresAt.getTime(), pool: l.pool, clientId: l.clientId, hostname: l.hostname });

  const toLease = (e: Entry): Lease => ({
    ip: intToIp(e.ip),
    mac: e.mac,
    clientId: e.clientId,
    hostname: e.hostname,
    state: e.state === 'offered' ? 'bound' : e.state,
    expiresAt: new Date(e.expiresAt),
    pool: e.pool,
  });

  async function load(): Promise<number> {
    const rows = await leases.loadAll();
    for (const l of rows) {
      let ip: number;
      try {
        ip = ipToInt(l.ip);
      } catch {
        continue;
      }
      table.set(fromLease(l, ip));
    }
    return rows.length;
  }

  /** The pools that serve this request's link: RFC 3527 link selection, else giaddr (RFC 2131 §4.3.1), else our own interface's subnet. */
  function linkPools(p: DhcpPacket, c: ClientInfo): Pool[] {
    const link = c.relay?.linkSelection ?? (p.giaddr !== ZERO ? p.giaddr : config.serverIp);
    const ip = ipToInt(link);
    return pools.filter((pool) => inSubnet(pool, ip));
  }

  const allowedPools = (all: Pool[], known: boolean): Pool[] => all.filter((p) => p.clients === 'all' || p.clients === (known ? 'known' : 'unknown'));

  function destination(req: DhcpPacket, type: number, r: Received): Pick<Reply, 'to' | 'broadcast'> {
    if (r.on === 'pxe') return { to: r.from, broadcast: false }; // proxyDHCP on 4011: the client has an address
    // RFC 2131 §4.1: relayed → the relay's server port; NAK → broadcast; ciaddr → unicast to it;
    // otherwise broadcast (a unicast to yiaddr needs an ARP entry we cannot add from Node).
    if (req.giaddr !== ZERO) return { to: { address: req.giaddr, port: config.port }, broadcast: false };
    if (type !== MessageType.NAK && req.ciaddr !== ZERO) return { to: { address: req.ciaddr, port: config.clientPort }, broadcast: false };
    return { to: { address: BROADCAST, port: config.clientPort }, broadcast: true };
  }

  function baseReply(req: DhcpPacket, c: ClientInfo, type: number, r: Received): Reply {
    const options = new Map<number, Buffer>();
    options.set(Opt.MESSAGE_TYPE, u8(type));
    options.set(Opt.SERVER_ID, ips([config.serverIp]));
    const packet: DhcpPacket = {
      op: BOOTREPLY,
      htype: req.htype,
      hlen: req.hlen,
      hops: 0,
      xid: req.xid,
      secs: 0,
      flags: req.flags & BROADCAST_FLAG,
      ciaddr: ZERO,
      yiaddr: ZERO,
      siaddr: ZERO,
      giaddr: req.giaddr,
      chaddr: req.chaddr,
      sname: '',
      file: '',
      options,
    };
    if (req.giaddr !== ZERO && type === MessageType.NAK) packet.flags |= BROADCAST_FLAG; // RFC 2131 §4.3.2
    return { packet, maxSize: c.maxSize, ...destination(req, type, r) };
  }

  /** Boot fields for PXE / HTTP / iPXE clients; returns false when this client gets no bootfile. */
  function addBoot(reply: Reply, c: ClientInfo, host: DhcpHost | null): boolean {
    const boot = chooseBootfile(c, urls, host?.bootloader);
    if (!boot) return false;
    const { packet, } = reply;
    // a URL longer than the 128-byte file field (RFC 2131 §2) goes only in option 67, which UEFI HTTP boot
    // and iPXE read first; a truncated URL in `file` would send the node to the wrong place
    const fits = boot.file.length <= 127;
    packet.file = fits ? boot.file : '';
    if (boot.via === 'tftp') {
      packet.siaddr = nextServer;
      if (c.paramList.includes(Opt.TFTP_SERVER)) packet.options.set(Opt.TFTP_SERVER, str(nextServer));
    }
    if (!fits || c.paramList.includes(Opt.BOOTFILE)) packet.options.set(Opt.BOOTFILE, str(boot.file));
    if (boot.vendorClass) packet.options.set(Opt.VENDOR_CLASS, str(boot.vendorClass));
    return true;
  }

  function addNetwork(reply: Reply, pool: Pool, host: DhcpHost | null, leaseSeconds?: number): void {
    const o = reply.packet.options;
    if (leaseSeconds !== undefined) {
      o.set(Opt.LEASE_TIME, u32(leaseSeconds));
      o.set(Opt.RENEWAL_TIME, u32(Math.floor(leaseSeconds / 2))); // RFC 2131 §4.4.5 defaults
      o.set(Opt.REBINDING_TIME, u32(Math.floor((leaseSeconds * 7) / 8)));
    }
    o.set(Opt.SUBNET_MASK, u32(pool.mask));
    if (pool.routers.length) o.set(Opt.ROUTER, ips(pool.routers));
    if (pool.dns.length) o.set(Opt.DNS, ips(pool.dns));
    if (pool.domain) o.set(Opt.DOMAIN_NAME, str(pool.domain));
    if (host?.hostname) o.set(Opt.HOSTNAME, str(host.hostname));
  }

  function finish(req: DhcpPacket, reply: Reply): Reply {
    // RFC 3046 §2.2: the relay agent information goes back unchanged
    const relay = req.options.get(Opt.RELAY_AGENT);
    if (relay && req.giaddr !== ZERO) reply.packet.options.set(Opt.RELAY_AGENT, relay);
    stats.replies++;
    const type = reply.packet.options.get(Opt.MESSAGE_TYPE)?.[0];
    traffic.sent[typeIndex(type)]!++;
    if (type === MessageType.ACK) stats.acks++;
    if (type === MessageType.NAK) stats.naks++;
    return reply;
  }

  function nak(req: DhcpPacket, c: ClientInfo, r: Received, why: string): Reply {
    logger.info({ mac: c.mac, requested: c.requestedIp ?? req.ciaddr, why }, 'DHCPNAK');
    const reply = baseReply(req, c, MessageType.NAK, r);
    reply.packet.options.set(Opt.MESSAGE, str(why));
    return finish(req, reply);
  }

  const silent = (c: ClientInfo, why: string, level: 'debug' | 'warn' = 'debug'): null => {
    stats.ignored++;
    logger[level]({ mac: c.mac, type: c.messageType, why }, 'no reply');
    return null;
  };

  async function lookup(mac: string): Promise<{ host: DhcpHost | null } | 'error'> {
    try {
      return { host: await backend.dhcpHost(mac) };
    } catch (err) {
      warn('boot backend failed; staying silent', 'backend', { mac, err: String(err) });
      return 'error';
    }
  }

  // ---------------------------------------------------------------- proxyDHCP (PXE spec 2.1 §2.5)
  function proxyReply(req: DhcpPacket, c: ClientInfo, type: number, r: Received, host: DhcpHost | null): Reply | null {
    const reply = baseReply(req, c, type, r);
    if (!addBoot(reply, c, host)) return null;
    const o = reply.packet.options;
    // A proxy offer identifies itself with option 60 PXEClient, echoes the client UUID, and sets
    // PXE_DISCOVERY_CONTROL (sub-option 6) = 8: "use the bootfile in this packet, skip boot server discovery".
    if (!o.has(Opt.VENDOR_CLASS)) o.set(Opt.VENDOR_CLASS, str('PXEClient'));
    if (c.uuidRaw) o.set(Opt.CLIENT_UUID, c.uuidRaw);
    if (c.isPxe) o.set(Opt.VENDOR_SPECIFIC, encodeSubOptions([[6, u8(8)]], true));
    logger.debug({ mac: c.mac, file: reply.packet.file, on: r.on }, type === MessageType.OFFER ? 'proxy DHCPOFFER' : 'proxy DHCPACK');
    return finish(req, reply);
  }

  async function handleProxy(req: DhcpPacket, c: ClientInfo, r: Received): Promise<Reply | null> {
    if (!isBootClient(c)) return silent(c, 'proxy mode answers PXE clients only');
    const found = await lookup(c.mac);
    if (found === 'error') return null;
    if (found.host && !found.host.allowBoot) return silent(c, 'backend says do not boot');
    if (!found.host && config.unknownClients === 'ignore') return silent(c, 'unknown machine');
    switch (c.messageType) {
      case MessageType.DISCOVER:
        return r.on === 'dhcp' ? proxyReply(req, c, MessageType.OFFER, r, found.host) : null;
      case MessageType.REQUEST:
      case MessageType.INFORM:
        // on 4011 the client asks us directly; on 67 only when it selected our offer
        if (r.on === 'pxe' || c.serverId === config.serverIp) return proxyReply(req, c, MessageType.ACK, r, found.host);
        return silent(c, 'request for another server');
      default:
        return silent(c, 'not handled in proxy mode');
    }
  }

  // ---------------------------------------------------------------- full mode
  function offerable(pool: Pool, host: DhcpHost | null, c: ClientInfo, now: number): number | null {
    if (host?.ipv4) {
      const ip = ipToInt(host.ipv4);
      if (!inSubnet(pool, ip)) return null;
      table.excluded.add(ip); // never hand a reserved address out dynamically once we know of it
      reservations.set(ip, c.mac);
      const holder = table.byIp.get(ip);
      if (holder && holder.mac !== c.mac && holder.expiresAt > now && holder.state !== 'released') {
        warn('reserved address is leased to another client', c.mac, { mac: c.mac, ip: host.ipv4, holder: holder.mac });
        return null;
      }
      return ip;
    }
    const mine = table.byMac.get(c.mac);
    if (mine && mine.pool === pool.name && table.isFree(mine.ip, now, c.mac)) return mine.ip;
    if (c.requestedIp) {
      const want = ipToInt(c.requestedIp);
      if (want >= pool.start && want <= pool.end && want !== pool.network && want !== pool.broadcast && table.isFree(want, now, c.mac)) return want;
    }
    return table.allocate(pool, now);
  }

  async function bind(c: ClientInfo, ip: number, pool: Pool, host: DhcpHost | null, now: number): Promise<'bound' | 'taken' | 'error'> {
    const e: Entry = {
      ip,
      mac: c.mac,
      state: 'bound',
      expiresAt: now + pool.leaseSeconds * 1000,
      pool: pool.name,
      clientId: c.clientId?.toString('hex'),
      hostname: host?.hostname ?? c.hostname,
    };
    let holder: Lease | undefined;
    try {
      holder = await persist(toLease(e));
    } catch (err) {
      stats.storeErrors++;
      logger.error({ mac: c.mac, ip: intToIp(ip), err: String(err) }, 'lease not saved; no DHCPACK sent');
      return 'error';
    }
    if (holder) {
      // another replica bound the address first: learn its holder so this table never offers it again
      stats.takenByPeer++;
      table.set(fromLease(holder, ip));
      return 'taken';
    }
    if (host?.ipv4 === intToIp(ip)) reservations.set(ip, c.mac);
    table.set(e);
    traffic.bound++;
    logger.info({ mac: c.mac, ip: intToIp(ip), pool: pool.name, clientId: e.clientId, expiresAt: new Date(e.expiresAt).toISOString() }, 'lease bound');
    return 'bound';
  }

  async function ack(req: DhcpPacket, c: ClientInfo, r: Received, ip: number, pool: Pool, host: DhcpHost | null, now: number): Promise<Reply | null> {
    const bound = await bind(c, ip, pool, host, now);
    if (bound === 'error') return null;
    // RFC 2131 §4.3.2: the requested address is not available; the client restarts with DHCPDISCOVER
    if (bound === 'taken') return nak(req, c, r, 'address was bound by another server meanwhile');
    const reply = baseReply(req, c, MessageType.ACK, r);
    reply.packet.yiaddr = intToIp(ip);
    reply.packet.ciaddr = req.ciaddr;
    addNetwork(reply, pool, host, pool.leaseSeconds);
    addBoot(reply, c, host);
    return finish(req, reply);
  }

  async function handleFull(req: DhcpPacket, c: ClientInfo, r: Received): Promise<Reply | null> {
    if (r.on === 'pxe') return handleProxy(req, c, r); // a PXE client may still ask 4011 (PXE spec §2.2.1)
    const type = c.messageType;
    // RELEASE and DECLINE carry no reply, and need no backend look-up.
    if (type === MessageType.RELEASE || type === MessageType.DECLINE) return forget(req, c, type, r);
    const found = await lookup(c.mac);
    if (found === 'error') return null;
    const { host } = found;
    if (host && !host.allowBoot) return silent(c, 'backend says do not boot');
    if (!host && config.unknownClients === 'ignore') return silent(c, 'unknown machine');
    const all = linkPools(req, c);
    if (all.length === 0) return silent(c, `no pool for link ${req.giaddr !== ZERO ? req.giaddr : config.serverIp}`);
    const usable = allowedPools(all, host !== null);
    const now = clock();

    switch (type) {
      case MessageType.DISCOVER: {
        for (const pool of usable) {
          const ip = offerable(pool, host, c, now);
          if (ip === null) continue;
          const held = table.byIp.get(ip);
          // an address the client already holds stays bound; a new one is held for offerSeconds
          if (!(held && held.mac === c.mac && held.state === 'bound' && held.expiresAt > now)) {
            table.set({ ip, mac: c.mac, state: 'offered', expiresAt: now + config.offerSeconds * 1000, pool: pool.name });
          }
          const reply = baseReply(req, c, MessageType.OFFER, r);
          reply.packet.yiaddr = intToIp(ip);
          addNetwork(reply, pool, host, pool.leaseSeconds);
          addBoot(reply, c, host);
          logger.debug({ mac: c.mac, ip: intToIp(ip) }, 'DHCPOFFER');
          return finish(req, reply);
        }
        if (usable.length > 0 && !host?.ipv4) {
          stats.exhausted++;
          // a flood of DISCOVERs on a full pool must not flood the log: one line per pool set per interval
          const names = usable.map((p) => p.name);
          warn('pool exhausted', names.join(','), { mac: c.mac, pools: names });
          return null;
        }
        return silent(c, 'no pool open to this client');
      }

      case MessageType.REQUEST: {
        if (c.serverId !== undefined) {
          // SELECTING (RFC 2131 §4.3.2): the client chose a server.
          if (c.serverId !== config.serverIp) {
            table.dropOffer(c.mac);
            // Replicas on one segment all answer a DISCOVER. The address the client asks the chosen server for is
            // about to be bound there: hold it for that client here too, or this replica offers it to the next
            // machine, whose REQUEST then ends in a DHCPNAK (the shared table refuses the claim) and a new DISCOVER —
            // over and over in a boot storm (measured in the HA rack, test/e2e/ha: iPXE gave up). The lease table
            // stays the arbiter; this only keeps the offers apart.
            const asked = c.requestedIp !== undefined ? ipToInt(c.requestedIp) : undefined;
            const pool = asked === undefined ? undefined : usable.find((p) => asked >= p.start && asked <= p.end);
            if (asked !== undefined && pool && table.isFree(asked, now, c.mac)) table.set({ ip: asked, mac: c.mac, state: 'offered', expiresAt: now + pool.leaseSeconds * 1000, pool: pool.name });
            return silent(c, 'client chose another server');
          }
          const want = c.requestedIp ?? (req.ciaddr !== ZERO ? req.ciaddr : undefined);
          const mine = table.byMac.get(c.mac);
          if (!want || !mine || intToIp(mine.ip) !== want) return nak(req, c, r, 'requested address was not offered');
          const pool = usable.find((p) => p.name === mine.pool) ?? pools.find((p) => p.name === mine.pool);
          if (!pool) return nak(req, c, r, 'address is not in a served subnet');
          if (host?.ipv4 && host.ipv4 !== want) return nak(req, c, r, 'reservation changed');
          return ack(req, c, r, mine.ip, pool, host, now);
        }
        // INIT-REBOOT (option 50, no ciaddr) or RENEWING/REBINDING (ciaddr): verify the client's idea.
        const want = c.requestedIp ?? (req.ciaddr !== ZERO ? req.ciaddr : undefined);
        if (!want) return silent(c, 'REQUEST without address', 'debug');
        const ip = ipToInt(want);
        const pool = all.find((p) => inSubnet(p, ip));
        if (!pool) return nak(req, c, r, 'wrong subnet');
        if (host?.ipv4) {
          if (host.ipv4 !== want) return nak(req, c, r, 'address differs from the reservation');
          return ack(req, c, r, ip, pool, host, now);
        }
        const held = table.byIp.get(ip);
        if (held && held.mac === c.mac && held.state !== 'declined') return ack(req, c, r, ip, pool, host, now);
        if (held && held.mac !== c.mac && held.expiresAt > now && held.state !== 'released') return nak(req, c, r, 'address belongs to another client');
        const inRange = usable.some((p) => p.name === pool.name) && ip >= pool.start && ip <= pool.end;
        // RFC 2131 §4.3.2: with no record of the client, INIT-REBOOT gets silence; a renewing client
        // whose free, in-range address we lost track of (e.g. a wiped store) gets it back.
        if (!held && req.ciaddr === ZERO) return silent(c, 'INIT-REBOOT for an address we have no record of');
        if (!inRange) return nak(req, c, r, 'address is not in a range this client may use');
        return ack(req, c, r, ip, pool, host, now);
      }

      case MessageType.INFORM: {
        // RFC 2131 §3.4: configuration only; no lease, no yiaddr; reply to ciaddr.
        if (req.ciaddr === ZERO) return silent(c, 'INFORM without ciaddr');
        const pool = all.find((p) => inSubnet(p, ipToInt(req.ciaddr))) ?? all[0]!;
        const reply = baseReply(req, c, MessageType.ACK, r);
        reply.packet.ciaddr = req.ciaddr;
        addNetwork(reply, pool, host);
        addBoot(reply, c, host);
        return finish(req, reply);
      }

      default:
        return silent(c, 'message type not served');
    }
  }

  /** The MAC an address is reserved for: the backend's answer for the lease's holder, else a reservation seen before. */
  async function reservedFor(ip: number, addr: string, held: Entry | undefined): Promise<string | undefined> {
    if (held?.mac) {
      const found = await lookup(held.mac);
      if (found !== 'error' && found.host?.ipv4 === addr) return held.mac;
    }
    return reservations.get(ip);
  }

  /**
   * DHCPDECLINE (RFC 2131 §4.3.3) and DHCPRELEASE (§4.3.4). Neither gets a reply and neither is
   * authenticated: anyone on the segment can send one with any chaddr. So they are honoured only from the
   * lease's owner:
   * - the same chaddr (hlen already checked in handle(): an empty chaddr matches nothing);
   * - when the lease was bound with a client identifier, the same option 61: §4.2 makes the identifier (or
   *   chaddr) with the address the lease's key, and §2 requires a client that used one to send the same
   *   identifier in every later message, its DECLINE and RELEASE included;
   * - a RELEASE is unicast from the leased address (§4.4.4, §4.4.6; ciaddr names it): one that comes
   *   directly (no relay) from another address is not from the owner either.
   * A sender that copies chaddr and option 61 off the wire still passes, and one that copies only chaddr
   * can re-bind the lease first with a REQUEST carrying its own identifier (REQUESTs must accept a new
   * option 61 for a known chaddr: the boot chain changes identifiers on one NIC). DHCP has no
   * authentication that PXE ROMs implement (RFC 3118); the defence there is the switch (DHCP snooping,
   * port security). Reservations are safe either way: see below.
   *
   * Reserved addresses are never locked out by a DECLINE: from anyone else it is ignored with an alert
   * (counter + warning); from the owner, §4.3.3's "mark the address as not available" would take away the
   * only address the node may have for declineSeconds and fix nothing (the other machine keeps using it),
   * so the reservation and the lease stay, and the conflict is counted and logged for an operator to find
   * the machine squatting on the address.
   */
  async function forget(req: DhcpPacket, c: ClientInfo, type: number, r: Received): Promise<null> {
    const release = type === MessageType.RELEASE;
    if (c.serverId !== undefined && c.serverId !== config.serverIp) return silent(c, 'for another server');
    const now = clock();
    // RFC 2131 §4.4.1 table 5: a RELEASE names its address in ciaddr, a DECLINE in option 50
    const addr = release ? req.ciaddr : c.requestedIp;
    if (!addr || addr === ZERO) return silent(c, 'no address given');
    const ip = ipToInt(addr);
    const held = table.byIp.get(ip);
    const clientId = c.clientId?.toString('hex');
    const unowned = !held || held.mac === '' || held.state === 'declined';
    const why = unowned
      ? 'no lease on that address'
      : held.mac !== c.mac
        ? 'the lease belongs to another hardware address'
        : held.clientId !== undefined && held.clientId !== clientId
          ? "client identifier (option 61) differs from the lease's"
          : release && req.giaddr === ZERO && r.from.address !== ZERO && r.from.address !== addr
            ? 'RELEASE not sent from the leased address'
            : undefined;
    const reserved = release ? undefined : await reservedFor(ip, addr, unowned ? undefined : held);
    if (why) {
      // not the owner (a copied chaddr without the lease's option 61 included): never a lock-out of a reservation
      if (reserved !== undefined) {
        stats.reservedDeclinesRefused++;
        warn('DHCPDECLINE of a reserved address from another client ignored', c.mac, { ip: addr, reservedFor: reserved, why });
        return null;
      }
      if (unowned) return silent(c, why);
      if (release) stats.foreignReleases++;
      else stats.foreignDeclines++;
      warn(`${release ? 'DHCPRELEASE' : 'DHCPDECLINE'} for a lease the sender does not own ignored`, c.mac, { ip: addr, owner: held!.mac, from: r.from.address, why });
      return null;
    }
    const lease = held!;
    if (release && lease.state === 'released') return silent(c, 'already released');
    if (!release && reserved === c.mac) {
      stats.reservedConflicts++;
      warn('reserved address is in use by another machine (DHCPDECLINE from its owner); reservation kept', c.mac, { ip: addr });
      return null;
    }
    const e: Entry = release
      ? { ...lease, state: 'released', expiresAt: now }
      : // RFC 2131 §4.3.3: the address is in use by someone else; keep it out of the pool for a while
        { ...lease, mac: '', state: 'declined', expiresAt: now + config.declineSeconds * 1000 };
    try {
      await persist(toLease(e));
    } catch (err) {
      stats.storeErrors++;
      logger.error({ mac: c.mac, ip: addr, err: String(err) }, 'lease change not saved');
    }
    if (e.state === 'declined') table.byMac.delete(c.mac);
    table.set(e);
    if (release) traffic.released++;
    else traffic.declined++;
    logger.info({ mac: c.mac, ip: addr }, release ? 'lease released' : 'address declined');
    return null;
  }

  /** Decide the reply to one decoded request. Never throws: a bug in here stays one dropped packet. */
  async function handle(req: DhcpPacket, r: Received): Promise<Reply | null> {
    stats.received++;
    try {
      if (req.op !== 1) return null;
      const t = typeIndex(req.options.get(Opt.MESSAGE_TYPE)?.[0]);
      const via = r.on === 'pxe' ? traffic.received.pxe : req.giaddr !== ZERO ? traffic.received.relayed : traffic.received.direct;
      via[t]!++;
      const bad = hlenProblem(req);
      if (bad) {
        stats.badHlen++;
        warn('DHCP packet with a bad hlen dropped', chaddrGuess(req), { htype: req.htype, hlen: req.hlen, from: r.from.address, why: bad });
        return null;
      }
      const c = classify(req);
      if (c.messageType === undefined) return silent(c, 'BOOTP request without message type');
      return config.mode === 'proxy' ? await handleProxy(req, c, r) : await handleFull(req, c, r);
    } catch (err) {
      logger.error({ err: String(err), stack: (err as Error)?.stack }, 'DHCP request handling failed');
      return null;
    }
  }

  return { handle, load, stats, traffic, table, pools };
}

export type Responder = ReturnType<typeof createResponder>;
