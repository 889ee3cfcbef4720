// The reproducers from issue 13 (item 4), each as it was measured, against the whole app in-process on PGlite.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, TOKENS } from '../fakes/app.ts';
import { createTestDb } from '../fakes/db.ts';
import type { DbHandle } from '../../server/db/index.ts';
import { createFullApp } from './full-app.ts';
import { tableFingerprint } from './fingerprint.ts';

const U = '13131313-0000-4000-8000-000000000004';
let db: DbHandle;
let full: Awaited<ReturnType<typeof createFullApp>>;
let http: ReturnType<typeof client>;

beforeAll(async () => {
  db = await createTestDb();
  full = await createFullApp(db);
  http = client(full.app);
});
afterAll(async () => {
  await full?.close();
  await db?.close();
});

async function unchanged<T>(f: () => T | Promise<T>): Promise<T> {
  const before = await tableFingerprint(db);
  const r = await f();
  expect(await tableFingerprint(db)).toEqual(before);
  return r;
}

describe('parser limits', () => {
  it('a YAML baseline of 1,000 nested [ is refused, and the process lives', async () => {
    const res = await unchanged(() => full.app.request('/api/v1/firmware/baselines', { method: 'POST', headers: { authorization: `Bearer ${TOKENS.admin}`, 'content-type': 'application/yaml' }, body: `a: ${'['.repeat(1000)}${']'.repeat(1000)}` }));
    expect(res.status).toBe(422);
    expect(await res.text()).toContain('nests deeper than 64 levels');
  });

  it('a 5,000-deep JSON body is a 400', async () => {
    const res = await unchanged(() => http.post('/api/v1/agent/register', { token: 'any-boot-token-0123456789', raw: `${'['.repeat(5000)}${']'.repeat(5000)}` }));
    expect(res.status).toBe(400);
    expect(res.json.error.code).toBe('too_deep');
  });
});

describe('NUL bytes and lone surrogates', () => {
  it('/ipxe/<uuid>?platform=<NUL> is a 400 naming the parameter and creates no node', async () => {
    const res = await unchanged(() => http.get(`/ipxe/${U}?platform=%00`));
    expect(res.status).toBe(400);
    expect(res.json.error.message).toBe('query parameter "platform" contains a NUL byte (U+0000)');
  });

  it('a lone surrogate in a JSON body names the field', async () => {
    const res = await unchanged(() => http.put(`/api/v1/nodes/${U}/bmc`, { token: TOKENS.admin, raw: '{"driver":"ipmi","address":"10.0.0.9","username":"x\\ud800","password":"p"}' }));
    expect(res.status).toBe(400);
    expect(res.json.error.message).toBe('body.username contains invalid UTF-16 (a lone surrogate)');
  });

  it('broken percent-encoding in a path is a 400', async () => {
    const res = await unchanged(() => http.get('/ipxe/%ED%A0%80'));
    expect(res.status).toBe(400);
    expect(res.json.error.message).toContain('path segment 2');
  });

  it('on an admin route, a caller without a token gets 401 before any validation', async () => {
    const res = await unchanged(() => http.get('/api/v1/images/%00'));
    expect(res.status).toBe(401);
    const authed = await http.get('/api/v1/images/%00', { token: TOKENS.viewer });
    expect(authed.status).toBe(400);
  });

  it('a NUL in a YAML baseline is refused with its field', async () => {
    const body = 'name: "a\\0b"\npolicy: audit\nselector: {}\ncomponents: []\n';
    const res = await unchanged(() => full.app.request('/api/v1/firmware/baselines', { method: 'POST', headers: { authorization: `Bearer ${TOKENS.admin}`, 'content-type': 'application/yaml' }, body }));
    expect(res.status).toBe(422);
    expect(await res.text()).toContain('NUL');
  });
});

describe('one transaction per request', () => {
  it('enrolling a BMC for an unknown node is one write: a BMC the database refuses leaves no node behind', async () => {
    // the edge refuses NUL long before this; call the store directly so the database itself is what fails
    await unchanged(async () => {
      await expect(full.bmcs.set(U, { driver: 'ipmi', address: '10.0.0.9\0', username: 'u', password: 'p' }, 'test', { enroll: 'enrolled with its BMC' })).rejects.toThrow();
    });
    expect(await full.nodes.get(U)).toBeNull();
  });
  it('and creates the node with its BMC when it can', async () => {
    const res = await http.put(`/api/v1/nodes/${U}/bmc`, { token: TOKENS.admin, body: { driver: 'ipmi', address: '10.0.0.9', username: 'u', password: 'p' } });
    expect(res.status).toBe(200);
    expect((await http.get(`/api/v1/nodes/${U}`, { token: TOKENS.viewer })).json.node.state).toBe('discovered');
  });
});

describe('found by the hostile-input suite', () => {
  it('a YAML alias to no anchor (`a: *b`) is a 422, not a 500', async () => {
    const res = await unchanged(() => full.app.request('/api/v1/firmware/baselines', { method: 'POST', headers: { authorization: `Bearer ${TOKENS.admin}`, 'content-type': 'application/yaml' }, body: 'a: *b' }));
    expect(res.status).toBe(422);
    expect(await res.text()).toMatch(/alias/i);
  });
});
