// `POST /api/v1/secrets/rotate` and `GET /api/v1/secrets` through the app, and `bootfarm secrets` (server/cli/secrets.ts)
// against it, on PGlite.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, createTestApp, TOKENS } from '../../test/fakes/app.ts';
import { createTestDb } from '../../test/fakes/db.ts';
import { createApp } from './app.ts';
import { secretsMount } from './secrets.ts';
import { runSecrets } from '../cli/secrets.ts';
import type { DbHandle } from '../db/index.ts';
import { createKeyring } from '../store/keyring.ts';
import { createBmcStore } from '../store/bmcs.ts';
import { createAuditStore } from '../store/audit.ts';

let db: DbHandle;
let app: ReturnType<typeof createApp>;
let bmcs: ReturnType<typeof createBmcStore>;
const UUID = '0b000000-0000-4000-8000-000000000001';

beforeAll(async () => {
  db = await createTestDb();
  const base = createTestApp(db);
  const keyring = createKeyring(db.db, { kek: Buffer.alloc(32, 3), clock: base.clock });
  await keyring.init();
  bmcs = createBmcStore(db.db, keyring, { clock: base.clock });
  await bmcs.set(UUID, { driver: 'ipmi', address: '10.0.0.7', username: 'root', password: 'calvin-0' }, 'test', { enroll: 'test' });
  app = createApp(base.deps, { extra: [secretsMount({ keyring })] });
}, 60_000);
afterAll(async () => {
  await db.close();
});

describe('secrets API', () => {
  it('is admin only, refuses unknown fields, and rotates with an audit row', async () => {
    const c = client(app);
    expect((await c.post('/api/v1/secrets/rotate', { token: TOKENS.operator, body: {} })).status).toBe(403);
    expect((await c.get('/api/v1/secrets', { token: TOKENS.viewer })).status).toBe(403);
    const bad = await c.post('/api/v1/secrets/rotate', { token: TOKENS.admin, body: { rewrapKek: 'yes', key: 'x' } });
    expect(bad.status).toBe(400);
    const before = (await c.get('/api/v1/secrets', { token: TOKENS.admin })).json;
    expect(before.keys).toHaveLength(1);
    expect(JSON.stringify(before)).not.toMatch(/wrapped/i);
    const r = await c.post('/api/v1/secrets/rotate', { token: TOKENS.admin, body: {} });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ previousKeyId: before.keys[0].id, reencrypted: 1, rewrapped: 0 });
    expect((await bmcs.getCredentials(UUID))!.password).toBe('calvin-0');
    const audit = await createAuditStore(db.db, { clock: { now: () => new Date() } }).list({ target: `data-key:${r.json.keyId}` });
    expect(audit[0]).toMatchObject({ actor: 'api:admin', action: 'secrets.rotate' });
  });

  it('bootfarm secrets rotate / status print what happened', async () => {
    const fetchImpl = ((u: string, init: RequestInit) => app.request(new URL(u).pathname, init)) as typeof fetch;
    const lines: string[] = [];
    const o = { out: (l: string) => lines.push(l), fetchImpl, globals: { url: 'http://in-process', token: TOKENS.admin } };
    await runSecrets(['rotate', '--rewrap-kek'], o);
    expect(lines[0]).toMatch(/^data key \d+ active \(was \d+\); 1 BMC password\(s\) re-encrypted; 0 data key\(s\) re-wrapped/);
    await runSecrets(['status'], o);
    expect(lines.filter((l) => /^\d+\s+active/.test(l))).toHaveLength(1);
    await expect(runSecrets(['spin'], o)).rejects.toThrow(/unknown command 'spin'/);
  });
});
