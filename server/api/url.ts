import type { Context } from 'hono';
import type { Config } from '../config.ts';

/** The URL nodes use to reach us: configured, or the origin they used for this request. */
export function baseUrlOf(c: Context, config: Config): string {
  if (config.http.publicUrl) return config.http.publicUrl.replace(/\/+$/, '');
  return new URL(c.req.url).origin;
}
