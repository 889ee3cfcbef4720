// http.bodyLimitBytes through a real node:http server (@hono/node-server), where the app's limit decides from the
// Content-Length header without building a web Request, and a chunked body is still counted as it is read.
// app.request() alone would not do: its requests are already web Requests.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createAdaptorServer } from '@hono/node-server';
import { request, type Server } from 'node:http';
import type { DbHandle } from '../db/index.ts';
import { createTestDb } from '../../test/fakes/db.ts';
import { createTestApp, testConfig, TOKENS } from '../../test/fakes/app.ts';

const LIMIT = 1024;
let db: DbHandle;
let server: Server;
let port: number;
beforeAll(async () => {
  db = await createTestDb();
  const t = createTestApp(db, { config: testConfig({ http: { bodyLimitBytes: LIMIT } }) });
  server = createAdaptorServer({ fetch: t.app.fetch }) as Server;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  port = (server.address() as { port: number }).port;
});
afterAll(async () => {
  server?.close();
  await db?.close();
});

/** chunked: no Content-Length, the body in `chunks` pieces (node:http sends Transfer-Encoding: chunked) */
function send(method: string, path: string, body?: string, { chunked = false } = {}): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { authorization: `Bearer ${TOKENS.admin}`, 'content-type': 'application/json' };
    if (body !== undefined && !chunked) headers['content-length'] = String(Buffer.byteLength(body));
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => {
        const text = Buffer.concat(parts).toString();
        resolve({ status: res.statusCode!, json: text.startsWith('{') ? JSON.parse(text) : text });
      });
    });
    req.on('error', reject);
    if (body !== undefined && chunked) for (let i = 0; i < body.length; i += 256) req.write(body.slice(i, i + 256));
    req.end(chunked ? undefined : body);
  });
}

const big = JSON.stringify({ uuids: ['x'.repeat(2 * LIMIT)] });
const small = JSON.stringify({ nope: true });

it.each([
  ['a declared Content-Length above the limit', big, false],
  ['a chunked body that grows past the limit', big, true],
] as const)('%s → 413 payload_too_large', async (_name, body, chunked) => {
  const r = await send('POST', '/api/v1/nodes/enroll', body, { chunked });
  expect(r.status).toBe(413);
  expect(r.json.error).toMatchObject({ code: 'payload_too_large', message: `request body exceeds ${LIMIT} bytes` });
});

it.each([
  ['with a Content-Length', false],
  ['chunked', true],
] as const)('a body under the limit reaches the route, %s (its validation answers, not the limit)', async (_name, chunked) => {
  const r = await send('POST', '/api/v1/nodes/enroll', small, { chunked });
  expect(r.status).toBe(400);
  expect(r.json.error.code).toBe('validation_failed');
});

it('a GET without a body passes', async () => {
  const r = await send('GET', '/healthz');
  expect(r.status).toBe(200);
  expect(r.json).toEqual({ ok: true });
});
