// A fetch for simulated nodes: plain node:http from the node's own source address (its DHCP lease), so the load
// balancer, the trusted-proxy logic and the per-address rate limits see one machine per node, as with real ones.
// Returns a WHATWG Response, so it plugs into the real agent client (agent/client.ts takes a `fetch`).
import { request, Agent } from 'node:http';

export type SimFetch = (input: string, init?: RequestInit) => Promise<Response>;

export interface SimFetchOptions {
  /** the node's leased address; undefined: the kernel picks */
  localAddress?: string;
  /** per-request budget when the caller gives no signal */
  timeoutMs?: number;
}

/** GET that counts the body's bytes and keeps none of them: a storm of 1,000 nodes would otherwise hold
 * 150 MB per node in memory. `onBytes` hears every chunk (the storm's bytes-over-time). */
export type SimDownload = (url: string, onBytes?: (n: number) => void) => Promise<{ status: number; bytes: number }>;

/** One keep-alive connection pool per node, like an agent process's own. */
export function createSimFetch({ localAddress, timeoutMs = 30_000 }: SimFetchOptions = {}): SimFetch & { close(): void; download: SimDownload } {
  const agent = new Agent({ keepAlive: true, maxSockets: 2, ...(localAddress ? { localAddress } : {}) });
  const f = (input: string, init: RequestInit = {}) =>
    new Promise<Response>((resolve, reject) => {
      const url = new URL(input);
      const headers: Record<string, string> = {};
      new Headers(init.headers).forEach((v, k) => (headers[k] = v));
      const body = typeof init.body === 'string' ? init.body : undefined;
      if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
      const req = request({ agent, host: url.hostname, port: url.port || 80, path: url.pathname + url.search, method: init.method ?? 'GET', headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('error', reject);
        res.on('end', () => {
          const h = new Headers();
          for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) h.set(k, Array.isArray(v) ? v.join(', ') : v);
          const status = res.statusCode ?? 0;
          const nullBody = status === 204 || status === 304 || (init.method ?? 'GET') === 'HEAD';
          resolve(new Response(nullBody ? null : Buffer.concat(chunks), { status, statusText: res.statusMessage, headers: h }));
        });
      });
      const timer = setTimeout(() => req.destroy(new Error(`timeout after ${timeoutMs} ms`)), timeoutMs);
      req.on('close', () => clearTimeout(timer));
      req.on('error', (e) => reject(new TypeError('fetch failed', { cause: e })));
      init.signal?.addEventListener('abort', () => req.destroy(new Error('aborted')), { once: true });
      req.end(body);
    });
  const download: SimDownload = (input, onBytes) =>
    new Promise((resolve, reject) => {
      const url = new URL(input);
      let bytes = 0;
      // an image download has no overall deadline (a slow uplink is not an error): only a stall of timeoutMs is
      const req = request({ agent, host: url.hostname, port: url.port || 80, path: url.pathname + url.search, method: 'GET', timeout: timeoutMs }, (res) => {
        res.on('data', (d: Buffer) => {
          bytes += d.length;
          onBytes?.(d.length);
        });
        res.on('error', reject);
        res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes }));
      });
      req.on('timeout', () => req.destroy(new Error(`stalled for ${timeoutMs} ms`)));
      req.on('error', (e) => reject(new TypeError('fetch failed', { cause: e })));
      req.end();
    });
  return Object.assign(f, { close: () => agent.destroy(), download });
}
