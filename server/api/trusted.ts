// Where boot and agent calls may come from, and who the client is.
//
// Debian's iPXE has no HTTPS and /ipxe/:uuid starts a boot attempt, so anyone who can reach the boot routes and
// knows a UUID could play a node. On a site where the boot network is separate, list its subnets in
// boot.trustedNetworks and only those addresses get scripts and may act as agents. Empty (the default) trusts
// every source, as matchbox and smee do; the server warns about it at start.
//
// Behind a load balancer the TCP peer is the balancer. Its X-Forwarded-For is believed only when the peer is in
// http.trustedProxies, and then read from the right: each hop that is itself a trusted proxy is skipped, and the
// first address that is not one is the client (the entries left of it were written by the client and prove
// nothing). Without trusted proxies the header is ignored, so a client cannot pick its own address.
import { BlockList, isIP } from 'node:net';
import type { Context, MiddlewareHandler } from 'hono';
import { getConnInfo } from '@hono/node-server/conninfo';
import type { Config } from '../config.ts';
import { AppError } from '../errors.ts';

export function parseNetworks(cidrs: string[]): BlockList {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [addr, bits] = cidr.split('/');
    const family = isIP(addr ?? '');
    if (!family) throw new Error(`trusted network "${cidr}" is not an address or CIDR`);
    const prefix = bits === undefined ? (family === 4 ? 32 : 128) : Number(bits);
    list.addSubnet(addr!, prefix, family === 4 ? 'ipv4' : 'ipv6');
  }
  return list;
}

/** IPv4-mapped IPv6 (::ffff:10.0.0.5) folded to IPv4, so one list entry covers both socket kinds. */
const fold = (a: string) => (a.toLowerCase().startsWith('::ffff:') && isIP(a.slice(7)) === 4 ? a.slice(7) : a);
const inList = (list: BlockList, a: string) => list.check(a, isIP(a) === 4 ? 'ipv4' : 'ipv6');

/** The TCP peer's address; null when there is no socket (an in-process request). Behind a load balancer this is
 * the balancer: use clientAddressOf for "who is the client". */
export function peerAddress(c: Context): string | null {
  try {
    const a = getConnInfo(c).remote.address;
    return a ? fold(a) : null;
  } catch {
    return null;
  }
}

/** One X-Forwarded-For entry as an address: bare, `[v6]`, `[v6]:port` or `v4:port`; null when it is not one. */
function forwardedAddress(entry: string): string | null {
  let a = entry.trim();
  const br = /^\[([^\]]+)\](:\d+)?$/.exec(a);
  if (br) a = br[1]!;
  else if (/^[\d.]+:\d+$/.test(a)) a = a.slice(0, a.lastIndexOf(':'));
  return isIP(a) ? fold(a) : null;
}

export type ClientAddress = (c: Context) => string | null;

/** How this server learns a request's client address (see the top of this file). null: unknown. */
export function clientAddressResolver(trustedProxies: string[], { onUntrustedForward }: { onUntrustedForward?: (peer: string) => void } = {}): ClientAddress {
  const proxies = parseNetworks(trustedProxies);
  // peers already reported as forwarding without being trusted (bounded: a scan cannot grow it)
  const reported = new Set<string>();
  return function clientAddress(c) {
    const peer = peerAddress(c);
    if (!peer || !trustedProxies.length || !inList(proxies, peer)) {
      // A load balancer left out of http.trustedProxies: every client behind it looks like the balancer, so they
      // share one rate-limit bucket and boot.trustedNetworks judges the balancer. Say so once per peer.
      if (peer && onUntrustedForward && reported.size < 64 && !reported.has(peer) && c.req.raw.headers.has('x-forwarded-for')) {
        reported.add(peer);
        onUntrustedForward(peer);
      }
      return peer;
    }
    const header = c.req.raw.headers.get('x-forwarded-for');
    if (!header) return peer;
    const hops = header.split(',');
    for (let i = hops.length - 1; i >= 0; i--) {
      const a = forwardedAddress(hops[i]!);
      // a malformed hop: the chain cannot be followed further, and what the proxy appended cannot be trusted
      if (!a) return null;
      if (!inList(proxies, a)) return a;
    }
    // every hop is a proxy: the leftmost one is as far back as the chain goes
    return forwardedAddress(hops[0]!);
  };
}

/** Middleware: resolves the client address once per request for clientAddressOf. */
export function resolveClient(clientAddress: ClientAddress): MiddlewareHandler {
  return async function setClient(c, next) {
    c.set('clientAddress' as never, { address: clientAddress(c) } as never);
    await next();
  };
}

/** The request's client address as resolveClient found it (the peer when that middleware did not run). Also "the
 * node's own address" of a boot attempt (server/api/boot.ts, bmc-setup.ts). */
export function clientAddressOf(c: Context): string | null {
  const set = c.get('clientAddress' as never) as { address: string | null } | undefined;
  return set ? set.address : peerAddress(c);
}

export function trustedNetworks(cidrs: string[], clientAddress: ClientAddress = peerAddress): MiddlewareHandler {
  const list = parseNetworks(cidrs);
  return async function onlyTrusted(c, next) {
    if (cidrs.length) {
      const addr = clientAddress(c);
      if (!addr || !inList(list, addr)) {
        throw new AppError(403, 'forbidden', `boot and agent calls are not accepted from ${addr ?? 'an unknown address'} (boot.trustedNetworks)`);
      }
    }
    await next();
  };
}

/** What an operator should hear at start about the boot network boundary. */
export function boundaryWarnings(config: Config): string[] {
  const out: string[] = [];
  if (!config.boot.trustedNetworks.length) {
    out.push(
      'boot.trustedNetworks is empty: boot scripts and agent calls are accepted from ANY address that can reach this server. ' +
        'Fine for a lab; on a real site set it to the boot network, e.g. BOOTFARM_BOOT__TRUSTED_NETWORKS=\'["10.20.0.0/24"]\' (docs/security-model.md)',
    );
  }
  return out;
}

/**
 * When a trusted proxy stamped the request (`X-Request-Start: t=<epoch ms>`, HAProxy:
 * `http-request set-header X-Request-Start t=%[date(0,ms)]`), a request that waited longer than maxAgeSeconds
 * before reaching the handler gets a 503 and does nothing (issue 14, found by the HA rack): it sat in the socket
 * of a replica that was paused (SIGSTOP, a VM freeze) or stalled, its client gave up and retried through another
 * replica, and acting on it now would undo the retry's work (a late /ipxe opened a new boot attempt and revoked a
 * booting node's token; a late registration moved a ready node back to inspecting). Only from a trusted proxy:
 * anyone else could stamp requests to have them refused. Needs the proxy's and the replicas' clocks in step (NTP).
 */
export function staleRequestGuard({ trustedProxies, maxAgeSeconds, now }: { trustedProxies: string[]; maxAgeSeconds: number; now: () => number }): MiddlewareHandler {
  const proxies = parseNetworks(trustedProxies);
  return async function staleRequest(c, next) {
    const stamp = c.req.raw.headers.get('x-request-start');
    const peer = stamp && maxAgeSeconds > 0 && trustedProxies.length ? peerAddress(c) : null;
    if (stamp && peer && inList(proxies, peer)) {
      const m = /^t=(\d{10,16})$/.exec(stamp.trim());
      // seconds, milliseconds or microseconds since the epoch, by magnitude
      const ms = m ? (m[1]!.length >= 15 ? Number(m[1]) / 1000 : m[1]!.length >= 12 ? Number(m[1]) : Number(m[1]) * 1000) : NaN;
      const age = (now() - ms) / 1000;
      if (Number.isFinite(age) && age > maxAgeSeconds)
        throw new AppError(503, 'unavailable', `this request waited ${Math.round(age)} s before this replica could serve it (limit ${maxAgeSeconds} s, http.maxRequestAgeSeconds); its client has moved on: send it again`, { ageSeconds: Math.round(age) }, { 'retry-after': '1' });
    }
    await next();
  };
}
