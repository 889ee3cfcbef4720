// The shared keyring on PGlite: two keyrings on one database stand for two replicas (each has its own cache of
// unwrapped keys, as each replica process does). The same on real PostgreSQL with whole servers:
// test/ha/shared-state.pg.test.ts.
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestDb } from '../../test/fakes/db.ts';
import { FakeClock } from '../clock.ts';
import type { DbHandle } from '../db/index.ts';
import { bmcSetups, bmcs, dataKeys } from '../db/schema/index.ts';
import { createSecrets, kekCheck } from '../secrets.ts';
import { createAuditStore } from './audit.ts';
import { createBmcStore } from './bmcs.ts';
import { createKeyring, KekMismatchError, purgeRetiredKeys } from './keyring.ts';
import { KEY_PURGE, keyPurgeScenario } from '../../test/fakes/keyring.ts';

const KEK = Buffer.alloc(32, 1);
const OTHER_KEK = Buffer.alloc(32, 2);
const UUID = '0a000000-0000-4000-8000-000000000001';
const bmc = (password: string) => ({ driver: 'ipmi', address: '10.0.0.5', username: 'admin', password });

let db: DbHandle;
const clock = new FakeClock();
beforeEach(async () => {
  db = await createTestDb();
});
afterEach(async () => {
  await db.close();
});

describe('keyring', () => {
  it('creates one active data key on first start, and a second replica with the same KEK creates none', async () => {
    const a = createKeyring(db.db, { kek: KEK, clock });
    expect(await a.init()).toEqual({ created: true, imported: 0, keys: 1 });
    const b = createKeyring(db.db, { kek: KEK, clock });
    expect(await b.init()).toEqual({ created: false, imported: 0, keys: 1 });
    const rows = await db.db.select().from(dataKeys);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ active: true, legacy: false, kekCheck: kekCheck(KEK) });
    // the wrapped key is not the key: nothing in the row opens a value without the KEK
    expect(rows[0]!.wrappedKey.split('.')).toHaveLength(3);
  });

  it('seals as v2.<key id>; another replica on the database opens it', async () => {
    const a = createKeyring(db.db, { kek: KEK, clock });
    await a.init();
    const b = createKeyring(db.db, { kek: KEK, clock });
    await b.init();
    const sealed = await a.encrypt('hunter2');
    expect(sealed).toMatch(/^v2\.\d+\.[^.]+\.[^.]+\.[^.]+$/);
    expect(sealed).not.toContain('hunter2');
    expect(await b.decrypt(sealed)).toBe('hunter2');
    expect(await a.decrypt(await b.encrypt('x'))).toBe('x');
    // a tampered value fails authentication
    const bad = sealed.slice(0, -4) + (sealed.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    await expect(b.decrypt(bad)).rejects.toThrow();
  });

  it('refuses a replica whose KEK differs, naming both check values, and writes nothing', async () => {
    await createKeyring(db.db, { kek: KEK, clock }).init();
    const before = await db.db.select().from(dataKeys);
    const wrong = createKeyring(db.db, { kek: OTHER_KEK, clock });
    const err = await wrong.init({ legacyKeys: [randomBytes(32)] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KekMismatchError);
    expect((err as Error).message).toContain(kekCheck(KEK));
    expect((err as Error).message).toContain(kekCheck(OTHER_KEK));
    expect((err as Error).message).toMatch(/same KEK/);
    expect(await db.db.select().from(dataKeys)).toEqual(before);
  });

  it('imports a pre-issue-14 secret.key once, so v1 values still open', async () => {
    const legacy = randomBytes(32);
    const v1 = createSecrets(legacy).encrypt('old-password');
    const a = createKeyring(db.db, { kek: KEK, clock });
    expect(await a.init({ legacyKeys: [legacy] })).toMatchObject({ created: true, imported: 1 });
    expect(await a.decrypt(v1)).toBe('old-password');
    // a second replica starting with the same file imports nothing more; one started later opens v1 too
    const b = createKeyring(db.db, { kek: KEK, clock });
    expect(await b.init({ legacyKeys: [legacy] })).toMatchObject({ created: false, imported: 0 });
    expect(await b.decrypt(v1)).toBe('old-password');
    const rows = await db.db.select().from(dataKeys);
    expect(rows.filter((r) => r.legacy)).toHaveLength(1);
    expect(rows.filter((r) => r.active)).toHaveLength(1);
    // new values are sealed with the database key, not the legacy one
    expect(await a.encrypt('new')).toMatch(/^v2\./);
    // a v1 value under a key never imported is an error, not garbage
    await expect(a.decrypt(createSecrets(randomBytes(32)).encrypt('x'))).rejects.toThrow(/legacy key/);
  });

  it('rotate: new key, every BMC password (v1 or v2) re-encrypted under it in one transaction, audited', async () => {
    const a = createKeyring(db.db, { kek: KEK, clock });
    const legacy = randomBytes(32);
    await a.init({ legacyKeys: [legacy] });
    const b = createKeyring(db.db, { kek: KEK, clock });
    await b.init();
    const store = createBmcStore(db.db, a, { clock });
    await store.set(UUID, bmc('pw-one'), 'test', { enroll: 'test' });
    // one row still in the v1 form, as an old replica left it
    await db.db.update(bmcs).set({ passwordEnc: createSecrets(legacy).encrypt('pw-one') });
    const r = await b.rotate({ actor: 'api:admin' });
    expect(r).toMatchObject({ reencrypted: 1, rewrapped: 0, previousKeyId: expect.any(Number) });
    const [row] = await db.db.select().from(bmcs);
    expect(row!.passwordEnc.startsWith(`v2.${r.keyId}.`)).toBe(true);
    // replica A (which did not rotate) opens it and seals new values with the new key
    expect((await store.getCredentials(UUID))!.password).toBe('pw-one');
    expect(await a.encrypt('x')).toMatch(new RegExp(`^v2\\.${r.keyId}\\.`));
    const keys = await db.db.select().from(dataKeys);
    expect(keys.filter((k) => k.active).map((k) => k.id)).toEqual([r.keyId]);
    expect(keys.find((k) => k.id === r.previousKeyId)!.retiredAt).not.toBeNull();
    const [entry] = await createAuditStore(db.db, { clock }).list();
    expect(entry).toMatchObject({ actor: 'api:admin', action: 'secrets.rotate', target: `data-key:${r.keyId}` });
    expect(JSON.stringify(entry)).not.toContain('pw-one');
  });

  it('rolling to a new KEK: new KEK + old as previous starts, rewrap moves every key, then the old KEK alone is refused', async () => {
    const old = createKeyring(db.db, { kek: KEK, clock });
    await old.init({ legacyKeys: [randomBytes(32)] });
    const sealed = await old.encrypt('pw');
    // step 1: every replica gets the new KEK with the old one in previousKeks
    const rolling = createKeyring(db.db, { kek: OTHER_KEK, previousKeks: [KEK], clock });
    await rolling.init();
    expect(await rolling.decrypt(sealed)).toBe('pw');
    // a replica that has only the new KEK cannot start yet
    await expect(createKeyring(db.db, { kek: OTHER_KEK, clock }).init()).rejects.toBeInstanceOf(KekMismatchError);
    // step 2: rotate --rewrap-kek
    const r = await rolling.rotate({ actor: 'cli', rewrapKek: true });
    expect(r.rewrapped).toBe(2);
    expect(new Set((await db.db.select().from(dataKeys)).map((k) => k.kekCheck))).toEqual(new Set([kekCheck(OTHER_KEK)]));
    // step 3: the old KEK can go; a replica still on it is refused
    const fresh = createKeyring(db.db, { kek: OTHER_KEK, clock });
    await fresh.init();
    expect(await fresh.decrypt(sealed)).toBe('pw');
    await expect(createKeyring(db.db, { kek: KEK, clock }).init()).rejects.toBeInstanceOf(KekMismatchError);
  });
});

describe('purging retired data keys (the retention job)', () => {
  it('purges the keys two rotations retired once past dataKeysDays, keeps a key a value still names, every password opens', async () => {
    expect(await keyPurgeScenario(db.db)).toEqual(KEY_PURGE.expected);
  });

  it('keeps a retired key that an open BMC setup plan names, and purges it once the setup has dropped its secrets', async () => {
    const a = createKeyring(db.db, { kek: KEK, clock });
    await a.init();
    await createBmcStore(db.db, a, { clock }).set(UUID, bmc('pw'), 'test', { enroll: 'test' });
    const { previousKeyId } = await a.rotate({ actor: 'cli' });
    // a setup requested by a replica that sealed with the previous key just as the rotation committed
    await db.db.insert(bmcSetups).values({ nodeUuid: UUID, id: 's1', state: 'pending', planSealed: a.encryptWith(previousKeyId!, '{}'), passwordSealed: null, summary: { redacted: '', expect: { address: '10.0.0.5', port: 623, username: 'admin' } }, requestedBy: 'test', requestedAt: clock.now() });
    const later = new Date(clock.now().getTime() + 86_400_000);
    const purge = () => db.db.transaction((tx) => purgeRetiredKeys(tx, { retiredBefore: later, limit: 10, at: later }));
    expect(await purge()).toBe(0);
    expect((await db.db.select().from(dataKeys)).map((k) => k.id)).toContain(previousKeyId);
    await db.db.update(bmcSetups).set({ state: 'expired', planSealed: null });
    expect(await purge()).toBe(1);
    expect((await db.db.select().from(dataKeys)).map((k) => k.id)).not.toContain(previousKeyId);
    const [entry] = await createAuditStore(db.db, { clock }).list();
    expect(entry).toMatchObject({ actor: 'system', action: 'secrets.purge', target: `data-key:${previousKeyId}`, after: null });
    // the row records which key went, never the key: no wrapped key in it
    expect(entry!.before).toMatchObject({ id: previousKeyId, kekCheck: kekCheck(KEK) });
    expect(entry!.before).not.toHaveProperty('wrappedKey');
  });
});
