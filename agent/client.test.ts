import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import { AgentApiError, AgentNetworkError, AgentResponseError, createAgentClient, isRetryable } from './client.ts';
import { backoffDelay, retry } from './retry.ts';
import { freePort } from '../test/support/agent/test-server.ts';

const UUID = '4c4c4544-0042-3510-8052-b4c04f4e4d32';

describe('agent client over real HTTP', () => {
  let server: ServerType;
  let url: string;
  const seen: Array<{ auth?: string; body?: unknown }> = [];
  beforeAll(async () => {
    const app = new Hono();
    app.post('/api/v1/agent/register', async (c) => {
      seen.push({ auth: c.req.header('authorization'), body: await c.req.json() });
      return c.json({ error: { code: 'invalid_request', message: 'facts.system.uuid: required', details: [{ path: ['facts'] }] } }, 400);
    });
    app.get(`/api/v1/agent/${UUID}/profile`, (c) => c.json({ error: { code: 'image_unavailable', message: 'nothing published' } }, 503, { 'retry-after': '30' }));
    app.get(`/api/v1/agent/${UUID}/detail`, (c) => c.json({ uuid: UUID, hostname: 42 }));
    app.post(`/api/v1/agent/${UUID}/events`, async (c) => {
      seen.push({ body: await c.req.json() });
      return c.json({ accepted: 1 }, 202);
    });
    app.post(`/api/v1/agent/${UUID}/heartbeat`, (c) => c.text('upstream exploded', 502));
    // a captive proxy's login page where the server should be: 200, not JSON
    app.get(`/api/v1/agent/${UUID}/bmc-setup`, (c) => c.html('<html>please log in</html>'));
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    await new Promise<void>((r) => {
      server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port }, () => r());
    });
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const client = () => createAgentClient({ server: url + '/', token: 'tkn' });

  it('sends the bearer token and turns an error body into AgentApiError (not retryable for 4xx)', async () => {
    const err = await client()
      .register({ facts: { system: { uuid: UUID }, nics: [] }, failures: [] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentApiError);
    expect(err).toMatchObject({ status: 400, code: 'invalid_request', serverMessage: 'facts.system.uuid: required', details: [{ path: ['facts'] }] });
    expect(isRetryable(err)).toBe(false);
    expect(seen[0]?.auth).toBe('Bearer tkn');
  });

  it('marks 503 retryable and keeps Retry-After', async () => {
    const err = (await client().profile(UUID).catch((e: unknown) => e)) as AgentApiError;
    expect([err.status, err.code, err.retryable, err.retryAfterSeconds]).toEqual([503, 'image_unavailable', true, 30]);
  });

  it('explains a non-JSON error body by its text', async () => {
    const err = (await client().heartbeat(UUID, {}).catch((e: unknown) => e)) as AgentApiError;
    expect(err.message).toMatch(/502 http_error: upstream exploded/);
  });

  it('rejects a 2xx body that does not match the contract', async () => {
    const err = await client().detail(UUID).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentResponseError);
    expect((err as Error).message).toMatch(/hostname/);
  });

  it('rejects a 2xx body that is not JSON at all, as a body the contract does not match', async () => {
    const err = await client().bmcSetup(UUID).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentResponseError);
    expect((err as Error).message).toMatch(/^GET http:\/\/127\.0\.0\.1:\d+\/api\/v1\/agent\/[0-9a-f-]+\/bmc-setup: unexpected response: body: /);
  });

  it('sends one event bare and several wrapped in {events}', async () => {
    seen.length = 0;
    await client().events(UUID, [{ phase: 'a-b' }]);
    await client().events(UUID, [{ phase: 'a-b' }, { phase: 'c-d' }]);
    expect(seen.map((s) => s.body)).toEqual([{ phase: 'a-b' }, { events: [{ phase: 'a-b' }, { phase: 'c-d' }] }]);
  });

  it('turns a refused connection into a retryable AgentNetworkError', async () => {
    const dead = createAgentClient({ server: `http://127.0.0.1:${await freePort()}`, token: 't' });
    const err = await dead.profile(UUID).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentNetworkError);
    expect((err as Error).message).toMatch(/ECONNREFUSED/);
    expect(isRetryable(err)).toBe(true);
  });
});

describe('retry', () => {
  it('full jitter stays within [0, min(cap, base·2^n))', () => {
    for (let n = 0; n < 12; n++) {
      expect(backoffDelay(n, { baseMs: 100, capMs: 5000, random: () => 0 })).toBe(0);
      expect(backoffDelay(n, { baseMs: 100, capMs: 5000, random: () => 0.999999 })).toBe(Math.min(5000, 100 * 2 ** n) - 1);
    }
  });
  it('gives up at once on a non-retryable error and after `attempts` on retryable ones', async () => {
    const sleeps: number[] = [];
    const sleep = async (ms: number) => void sleeps.push(ms);
    let n = 0;
    await expect(retry(async () => (n++, Promise.reject(new Error('plain'))), { sleep })).rejects.toThrow('plain');
    expect(n).toBe(1);
    n = 0;
    const boom = Object.assign(new Error('busy'), { retryable: true });
    await expect(retry(async () => (n++, Promise.reject(boom)), { sleep, attempts: 4, random: () => 0.5 })).rejects.toThrow('busy');
    expect(n).toBe(4);
    expect(sleeps).toEqual([250, 500, 1000]);
  });
  it('waits at least Retry-After (capped)', async () => {
    const sleeps: number[] = [];
    const e = Object.assign(new Error('503'), { retryable: true, retryAfterSeconds: 30 });
    let n = 0;
    await retry(async () => (n++ === 0 ? Promise.reject(e) : 'ok'), { sleep: async (ms) => void sleeps.push(ms), capMs: 10_000, random: () => 0 });
    expect(sleeps).toEqual([10_000]);
  });
});
