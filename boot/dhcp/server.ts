// The thin socket around the DHCP responder (the only file of boot/dhcp that does network I/O).
//
// Binding to one interface without SO_BINDTODEVICE (Node's dgram cannot set it):
// - Clients without an address broadcast to 255.255.255.255:67. Linux delivers a limited broadcast only
//   to sockets bound to INADDR_ANY (or bound to a device), so one socket binds 0.0.0.0:67. It cannot
//   tell which interface a packet came in on (no IP_PKTINFO in dgram either).
// - Replies leave from a second socket bound to the interface address (SERVER_IP:67, SO_REUSEADDR).
//   For a limited-broadcast destination Linux picks the output device from the bound source address
//   (net/ipv4/route.c, ip_route_output_key_hash_rcu: "if (ipv4_is_lbcast(daddr)) dev_out =
//   __ip_dev_find(saddr)"), so broadcasts go out exactly the served interface, whatever the routing
//   table says. The same socket receives unicast renewals and relayed requests sent to SERVER_IP:67.
//   (A socket bound to the subnet broadcast address would receive nothing: clients send to
//   255.255.255.255, not to the directed broadcast.)
// - Measured (a namespace with the served interface A and another interface B, UDP to
//   255.255.255.255:68, tcpdump on both peers): from 0.0.0.0:67 with no default route → ENETUNREACH;
//   from 0.0.0.0:67 with the default route on B → the broadcast leaves on B (the wrong wire); from
//   SERVER_IP:67 → it leaves on A in both cases. Hence the second socket.
// - Consequence, tested in server.netns.test.ts: a client on another interface of the same host
//   never gets an answer (the reply goes out the served interface), but its DISCOVER still reaches the
//   0.0.0.0 socket and holds an offer for offerSeconds. Run one server per segment, or in a network
//   namespace holding only the served interface, when several segments reach the host directly.
import dgram from 'node:dgram';
import { existsSync } from 'node:fs';
import os from 'node:os';
import type { BootBackend } from '../backend.ts';
import { type DhcpConfig, type DhcpConfigInput, DhcpConfigSchema } from './config.ts';
import type { LeaseStore } from './leases.ts';
import { createLogLimiter } from './limit.ts';
import { decodePacket, encodePacket } from './packet.ts';
import { readUdpDrops } from './drops.ts';
import { type Logger, type Received, type Reply, createResponder, silentLogger } from './responder.ts';

export type DhcpServerOptions = DhcpConfigInput & {
  backend: BootBackend;
  leases: LeaseStore;
  logger?: Logger;
  clock?: () => number;
  /**
   * told once per decoded request: seconds from its arrival to the reply handed to the socket (or to the
   * decision to stay silent), backend look-up and lease write included. Wire a histogram here (server/dhcp-metrics.ts).
   */
  onHandled?: (seconds: number) => void;
  /** skip the check that `interface` exists and holds serverIp (unit tests on loopback) */
  skipInterfaceCheck?: boolean;
};

export interface DhcpServer {
  start(): Promise<void>;
  stop(): Promise<void>;
  readonly config: DhcpConfig;
  readonly stats: ReturnType<typeof createResponder>['stats'];
  /** decide without sockets (tests, tools) */
  readonly responder: ReturnType<typeof createResponder>;
  /** datagrams the kernel dropped because a socket's receive buffer was full (since the sockets were bound) */
  socketDrops(): number;
  /** the receive buffer each socket got (bytes, as the kernel reports it: twice what it granted), after start */
  recvBufferBytes(): number[];
}

/**
 * 'ok', or why not. libuv lists only interfaces that are up and running, so an interface without
 * carrier yet (a tap before QEMU opens it, a cable not plugged) is 'no-carrier', not an error: the
 * bind to serverIp below then tells whether the address is really there.
 */
export function checkInterface(name: string, ip: string): 'ok' | 'missing' | 'no-carrier' | 'wrong-address' {
  if (!existsSync(`/sys/class/net/${name}`)) return 'missing';
  const addrs = os.networkInterfaces()[name];
  if (!addrs) return 'no-carrier';
  return addrs.some((a) => a.family === 'IPv4' && a.address === ip) ? 'ok' : 'wrong-address';
}

export function createDhcpServer({ backend, leases, logger = silentLogger, clock, onHandled, skipInterfaceCheck = false, ...input }: DhcpServerOptions): DhcpServer {
  const config = DhcpConfigSchema.parse(input);
  const responder = createResponder({ config, backend, leases, logger, clock });
  const sockets: dgram.Socket[] = [];
  let sender: dgram.Socket | undefined;
  let pxeSocket: dgram.Socket | undefined;
  let purgeTimer: NodeJS.Timeout | undefined;
  let bound: { address: string; port: number }[] = [];
  let dropsAtStart = 0;
  // a send can fail per packet (no route, ARP failure): one line per destination per interval
  const take = createLogLimiter({ clock: clock ?? Date.now, intervalMs: config.warnIntervalSeconds * 1000 });

  const send = (reply: Reply, on: Received['on']): void => {
    let bytes: Buffer;
    try {
      bytes = encodePacket(reply.packet, reply.maxSize);
    } catch (err) {
      logger.error({ err: String(err) }, 'could not encode a DHCP reply');
      return;
    }
    // a ProxyDHCP ACK must come from port 4011: iPXE only accepts the reply from the port it asked
    const via = on === 'pxe' ? pxeSocket : sender;
    via?.send(bytes, reply.to.port, reply.to.address, (err) => {
      const ok = err && take(reply.to.address);
      if (ok) logger.warn({ to: reply.to, err: err.message, suppressed: ok.suppressed }, 'DHCP reply not sent');
    });
  };

  const onMessage = (on: Received['on']) => (msg: Buffer, rinfo: dgram.RemoteInfo) => {
    const t0 = performance.now();
    const decoded = decodePacket(msg);
    if (!decoded.ok) {
      responder.stats.undecodable++;
      logger.debug({ from: rinfo.address, bytes: msg.length, error: decoded.error }, 'undecodable DHCP packet dropped');
      return;
    }
    void responder.handle(decoded.packet, { on, from: { address: rinfo.address, port: rinfo.port } }).then((reply) => {
      if (reply) send(reply, on);
      onHandled?.((performance.now() - t0) / 1000);
    });
  };

  const bind = (address: string, port: number, on: Received['on']): Promise<dgram.Socket> =>
    new Promise((resolve, reject) => {
      const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
      s.once('error', reject);
      s.bind({ address, port }, () => {
        s.off('error', reject);
        s.on('error', (err) => logger.warn({ address, port, err: err.message }, 'DHCP socket error'));
        s.on('message', onMessage(on));
        s.setBroadcast(true);
        try {
          s.setRecvBufferSize(config.recvBufferBytes);
        } catch (err) {
          logger.warn({ address, port, err: (err as Error).message }, 'DHCP socket receive buffer not set');
        }
        resolve(s);
      });
    });

  async function start(): Promise<void> {
    if (!skipInterfaceCheck) {
      const state = checkInterface(config.interface, config.serverIp);
      if (state === 'missing') throw new Error(`DHCP: there is no interface ${config.interface}`);
      if (state === 'wrong-address') throw new Error(`DHCP: interface ${config.interface} does not hold ${config.serverIp}`);
      if (state === 'no-carrier') logger.warn({ interface: config.interface }, 'DHCP interface has no carrier yet');
    }
    const loaded = await responder.load();
    try {
      sockets.push(await bind('0.0.0.0', config.port, 'dhcp'));
      sender = await bind(config.serverIp, config.port, 'dhcp');
      sockets.push(sender);
      // proxyDHCP requests come to port 4011 (PXE spec 2.1 §2.2.1), in full mode too when a ROM insists
      pxeSocket = await bind(config.serverIp, config.proxyPort, 'pxe');
      sockets.push(pxeSocket);
    } catch (err) {
      await stop();
      throw new Error(`DHCP: cannot bind port ${config.port}/${config.proxyPort} on ${config.serverIp}: ${(err as Error).message}`);
    }
    // Linux grants at most net.core.rmem_max (and reports double what it granted): say what we got
    const granted = Math.min(...sockets.map((s) => s.getRecvBufferSize()));
    if (granted < config.recvBufferBytes) logger.warn({ askedBytes: config.recvBufferBytes, grantedBytes: granted, sysctl: 'net.core.rmem_max' }, 'DHCP socket receive buffer is smaller than configured (capped by net.core.rmem_max): a boot storm may overflow it');
    else logger.info({ recvBufferBytes: granted }, 'DHCP socket receive buffer');
    bound = [{ address: '0.0.0.0', port: config.port }, { address: config.serverIp, port: config.port }, { address: config.serverIp, port: config.proxyPort }];
    dropsAtStart = readUdpDrops(bound);
    // expired leases are kept a day so a returning client gets its old address, then purged
    purgeTimer = setInterval(() => {
      leases.purgeExpired(new Date(Date.now() - 86_400_000)).catch((err) => logger.warn({ err: String(err) }, 'lease purge failed'));
    }, 3_600_000);
    purgeTimer.unref();
    logger.info({ mode: config.mode, interface: config.interface, serverIp: config.serverIp, port: config.port, leases: loaded }, 'DHCP server listening');
  }

  async function stop(): Promise<void> {
    if (purgeTimer) clearInterval(purgeTimer);
    await Promise.all(sockets.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    sender = pxeSocket = undefined;
  }

  return {
    start,
    stop,
    config,
    stats: responder.stats,
    responder,
    socketDrops: () => (sockets.length ? Math.max(0, readUdpDrops(bound) - dropsAtStart) : 0),
    recvBufferBytes: () => sockets.map((s) => s.getRecvBufferSize()),
  };
}
