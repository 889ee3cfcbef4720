// Where boot and agent calls may come from. Debian's iPXE has no HTTPS and /ipxe/:uuid hands out a per-boot
// token, so anyone who can reach the boot routes and knows a UUID could take a node's token (and invalidate the
// real node's). On a site where the boot network is separate, list its subnets in boot.trustedNetworks and only
// those addresses get scripts and may act as agents. Empty (the default) trusts every source, as matchbox and
// smee do.
import { BlockList, isIP } from 'node:net';
import type { MiddlewareHandler } from 'hono';
import { getConnInfo } from '@hono/node-server/conninfo';
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

/** The peer's address, with IPv4-mapped IPv6 (::ffff:10.0.0.5) folded to IPv4; null when there is no socket.
 * Also "the node's own address" of a boot attempt (server/api/boot.ts, bmc-setup.ts). */
export function peerAddress(c: Parameters<MiddlewareHandler>[0]): string | null {
  try {
    const a = getConnInfo(c).remote.address;
    if (!a) return null;
    return a.startsWith('::ffff:') && isIP(a.slice(7)) === 4 ? a.slice(7) : a;
  } catch {
    return null;
  }
}

export function trustedNetworks(cidrs: string[]): MiddlewareHandler {
  const list = parseNetworks(cidrs);
  return async function onlyTrusted(c, next) {
    if (cidrs.length) {
      const addr = peerAddress(c);
      if (!addr || !list.check(addr, isIP(addr) === 4 ? 'ipv4' : 'ipv6')) {
        throw new AppError(403, 'forbidden', `boot and agent calls are not accepted from ${addr ?? 'an unknown address'} (boot.trustedNetworks)`);
      }
    }
    await next();
  };
}
