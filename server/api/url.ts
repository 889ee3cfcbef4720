import type { Context } from 'hono';
import type { Config } from '../config.ts';
import { AppError } from '../errors.ts';

// what may appear in an origin we put into an iPXE script: host names, IPv4, and IPv6 literals in brackets
// (RFC 3986 §3.2.2); boot/ipxe/script.ts checks the whole URL again
const ORIGIN = /^https?:\/\/(\[[0-9A-Fa-f:.]+(%25[A-Za-z0-9._~-]+)?\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/;

/** The URL nodes use to reach us: configured, or the origin they used for this request (the Host header, which a
 * client chooses: one that cannot be put into a script is the client's 400, not our 500). */
export function baseUrlOf(c: Context, config: Config): string {
  if (config.http.publicUrl) return config.http.publicUrl.replace(/\/+$/, '');
  let origin: string;
  try {
    origin = new URL(c.req.url).origin;
  } catch {
    origin = '';
  }
  if (!ORIGIN.test(origin)) throw new AppError(400, 'bad_host', `the Host header does not name a usable origin (got ${JSON.stringify((c.req.header('host') ?? '').slice(0, 100))}); set http.publicUrl`);
  return origin;
}
