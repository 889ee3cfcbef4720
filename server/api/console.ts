// A node's serial console over HTTP (issue 16 item 4):
//   GET /api/v1/nodes/:uuid/console?bytes=N&follow=1   (viewer)
// text/plain: the last N bytes the node printed (default 64 KiB, at most the per-node budget the store keeps).
// With follow=1 the response stays open and carries new output as it is stored (chunked text, like `tail -f`),
// until the client goes away or followSeconds pass (a client that wants more asks again).
//
// Follow reads the database, not the capturing process: the leader captures (fleet/console.ts) but any replica
// behind the load balancer serves the request, and the store is what they share. It polls every pollMs for
// chunks after the last one sent (one indexed query: console_chunks_node_idx).
import { Hono } from 'hono';
import { streamText } from 'hono/streaming';
import { z } from 'zod';
import { SmbiosUuid } from '../contract/common.ts';
import type { ConsoleStore } from '../store/console.ts';
import type { NodeStore } from '../store/nodes.ts';
import type { Clock } from '../clock.ts';
import type { Mount, RequireRole } from './app.ts';
import type { RouteDoc } from './openapi.ts';
import { parseWith } from './validate.ts';

export const CONSOLE_ROUTES: RouteDoc[] = [
  { method: 'get', path: '/api/v1/nodes/{uuid}/console', summary: "The node's serial console as captured over IPMI SOL: the last `bytes` bytes (text/plain); follow=1 keeps the response open and streams new output", tag: 'nodes', auth: 'viewer' },
];

export const ConsoleQuery = z.strictObject({
  bytes: z.coerce.number().int().min(1).max(64 * 1024 * 1024).optional(),
  follow: z.enum(['0', '1', 'true', 'false']).optional(),
});

export interface ConsoleMountDeps {
  nodes: Pick<NodeStore, 'require'>;
  consoles: Pick<ConsoleStore, 'tail' | 'since' | 'maxBytes'>;
  clock: Clock;
  pollMs?: number;
  followSeconds?: number;
}

export function consoleMount({ nodes, consoles, pollMs = 500, followSeconds = 3600 }: ConsoleMountDeps) {
  return (requireRole: RequireRole): Mount => {
    const app = new Hono();
    app.get('/api/v1/nodes/:uuid/console', requireRole('viewer'), async (c) => {
      const uuid = parseWith(SmbiosUuid, c.req.param('uuid'));
      const q = parseWith(ConsoleQuery, c.req.query());
      await nodes.require(uuid);
      const tail = await consoles.tail(uuid, { bytes: Math.min(q.bytes ?? 64 * 1024, consoles.maxBytes) });
      const headers = { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', 'x-console-boot': tail.bootAt?.toISOString() ?? '' };
      if (q.follow !== '1' && q.follow !== 'true') return c.body(tail.text, 200, headers);
      for (const [k, v] of Object.entries(headers)) c.header(k, v);
      // no proxy buffering: a follower wants each line when it comes (nginx honours this header)
      c.header('x-accel-buffering', 'no');
      return streamText(c, async (stream) => {
        let closed = false;
        stream.onAbort(() => {
          closed = true;
        });
        await stream.write(tail.text);
        let last = tail.lastId;
        const until = Date.now() + followSeconds * 1000;
        while (!closed && Date.now() < until) {
          await stream.sleep(pollMs);
          for (const chunk of await consoles.since(uuid, last)) {
            await stream.write(chunk.data);
            last = chunk.id;
          }
        }
      });
    });
    return { at: '/', app, docs: CONSOLE_ROUTES };
  };
}
