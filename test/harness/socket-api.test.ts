// The e2e racks' admin API client (test/e2e/services.ts socketApi) must answer every call: a response whose
// connection closes before its end rejects with a reason, instead of leaving a rack test waiting on it.
import { createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { socketApi } from '../e2e/services.ts';

describe('socketApi (the e2e racks’ admin API client over a unix socket)', () => {
  let dir: string;
  let server: Server;
  const sockets = new Set<Socket>();
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bf-socketapi-'));
    server = createServer((c) => {
      sockets.add(c);
      c.once('data', (d) => {
        const path = d.toString().split(' ')[1];
        if (path === '/whole') c.end('HTTP/1.1 200 OK\r\ncontent-length: 11\r\nconnection: close\r\n\r\n{"ok":true}');
        // headers, half of the promised body, then the connection goes away (a replica killed mid-answer)
        else if (path === '/cut') c.write('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{"nodes":[', () => c.destroy());
      });
    });
    await new Promise<void>((r) => server.listen(join(dir, 'api.sock'), r));
  });
  afterAll(() => {
    for (const s of sockets) s.destroy();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('resolves a complete answer', async () => {
    const api = socketApi(join(dir, 'api.sock'), 't');
    expect(await api.get('/whole')).toEqual({ ok: true });
  });

  it('rejects, naming the call, when the connection closes before the end of the answer', async () => {
    const api = socketApi(join(dir, 'api.sock'), 't');
    await expect(api.raw('GET', '/cut')).rejects.toThrow(/GET \/cut|aborted|closed before the end/);
  });
});
