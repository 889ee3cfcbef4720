// API tokens in the database (issue 14 item 1) on PGlite: create/list/revoke through the API and the CLI, the
// audit rows, expiry, lazy last_used_at, a revoked token's dashboard sessions, and the bootstrap admin token two
// "replicas" (two apps, two data directories, one database) agree on. The same across real replica processes on
// PostgreSQL: test/ha/shared-state.pg.test.ts.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, createTestApp, TOKENS } from '../../test/fakes/app.ts';
import { createTestDb } from '../../test/fakes/db.ts';
import { bootstrapAdminToken } from '../admin-token.ts';
import { runTokens } from '../cli/tokens.ts';
import { FakeClock } from '../clock.ts';
import type { DbHandle } from '../db/index.ts';
import { apiTokens, uiSessions } from '../db/schema/index.ts';
import { silentLogger } from '../log.ts';
import { hashToken } from '../secrets.ts';
import { createAuditStore } from '../store/audit.ts';
import { createTokenStore } from '../store/tokens.ts';
import { UI_COOKIE } from './auth.ts';

let db: DbHandle;
const clock = new FakeClock('2026-12-01T00:00:00Z');
let t: ReturnType<typeof createTestApp>;
beforeAll(async () => {
  db = await createTestDb();
  t = createTestApp(db, { clock });
}, 60_000);
afterAll(async () => {
  await db.close();
});

const api = () => client(t.app);

describe('API tokens', () => {
  it('an admin creates a token (shown once), it works with its role, the list never shows it, both audited', async () => {
    const res = await api().post('/api/v1/tokens', { token: TOKENS.admin, body: { name: 'ci', role: 'operator' } });
    expect(res.status).toBe(201);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const { token, id } = res.json;
    expect(token).toMatch(/^bft_[A-Za-z0-9_-]{43}$/);
    expect(res.json).toMatchObject({ name: 'ci', role: 'operator', createdBy: 'api:admin', revokedAt: null, expiresAt: null, lastUsedAt: null });
    // stored as sha256 only
    const [row] = await db.db.select().from(apiTokens).where(eq(apiTokens.id, id));
    expect(row!.tokenHash).toBe(hashToken(token));
    expect(JSON.stringify(await db.db.select().from(apiTokens))).not.toContain(token);
    // it authenticates with its role: operator may act, may not manage tokens
    expect((await api().get('/api/v1/nodes', { token })).status).toBe(200);
    expect((await api().get('/api/v1/tokens', { token })).status).toBe(403);
    const list = await api().get('/api/v1/tokens', { token: TOKENS.admin });
    expect(list.status).toBe(200);
    expect(list.text).not.toContain(token);
    expect(list.text).not.toContain(hashToken(token));
    expect(list.json.tokens.find((x: { id: number }) => x.id === id)).toMatchObject({ name: 'ci', role: 'operator' });
    expect(list.json.configured).toEqual(expect.arrayContaining([{ name: 'admin', role: 'admin', source: 'configuration' }]));
    const [entry] = await createAuditStore(db.db, { clock }).list({ target: `token:${id}` });
    expect(entry).toMatchObject({ actor: 'api:admin', action: 'token.create' });
    expect(JSON.stringify(entry)).not.toContain(token);
  });

  it('revoking ends the token and its dashboard sessions at the next request; audited; twice is a 409', async () => {
    const { json } = await api().post('/api/v1/tokens', { token: TOKENS.admin, body: { name: 'alice', role: 'viewer' } });
    const login = await t.app.request('http://bootfarm.test/ui/login', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: json.token }).toString() });
    const sid = /bootfarm_session=([^;]+)/.exec(login.headers.get('set-cookie') ?? '')![1]!;
    const cookie = { headers: { cookie: `${UI_COOKIE}=${sid}` } };
    expect((await t.app.request('/api/v1/nodes', cookie)).status).toBe(200);
    const del = await t.app.request(`/api/v1/tokens/${json.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${TOKENS.admin}` } });
    expect(del.status).toBe(200);
    expect(await del.json()).toMatchObject({ id: json.id, revokedBy: 'api:admin', revokedAt: clock.now().toISOString() });
    const bearer = await api().get('/api/v1/nodes', { token: json.token });
    expect(bearer.status).toBe(401);
    expect(bearer.json.error.message).toMatch(/revoked/);
    expect((await t.app.request('/api/v1/nodes', cookie)).status).toBe(401);
    expect(await db.db.select().from(uiSessions).where(eq(uiSessions.credentialHash, hashToken(json.token)))).toEqual([]);
    const again = await t.app.request(`/api/v1/tokens/${json.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${TOKENS.admin}` } });
    expect(again.status).toBe(409);
    const actions = (await createAuditStore(db.db, { clock }).list({ target: `token:${json.id}` })).map((a) => a.action);
    expect(actions).toEqual(['token.revoke', 'token.create']);
  });

  it('hostile and wrong input: 400 naming the field, 404 for an unknown id, nothing written', async () => {
    const before = await db.db.select().from(apiTokens);
    for (const body of [{ name: '', role: 'admin' }, { name: 'x', role: 'root' }, { name: 'x', role: 'admin', expiresInSeconds: 5 }, { name: 'x'.repeat(65), role: 'viewer' }, { name: 'x', role: 'viewer', token: 'mine' }, { name: 'a\u0000b', role: 'viewer' }]) {
      const r = await api().post('/api/v1/tokens', { token: TOKENS.admin, body });
      expect(r.status, JSON.stringify(body)).toBe(400);
    }
    const del = (id: string) => t.app.request(`/api/v1/tokens/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${TOKENS.admin}` } });
    expect((await del('0')).status).toBe(400);
    expect((await del('abc')).status).toBe(400);
    expect((await del('99999999999')).status).toBe(400);
    expect((await del('424242')).status).toBe(404);
    expect((await t.app.request('/api/v1/tokens/1', { method: 'DELETE', headers: { authorization: `Bearer ${TOKENS.operator}` } })).status).toBe(403);
    expect(await db.db.select().from(apiTokens)).toEqual(before);
  });

  it('expires at expiresAt; last_used_at is written at most once a minute', async () => {
    const { json } = await api().post('/api/v1/tokens', { token: TOKENS.admin, body: { name: 'short', role: 'viewer', expiresInSeconds: 3600 } });
    const lastUsed = async () => (await db.db.select().from(apiTokens).where(eq(apiTokens.id, json.id)))[0]!.lastUsedAt;
    expect((await api().get('/api/v1/nodes', { token: json.token })).status).toBe(200);
    const first = await lastUsed();
    expect(first).toEqual(clock.now());
    clock.advance(30_000);
    expect((await api().get('/api/v1/nodes', { token: json.token })).status).toBe(200);
    expect(await lastUsed()).toEqual(first); // within the minute: no write
    clock.advance(31_000);
    expect((await api().get('/api/v1/nodes', { token: json.token })).status).toBe(200);
    expect(await lastUsed()).toEqual(clock.now());
    clock.advance(3600_000);
    expect((await api().get('/api/v1/nodes', { token: json.token })).status).toBe(401);
  });

  it('bootfarm tokens create | list | revoke', async () => {
    const fetchImpl = ((u: string, init: RequestInit) => t.app.request(new URL(u).pathname, init)) as typeof fetch;
    const lines: string[] = [];
    const o = { out: (l: string) => lines.push(l), fetchImpl, globals: { url: 'http://in-process', token: TOKENS.admin } };
    await runTokens(['create', '--name', 'grafana', '--role', 'viewer', '--expires-in', '30d'], o);
    const token = lines.pop()!;
    expect(token).toMatch(/^bft_/);
    expect((await api().get('/api/v1/nodes', { token })).status).toBe(200);
    await runTokens(['list'], o);
    const row = lines.find((l) => /grafana/.test(l))!;
    expect(row).toMatch(/^\d+\s+grafana\s+viewer\s+valid/);
    expect(lines.join('\n')).not.toContain(token);
    const id = row.split(/\s+/)[0]!;
    await runTokens(['revoke', id], o);
    expect(lines.at(-1)).toMatch(new RegExp(`^token ${id} "grafana" revoked at `));
    expect((await api().get('/api/v1/nodes', { token })).status).toBe(401);
    await expect(runTokens(['revoke', 'x1'], o)).rejects.toThrow(/not a token id/);
    await expect(runTokens(['create', '--name', 'x', '--role', 'viewer', '--expires-in', 'soon'], o)).rejects.toThrow(/--expires-in soon/);
    await expect(runTokens(['create', '--name', 'x', '--role', 'root'], o)).rejects.toThrow(/400/);
  });
});

describe('bootstrap admin token', () => {
  it('the first replica writes admin.token and stores its hash; a second without the file invents none; one with another file is not accepted', async () => {
    const bdb = await createTestDb();
    const dirs = [0, 1, 2].map(() => mkdtempSync(join(tmpdir(), 'bf-boot-')));
    try {
      const store = createTokenStore(bdb.db, { clock });
      const log = silentLogger();
      const a = await bootstrapAdminToken({ store, dataDir: dirs[0]!, log });
      expect(a).toMatch(/^bft_/);
      expect(readFileSync(join(dirs[0]!, 'admin.token'), 'utf8').trim()).toBe(a);
      expect(statSync(join(dirs[0]!, 'admin.token')).mode & 0o777).toBe(0o600);
      // a restart of the same replica keeps it
      expect(await bootstrapAdminToken({ store, dataDir: dirs[0]!, log })).toBe(a);
      // a second replica with no file: nothing invented, no file written
      expect(await bootstrapAdminToken({ store, dataDir: dirs[1]!, log })).toBeUndefined();
      expect(() => statSync(join(dirs[1]!, 'admin.token'))).toThrow();
      // a third with a stale file of its own: not accepted
      writeFileSync(join(dirs[2]!, 'admin.token'), 'stale-token-0123456789abcdef\n');
      expect(await bootstrapAdminToken({ store, dataDir: dirs[2]!, log })).toBeUndefined();
      const rows = await bdb.db.select().from(apiTokens);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ bootstrap: true, role: 'admin', name: 'local-admin', tokenHash: hashToken(a!) });
      // the one token works on an app over the database (any replica)
      const app = createTestApp(bdb, { clock }).app;
      expect((await client(app).get('/api/v1/tokens', { token: a! })).status).toBe(200);
      expect((await client(app).get('/api/v1/tokens', { token: 'stale-token-0123456789abcdef' })).status).toBe(401);
      // revoked, it stays revoked across restarts
      await store.revoke(rows[0]!.id, 'test');
      expect(await bootstrapAdminToken({ store, dataDir: dirs[0]!, log })).toBe(a);
      expect((await client(app).get('/api/v1/nodes', { token: a! })).status).toBe(401);
    } finally {
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
      await bdb.close();
    }
  });
});
