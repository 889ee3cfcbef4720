// The boot budget (issue 15 item 2): the counting itself with plain values, then the image routes on a real socket —
// a download the client abandons halfway gives its slot back — then /ipxe and register over budget through the app.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';
import { createBootBudget, type BootBudget } from './budget.ts';
import { createLocalStore } from './local.ts';
import { createBlobCache } from './cache.ts';
import { createImageServeApp } from './serve.ts';
import { blobFile, fixedCatalog, listenApp } from '../../test/fakes/images.ts';
import { until } from '../../test/harness/wait.ts';
import { createTestDb } from '../../test/fakes/db.ts';
import { bootToken, client, createTestApp, sampleFacts, testConfig } from '../../test/fakes/app.ts';
import type { DbHandle } from '../db/index.ts';

describe('boot budget: counting', () => {
  it('admits /ipxe until transfers plus reservations reach the limit; a reservation lapses or turns into a transfer', () => {
    let now = 0;
    const b = createBootBudget({ transfers: 2, registrations: 1, retrySeconds: 5, reserveMs: 10_000, now: () => now, random: () => 0.5 });
    expect([b.admitBoot(), b.admitBoot(), b.admitBoot()]).toEqual([true, true, false]);
    const release = b.transfer(); // takes the oldest reservation
    expect(b.stats()).toMatchObject({ transfers: 1, reserved: 1, refusedBoots: 1 });
    expect(b.admitBoot()).toBe(false);
    now = 10_001; // the other admitted node never asked for its kernel
    expect(b.admitBoot()).toBe(true);
    release();
    release(); // idempotent
    expect(b.stats().transfers).toBe(0);
  });

  it('registrations: a release per slot, null over budget; the wait is jittered in [base, 2 × base)', () => {
    const rs = [0, 0.5, 0.999];
    const b = createBootBudget({ transfers: 0, registrations: 1, retrySeconds: 4, random: () => rs.shift()! });
    const r = b.register();
    expect(r).toBeTypeOf('function');
    expect(b.register()).toBeNull();
    r!();
    expect(b.register()).toBeTypeOf('function');
    expect([b.retrySeconds(), b.retrySeconds(), b.retrySeconds()]).toEqual([4, 6, 7]);
    // transfers 0: no limit
    expect(Array.from({ length: 100 }, () => b.admitBoot()).every(Boolean)).toBe(true);
  });
});

describe('boot budget: image transfers on a real socket', () => {
  let tmp: string;
  let budget: BootBudget;
  let srv: Awaited<ReturnType<typeof listenApp>>;
  let blob: ReturnType<typeof blobFile>;
  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'bfbudget-'));
    const store = createLocalStore({ dir: join(tmp, 'store'), stagingDir: join(tmp, 'staging') });
    blob = blobFile(tmp, 'initrd', 32 * 1024 * 1024);
    await store.putFile(blob.digest, blob.path);
    // memoryBytes 0: the body is streamed from the cache file, as for an initrd bigger than the memory tier
    const cache = await createBlobCache({ dir: join(tmp, 'cache'), store, maxBytes: 256 * 1024 * 1024, corruptHoldMs: 1000, memoryBytes: 0 });
    budget = createBootBudget({ transfers: 4, registrations: 4, retrySeconds: 5 });
    srv = await listenApp(createImageServeApp({ cache, store, catalog: fixedCatalog({}), transfer: budget.transfer }).fetch);
  });
  afterAll(async () => {
    await srv?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('a finished download and an aborted one both give their slot back', async () => {
    // complete
    const full = await fetch(`${srv.url}/images/${blob.digest}`);
    expect((await full.arrayBuffer()).byteLength).toBe(blob.size);
    await until('the transfer slot to be released', () => budget.stats().transfers === 0, { limitMs: 10_000 });

    // aborted: read the first chunk, check the slot is held, then drop the connection
    const held = await new Promise<number>((resolve, reject) => {
      const req = http.get(`${srv.url}/images/${blob.digest}`, (res) => {
        res.once('data', () => {
          const during = budget.stats().transfers;
          req.destroy();
          resolve(during);
        });
      });
      req.on('error', (e) => (e.message === 'socket hang up' ? undefined : reject(e)));
    });
    expect(held).toBe(1);
    await until('the transfer slot to be released', () => budget.stats().transfers === 0, { limitMs: 10_000 });
  });

  it('HEAD and 304 take no slot', async () => {
    expect((await fetch(`${srv.url}/images/${blob.digest}`, { method: 'HEAD' })).status).toBe(200);
    expect((await fetch(`${srv.url}/images/${blob.digest}`, { headers: { 'if-none-match': `"${blob.digest}"` } })).status).toBe(304);
    expect(budget.stats().transfers).toBe(0);
  });
});

describe('boot budget: /ipxe and register over budget', () => {
  let db: DbHandle;
  afterAll(async () => db?.close());
  it('/ipxe answers a jittered sleep-and-chain script and opens no attempt; register answers 503 with Retry-After', async () => {
    db = await createTestDb();
    const t = createTestApp(db, { config: testConfig() });
    const budget = createBootBudget({ transfers: 1, registrations: 1, retrySeconds: 5, random: () => 0.6 });
    Object.assign(t.deps, { budget });
    const { createApp } = await import('../api/app.ts');
    const app = createApp(t.deps);
    const http = client(app);
    const U = '0b000000-0000-4000-8000-000000000001';
    const token = await bootToken(app, U); // admitted: holds the reservation
    const busy = await http.get('/ipxe/0b000000-0000-4000-8000-000000000002');
    expect(busy.status).toBe(200);
    expect(busy.headers.get('retry-after')).toBe('8');
    expect(busy.text).toBe(
      '#!ipxe\n# bootfarm: waiting\necho bootfarm: busy: many machines are booting; waiting for a turn\necho bootfarm: asking again in 8 s\nsleep 8\nchain --autofree http://10.0.0.1:8080/ipxe/0b000000-0000-4000-8000-000000000002\n',
    );
    expect(await t.nodes.attempts('0b000000-0000-4000-8000-000000000002')).toEqual([]);

    // a registration in progress holds the only slot: the next one is told to come back
    const hold = budget.register()!;
    const reg = await http.post('/api/v1/agent/register', { token, body: { facts: sampleFacts(U) } });
    expect(reg.status).toBe(503);
    expect(reg.headers.get('retry-after')).toBe('8');
    expect(reg.json.error).toMatchObject({ code: 'busy', details: { retryAfterSeconds: 8 } });
    hold();
    const ok = await http.post('/api/v1/agent/register', { token, body: { facts: sampleFacts(U) } });
    expect(ok.status).toBe(200);
    expect(budget.stats().registrations).toBe(0);
  });
});
