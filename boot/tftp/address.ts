// Listen addresses and client addresses for both IP families, as pure functions (STYLE.md §2): the config schema,
// the socket layer (server.ts) and main's DHCPv6 cross-check all ask these.
//
// Dual stack is one socket per family (config `address: ['0.0.0.0', '::']`), never one IPv6 socket that also takes
// IPv4 as v4-mapped ::ffff:a.b.c.d. Why:
// - Whether '::' takes IPv4 too depends on the host's net.ipv6.bindv6only sysctl (Node only ever sets IPV6_V6ONLY
//   on, never off), so the same config would serve IPv4 on one host and not on the next.
// - A wildcard IPv6 socket that takes IPv4 holds the IPv4 port as well, so '0.0.0.0' and '::' together fail with
//   EADDRINUSE (measured, Node 20); and there is no way to serve a specific IPv4 address beside '::'.
// - A transfer socket of the request's own family, bound to the listening socket's address, is the IPv4 rule
//   (RFC 1350: the reply's source is the address the client sent to, from a new port) applied per family.
// So every IPv6 socket is opened ipv6Only, and a v4-mapped address can only reach us if someone changes that;
// clientAddress() still folds it, so logs name an IPv4 client one way whatever the socket.
import { isIP } from 'node:net';

export type Family = 4 | 6;

export interface ListenAddress {
  /** canonical text (RFC 5952 for IPv6: lower case, longest zero run compressed) */
  address: string;
  family: Family;
  /** 0.0.0.0 or :: — every address of its family; then the kernel picks a reply's source (see config.ts) */
  wildcard: boolean;
}

/** RFC 5952 form of an IP literal, via the WHATWG URL parser (which also rewrites embedded IPv4 as hex). */
function canonical(address: string, family: Family): string {
  if (family === 4) return new URL(`http://${address}/`).hostname;
  return new URL(`http://[${address}]/`).hostname.slice(1, -1);
}

/** The configured listen addresses, parsed (config.ts has already refused bad ones; a caller that skipped it is told why). */
export function listenAddresses(address: string | readonly string[]): ListenAddress[] {
  return (typeof address === 'string' ? [address] : address).map((text) => {
    const r = parseListenAddress(text);
    if (!r.ok) throw new Error(`TFTP listen address: ${r.reason}`);
    return r.value;
  });
}

/** Why `text` cannot be a TFTP listen address, or its canonical form. Errors name the problem and the fix. */
export function parseListenAddress(text: string): { ok: true; value: ListenAddress } | { ok: false; reason: string } {
  if (text.includes('%')) {
    return { ok: false, reason: `"${text}" has a zone id: not supported (a link-local address needs one); listen on '::' or on the interface's global or ULA address` };
  }
  const family = isIP(text);
  if (family === 0) {
    const hint = text.startsWith('[') ? ' (write it without brackets)' : text.includes('/') ? ' (an address, not a prefix)' : '';
    return { ok: false, reason: `"${text}" is not an IPv4 or IPv6 address${hint}: a listen address must be one, like 10.20.0.1, 0.0.0.0, fd5b::1 or ::` };
  }
  const address = canonical(text, family as Family);
  if (family === 6) {
    if (/^::ffff:[0-9a-f]{1,4}:[0-9a-f]{1,4}$/.test(address)) {
      return { ok: false, reason: `"${text}" is an IPv4 address mapped into IPv6: write the IPv4 address itself (IPv6 sockets here are IPv6-only)` };
    }
    if (/^fe[89ab][0-9a-f]:/.test(address)) {
      // the kernel refuses a link-local bind without a zone (EINVAL, measured) and we take no zones
      return { ok: false, reason: `"${text}" is link-local (fe80::/10), which needs a zone id: listen on '::' or on a global or ULA address` };
    }
    if (address.startsWith('ff')) return { ok: false, reason: `"${text}" is a multicast address: TFTP listens on a unicast address` };
  }
  return { ok: true, value: { address, family: family as Family, wildcard: address === '0.0.0.0' || address === '::' } };
}

/**
 * Problems with a whole list of listen addresses (sharing one port): duplicates, and a wildcard beside a specific
 * address of the same family, which the kernel refuses (EADDRINUSE) since the wildcard already holds that port.
 */
export function listenListProblems(list: readonly ListenAddress[]): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const a of list) {
    if (seen.has(a.address)) problems.push(`${a.address} is listed twice`);
    seen.add(a.address);
  }
  for (const family of [4, 6] as const) {
    const ofFamily = list.filter((a) => a.family === family);
    const wild = ofFamily.find((a) => a.wildcard);
    if (wild && ofFamily.length > 1 && new Set(ofFamily.map((a) => a.address)).size > 1) {
      problems.push(`${wild.address} already covers every IPv${family} address: list either it or specific IPv${family} addresses, not both`);
    }
  }
  return problems;
}

/** The client as logs should name it: a v4-mapped ::ffff:a.b.c.d is the IPv4 client a.b.c.d. */
export function clientAddress(address: string): string {
  const m = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  return m && isIP(m[1]!) === 4 ? m[1]! : address;
}

/** A transport address for logs: 10.0.0.5:1234, [fd5b::5]:1234 (RFC 5952 §6), the zone kept for a link-local one. */
export function peerLabel(address: string, port: number): string {
  const a = clientAddress(address);
  return isIP(a.split('%')[0]!) === 6 ? `[${a}]:${port}` : `${a}:${port}`;
}

/** Would a server listening on `list` receive a request sent to `host` (an IP literal)? */
export function listensOn(list: readonly ListenAddress[], host: string): boolean {
  const h = parseListenAddress(host);
  if (!h.ok) return false;
  return list.some((a) => a.family === h.value.family && (a.wildcard || a.address === h.value.address));
}
