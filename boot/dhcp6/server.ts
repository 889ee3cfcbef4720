// The thin socket around the DHCPv6 responder (the only file of boot/dhcp6 that does network I/O).
//
// - Clients send to All_DHCP_Relay_Agents_and_Servers ff02::1:2 port 547 from their link-local address
//   (RFC 8415 §7.1, §14). One udp6 socket binds [::]:547 and joins ff02::1:2 on the served interface only
//   (addMembership with the zone '::%IFACE': Node hands the zone's interface index to IPV6_JOIN_GROUP).
// - Node reports a link-local sender with its zone ("fe80::…%eth1", measured in a netns): a datagram from a
//   link-local address on another interface is dropped here, since dgram has no IP_PKTINFO to say where a packet
//   came in. Replies go to the sender's address and port: a client's link-local (the zone picks the interface),
//   or the relay that forwarded the message (RFC 8415 §19.3: the Relay-reply goes back to that relay).
// - The server DUID is DUID-LL over the interface MAC (RFC 8415 §11.4) unless configured: the same after every
//   restart, which a client's Renew and Release need (they name the server by it).
import dgram from 'node:dgram';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import type { BootBackend } from '../backend.ts';
import { createLogLimiter } from '../dhcp/limit.ts';
import type { Logger } from '../dhcp/responder.ts';
import { type Dhcp6Config, type Dhcp6ConfigInput, Dhcp6ConfigSchema, ip6ToBig } from './config.ts';
import type { Lease6Store } from './leases.ts';
import { type Duid, decodeDhcp6, encodeDhcp6, encodeDuid } from './packet.ts';
import { type Reply6, createResponder6 } from './responder.ts';

export const ALL_DHCP_RELAY_AGENTS_AND_SERVERS = 'ff02::1:2';

export type Dhcp6ServerOptions = Dhcp6ConfigInput & {
  backend: BootBackend;
  leases: Lease6Store;
  logger?: Logger;
  clock?: () => number;
  /** told once per decoded message: seconds from arrival to the reply handed to the socket (or silence) */
  onHandled?: (seconds: number) => void;
};

export interface Dhcp6Server {
  start(): Promise<void>;
  stop(): Promise<void>;
  readonly config: Dhcp6Config;
  readonly stats: ReturnType<typeof createResponder6>['stats'];
  /** the responder, once start() has derived the server DUID */
  responder(): ReturnType<typeof createResponder6> | undefined;
  /** the DUID this server answers with, hex (after start) */
  serverDuid(): string | undefined;
}

const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** DUID-LL (RFC 8415 §11.4): type 3, hardware type 1 (Ethernet), the MAC. */
export function duidLl(mac: string): Duid {
  return { type: 3, hwType: 1, linkLayer: Buffer.from(mac.replaceAll(':', ''), 'hex') };
}

/** A configured DUID in hex: its type and the rest kept raw (the codec re-encodes { type, raw } as given). */
export function duidFromHex(hex: string): Duid {
  const b = Buffer.from(hex, 'hex');
  return { type: b.readUInt16BE(0), raw: b.subarray(2) };
}

/**
 * Why the interface cannot be served, or its MAC. libuv lists only interfaces that are up and running, so one that
 * exists without carrier (a switch rebooting while the boot server starts, a cable not plugged yet) is served all the
 * same — its MAC read from sysfs, `noCarrier` set — as the DHCPv4 server does (boot/dhcp/server.ts checkInterface):
 * refusing to start there took the whole boot server down with the link. Its address cannot be checked then; the
 * socket listens on [::] and joins the group on the interface, which the kernel allows without carrier.
 */
export function interfaceState(name: string, address: string, { sysfs = '/sys/class/net', list = os.networkInterfaces }: { sysfs?: string; list?: typeof os.networkInterfaces } = {}): { mac: string; noCarrier?: true } | { problem: string } {
  const addrs = list()[name];
  if (!addrs) {
    if (!/^[\w.:@-]+$/.test(name) || !existsSync(join(sysfs, name))) return { problem: `there is no interface ${name}` };
    let mac = '';
    try {
      mac = readFileSync(join(sysfs, name, 'address'), 'utf8').trim();
    } catch {}
    return /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(mac) ? { mac: mac.toLowerCase(), noCarrier: true } : { problem: `interface ${name} has no carrier and no Ethernet address in ${join(sysfs, name, 'address')}` };
  }
  const want = ip6ToBig(address);
  const v6 = addrs.filter((a) => a.family === 'IPv6');
  if (!v6.some((a) => ip6ToBig(a.address.replace(/%.*$/, '')) === want)) return { problem: `interface ${name} does not hold ${address} (it has ${v6.map((a) => a.address).join(', ') || 'no IPv6 address'})` };
  return { mac: addrs[0]!.mac };
}

export function createDhcp6Server({ backend, leases, logger = silentLogger, clock, onHandled, ...input }: Dhcp6ServerOptions): Dhcp6Server {
  const config = Dhcp6ConfigSchema.parse(input);
  let responder: ReturnType<typeof createResponder6> | undefined;
  let socket: dgram.Socket | undefined;
  let duidHex: string | undefined;
  let purgeTimer: NodeJS.Timeout | undefined;
  const take = createLogLimiter({ clock: clock ?? Date.now, intervalMs: config.warnIntervalSeconds * 1000 });

  const send = (reply: Reply6): void => {
    let bytes: Buffer;
    try {
      bytes = encodeDhcp6(reply.message);
    } catch (err) {
      logger.error({ err: String(err) }, 'could not encode a DHCPv6 reply');
      return;
    }
    socket?.send(bytes, reply.to.port, reply.to.address, (err) => {
      const ok = err && take(reply.to.address);
      if (ok) logger.warn({ to: reply.to, err: err.message, suppressed: ok.suppressed }, 'DHCPv6 reply not sent');
    });
  };

  const onMessage = (msg: Buffer, rinfo: dgram.RemoteInfo): void => {
    const r = responder;
    if (!r) return;
    const zone = /%(.+)$/.exec(rinfo.address)?.[1];
    if (zone !== undefined && zone !== config.interface) {
      r.stats.ignored++;
      logger.debug({ from: rinfo.address }, 'DHCPv6 packet from another interface dropped');
      return;
    }
    const t0 = performance.now();
    const decoded = decodeDhcp6(msg);
    if (!decoded.ok) {
      r.stats.undecodable++;
      logger.debug({ from: rinfo.address, bytes: msg.length, error: decoded.error }, 'undecodable DHCPv6 packet dropped');
      return;
    }
    void r.handle(decoded.message, { from: { address: rinfo.address, port: rinfo.port } }).then((reply) => {
      if (reply) send(reply);
      onHandled?.((performance.now() - t0) / 1000);
    });
  };

  async function start(): Promise<void> {
    const state = interfaceState(config.interface, config.serverAddress);
    if ('problem' in state) throw new Error(`DHCPv6: ${state.problem}`);
    if (state.noCarrier) logger.warn({ interface: config.interface, serverAddress: config.serverAddress }, 'DHCPv6 interface has no carrier yet: serving once its link comes up');
    const duid = config.serverDuid ? duidFromHex(config.serverDuid) : duidLl(state.mac);
    if (!config.serverDuid && state.mac === '00:00:00:00:00:00') throw new Error(`DHCPv6: interface ${config.interface} has no MAC to build a DUID-LL from; set dhcp6.serverDuid`);
    responder = createResponder6({ config, serverDuid: duid, backend, leases, logger, clock });
    duidHex = encodeDuid(duid).toString('hex');
    const loaded = await responder.load();
    const s = dgram.createSocket({ type: 'udp6', reuseAddr: true, ipv6Only: true });
    try {
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.bind({ address: '::', port: config.port }, () => {
          s.off('error', reject);
          resolve();
        });
      });
      s.addMembership(ALL_DHCP_RELAY_AGENTS_AND_SERVERS, `::%${config.interface}`);
    } catch (err) {
      s.close();
      throw new Error(`DHCPv6: cannot bind [::]:${config.port} and join ${ALL_DHCP_RELAY_AGENTS_AND_SERVERS} on ${config.interface}: ${(err as Error).message}`);
    }
    s.on('error', (err) => logger.warn({ err: err.message }, 'DHCPv6 socket error'));
    s.on('message', onMessage);
    socket = s;
    purgeTimer = setInterval(() => {
      leases.purgeExpired(new Date(Date.now() - 86_400_000)).catch((err) => logger.warn({ err: String(err) }, 'DHCPv6 lease purge failed'));
    }, 3_600_000);
    purgeTimer.unref();
    logger.info({ interface: config.interface, serverAddress: config.serverAddress, serverDuid: duidHex, port: config.port, pools: responder.pools.map((p) => p.name), leases: loaded }, 'DHCPv6 server listening');
  }

  async function stop(): Promise<void> {
    if (purgeTimer) clearInterval(purgeTimer);
    const s = socket;
    socket = undefined;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  return {
    start,
    stop,
    config,
    get stats() {
      return responder?.stats ?? { received: 0, replies: 0, ignored: 0, undecodable: 0, exhausted: 0, storeErrors: 0, takenByPeer: 0, bound: 0, released: 0, declined: 0 };
    },
    responder: () => responder,
    serverDuid: () => duidHex,
  };
}
