// IPv6 literals (RFC 3986 §3.2.2: `[fd00::1]:8080`) in publicUrl and in the Host header give working scripts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, testConfig } from '../fakes/app.ts';
import { createTestDb } from '../fakes/db.ts';
import type { DbHandle } from '../../server/db/index.ts';
import { createFullApp } from './full-app.ts';

const U = '66666666-0000-4000-8000-000000000006';
let db: DbHandle;
beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await db?.close();
});

describe('IPv6 literals', () => {
  it('publicUrl http://[fd00::1]:8080 is used as is in both scripts', async () => {
    const base = testConfig();
    const full = await createFullApp(db, { config: { ...base, http: { ...base.http, publicUrl: 'http://[fd00::1]:8080' } } });
    const http = client(full.app);
    const first = await http.get('/boot.ipxe');
    expect(first.status).toBe(200);
    expect(first.text).toContain('http://[fd00::1]:8080/ipxe/');
    await full.close();
  });

  it('with no publicUrl, a request with Host: [::1]:8080 gets URLs on [::1]:8080', async () => {
    const base = testConfig();
    const full = await createFullApp(db, { config: { ...base, http: { ...base.http, publicUrl: undefined } } });
    const first = await full.app.request('http://[::1]:8080/boot.ipxe', { headers: { host: '[::1]:8080' } });
    expect(first.status).toBe(200);
    expect(await first.text()).toContain('http://[::1]:8080/ipxe/');
    const node = await full.app.request(`http://[::1]:8080/ipxe/${U}`, { headers: { host: '[::1]:8080' } });
    const text = await node.text();
    expect(node.status, text).toBe(200);
    expect(text).toContain('#!ipxe');
    await full.close();
  });
});

describe('IPv6 in the stage-1 script', () => {
  it('publicUrl http://[fd00::1]:8080 reaches the kernel command line', async () => {
    const { createTestApp } = await import('../fakes/app.ts');
    const base = testConfig();
    const t = createTestApp(db, { config: { ...base, http: { ...base.http, publicUrl: 'http://[fd00::1]:8080' } } });
    const res = await client(t.app).get(`/ipxe/${U}`);
    expect(res.status, res.text).toBe(200);
    expect(res.text).toContain('bootfarm.server=http://[fd00::1]:8080');
    expect(res.text).toContain('http://[fd00::1]:8080/images/');
  });
});
