// Boot and agent routes restricted to the boot network, over real HTTP (the peer address comes from the socket).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb } from '../../test/fakes/db.ts';
import { bootNetworkConfig, createTestApp, loopbackServers, TOKENS } from '../../test/fakes/app.ts';
import type { DbHandle } from '../db/index.ts';
import { parseConfig, type Config } from '../config.ts';
import { FakeClock } from '../clock.ts';
import { boundaryWarnings, clientAddressResolver } from './trusted.ts';
import { Hono } from 'hono';

const U = '12121212-0000-4000-8000-000000000001';
let db: DbHandle;
const servers = loopbackServers();
afterAll(async () => {
  servers.close();
  await db?.close();
});

const serveWith = (trustedNetworks: string[], { trustedProxies = [] as string[], rateLimit = undefined as Config['boot']['rateLimit'] | undefined, clock = new FakeClock() } = {}) =>
  servers.listen(createTestApp(db, { clock, config: bootNetworkConfig({ trustedNetworks, trustedProxies, rateLimit }) }).app.fetch);

beforeAll(async () => {
  db = await createTestDb();
});

describe('boot.trustedNetworks', () => {
  it('refuses scripts and agent calls from outside the boot network, and nothing else', async () => {
    const url = await serveWith(['10.20.0.0/24', 'fd00::/64']);
    const script = await fetch(`${url}/ipxe/${U}`);
    expect(script.status).toBe(403);
    expect(((await script.json()) as any).error.message).toContain('not accepted from 127.0.0.1');
    expect((await fetch(`${url}/boot.ipxe`)).status).toBe(403);
    expect((await fetch(`${url}/api/v1/agent/register`, { method: 'POST', body: '{}' })).status).toBe(403);
    // the refused request did not enrol the node
    const nodes = await fetch(`${url}/api/v1/nodes`, { headers: { authorization: `Bearer ${TOKENS.viewer}` } });
    expect(nodes.status).toBe(200);
    expect(((await nodes.json()) as any).nodes).toEqual([]);
  });

  it('serves the boot network', async () => {
    const url = await serveWith(['127.0.0.0/8']);
    const script = await fetch(`${url}/ipxe/${U}`);
    expect(script.status).toBe(200);
    expect((await script.text()).startsWith('#!ipxe\n')).toBe(true);
  });

  it('rejects a malformed network at configuration time', () => {
    expect(() => parseConfig({ boot: { trustedNetworks: ['10.0.0.0/33'] } })).toThrow(/boot\.trustedNetworks\.0: must be an address or CIDR/);
    expect(() => parseConfig({ boot: { trustedNetworks: ['999.1.1.1'] } })).toThrow(/must be an address or CIDR/);
  });
});

describe('behind a load balancer (http.trustedProxies)', () => {
  it('believes X-Forwarded-For only from a configured proxy, read from the right', async () => {
    const viaProxy = await serveWith(['10.20.0.0/24'], { trustedProxies: ['127.0.0.1'] });
    const get = (url: string, xff?: string) => fetch(`${url}/ipxe/${U}`, { headers: xff ? { 'x-forwarded-for': xff } : {} });
    expect((await get(viaProxy, '10.20.0.5')).status).toBe(200);
    // the client wrote the left entry itself; the proxy appended the address it really saw
    const spoofed = await get(viaProxy, '10.20.0.5, 192.0.2.7');
    expect(spoofed.status).toBe(403);
    expect(((await spoofed.json()) as any).error.message).toContain('not accepted from 192.0.2.7');
    // a chain of proxies: each trusted hop is skipped
    const twoHops = await serveWith(['10.20.0.0/24'], { trustedProxies: ['127.0.0.1', '172.16.0.0/12'] });
    expect((await get(twoHops, '10.20.0.9, 172.16.3.4')).status).toBe(200);
    expect((await get(twoHops, 'garbage, 172.16.3.4')).status).toBe(403);
    // agent calls go through the same check
    const agent = await fetch(`${twoHops}/api/v1/agent/register`, { method: 'POST', headers: { 'x-forwarded-for': '192.0.2.1, 172.16.3.4' }, body: '{}' });
    expect(agent.status).toBe(403);
    expect(((await agent.json()) as any).error.message).toContain('not accepted from 192.0.2.1');
    const agentOk = await fetch(`${twoHops}/api/v1/agent/register`, { method: 'POST', headers: { 'x-forwarded-for': '10.20.0.9, 172.16.3.4' }, body: '{}' });
    expect(agentOk.status).toBe(401);
    // without trusted proxies the header is ignored: the peer (127.0.0.1) is outside the boot network
    const direct = await serveWith(['10.20.0.0/24']);
    expect((await get(direct, '10.20.0.5')).status).toBe(403);
  });
});

describe('per-source rate limits (boot.rateLimit)', () => {
  it('over the limit, /ipxe answers a script that waits and retries, and writes nothing', async () => {
    const clock = new FakeClock();
    const url = await serveWith([], { clock, rateLimit: { ipxe: { perMinute: 60, burst: 3 }, agent: { perMinute: 60, burst: 2 }, maxSources: 100 } });
    for (let i = 0; i < 3; i++) expect(await (await fetch(`${url}/ipxe/${U}`)).text()).toContain('bootfarm.token=');
    const events = async () => ((await (await fetch(`${url}/api/v1/nodes/${U}/events`, { headers: { authorization: `Bearer ${TOKENS.viewer}` } })).json()) as any).events.length;
    const before = await events();
    const limited = await fetch(`${url}/ipxe/${U}`);
    expect(limited.status).toBe(200);
    expect(limited.headers.get('retry-after')).toBe('1');
    const script = await limited.text();
    expect(script).toMatch(/^#!ipxe\n/);
    expect(script).toContain(`sleep 1\nchain --autofree ${url}/boot.ipxe`);
    expect(script).not.toContain('bootfarm.token=');
    expect(await events()).toBe(before);
    // one second later the bucket has one token again
    clock.advance(1000);
    expect(await (await fetch(`${url}/ipxe/${U}`)).text()).toContain('bootfarm.token=');
    expect(await (await fetch(`${url}/ipxe/${U}`)).text()).not.toContain('bootfarm.token=');
  });

  it('agent calls over the limit get 429 with Retry-After', async () => {
    const url = await serveWith([], { rateLimit: { ipxe: { perMinute: 0, burst: 1 }, agent: { perMinute: 30, burst: 2 }, maxSources: 100 } });
    // a token is needed to get past the admin gate's 401; whether it is valid is the route's business
    const call = () => fetch(`${url}/api/v1/agent/${U}/detail`, { headers: { authorization: 'Bearer not-a-real-token-0123' } });
    expect((await call()).status).toBe(403);
    expect((await call()).status).toBe(403);
    const limited = await call();
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('2');
    expect(((await limited.json()) as any).error.code).toBe('rate_limited');
    // perMinute 0: /ipxe is not limited
    for (let i = 0; i < 5; i++) expect((await fetch(`${url}/boot.ipxe`)).status).toBe(200);
  });
});

describe('start-up warning', () => {
  it('warns when the boot network is open, not when it is set', () => {
    expect(boundaryWarnings(parseConfig({})).join('\n')).toContain('boot.trustedNetworks is empty');
    expect(boundaryWarnings(parseConfig({ boot: { trustedNetworks: ['10.20.0.0/24'] } }))).toEqual([]);
  });
});

describe('a load balancer left out of http.trustedProxies', () => {
  it('is reported once per peer when it forwards, and its header is not believed', async () => {
    const reported: string[] = [];
    const resolve = clientAddressResolver([], { onUntrustedForward: (p) => reported.push(p) });
    const app = new Hono().get('/', (c) => c.text(String(resolve(c))));
    const url = `${await servers.listen(app.fetch)}/`;
    expect(await (await fetch(url)).text()).toBe('127.0.0.1');
    expect(reported).toEqual([]);
    for (let i = 0; i < 3; i++) expect(await (await fetch(url, { headers: { 'x-forwarded-for': `10.9.0.${i}` } })).text()).toBe('127.0.0.1');
    expect(reported).toEqual(['127.0.0.1']);
  });
});

describe('http.maxRequestAgeSeconds: a node request that waited in a paused replica does nothing (issue 14)', () => {
  const V = '12121212-0000-4000-8000-0000000000a1';
  it('a stamp older than the limit from a trusted proxy gets a 503 and opens no boot attempt; fresh, unstamped or untrusted stamps are served', async () => {
    const clock = new FakeClock('2026-12-02T12:00:00Z');
    const url = await serveWith([], { trustedProxies: ['127.0.0.1/32'], clock });
    const stamp = (agoMs: number) => ({ 'x-request-start': `t=${clock.now().getTime() - agoMs}` });
    const stale = await fetch(`${url}/ipxe/${V}`, { headers: stamp(25_000) });
    expect(stale.status).toBe(503);
    expect(stale.headers.get('retry-after')).toBe('1');
    expect(await stale.text()).toMatch(/waited 25 s .*limit 20 s/);
    // nothing happened: the node was not even enrolled
    const nodes = await fetch(`${url}/api/v1/nodes/${V}`, { headers: { authorization: `Bearer ${TOKENS.viewer}` } });
    expect(nodes.status).toBe(404);
    // microseconds work too (HAProxy %Ts%us style)
    expect((await fetch(`${url}/ipxe/${V}`, { headers: { 'x-request-start': `t=${(clock.now().getTime() - 30_000) * 1000}` } })).status).toBe(503);
    expect((await fetch(`${url}/api/v1/agent/register`, { method: 'POST', headers: { ...stamp(21_000), 'content-type': 'application/json' }, body: '{}' })).status).toBe(503);
    // fresh: served
    const fresh = await fetch(`${url}/ipxe/${V}`, { headers: stamp(2_000) });
    expect(fresh.status).toBe(200);
    expect(await fresh.text()).toMatch(/^#!ipxe/);
  });

  it('ignores the stamp from a peer that is not a trusted proxy (anyone could have requests refused)', async () => {
    const clock = new FakeClock('2026-12-02T12:00:00Z');
    const url = await serveWith([], { trustedProxies: ['10.99.0.1/32'], clock });
    const r = await fetch(`${url}/ipxe/${V}`, { headers: { 'x-request-start': `t=${clock.now().getTime() - 600_000}` } });
    expect(r.status).toBe(200);
  });
});
