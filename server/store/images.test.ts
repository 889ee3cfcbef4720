// Image rows, channel moves and fleet health on PGlite (a real PostgreSQL 18 in process).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { createDb, type DbHandle } from '../db/index.ts';
import { nodes } from '../db/schema/index.ts';
import { AppError } from '../errors.ts';
import { createImageDbStore, type ImageDbStore } from './images.ts';

const d = (c: string) => c.repeat(64);

describe('image db store', () => {
  let h: DbHandle;
  let s: ImageDbStore;
  const row = (version: string, k: string, i: string) => ({ name: 'stage1', version, arch: 'x86_64', kernelDigest: d(k), kernelSize: 10, initrdDigest: d(i), initrdSize: 20, size: 30, manifestDigest: d(version === '1' ? '1' : '2'), createdBy: 'test' });

  beforeAll(async () => {
    h = await createDb({ dataDir: 'memory://' });
    s = createImageDbStore(h.db);
  });
  afterAll(async () => h?.close());

  it('moves a channel with a history row, and refuses a move prepared against a stale "from"', async () => {
    const { image: a } = await s.insertImage(row('1', 'a', 'b'));
    const { image: b } = await s.insertImage(row('2', 'c', 'e'));
    const at = new Date('2026-11-01T00:00:00Z');
    const first = await s.moveChannel({ name: 'stage1', channel: 'prod', toImageId: a.id, action: 'push', actor: 'x', at, expectFromImageId: null });
    expect(first).toMatchObject({ fromImageId: null, toImageId: a.id, toVersion: '1', toDigest: d('1') });
    // Two promotions prepared while prod was empty: the first wins, the second is told the channel moved.
    await expect(s.moveChannel({ name: 'stage1', channel: 'prod', toImageId: b.id, action: 'promote', actor: 'y', at, expectFromImageId: null })).rejects.toMatchObject({ status: 409, code: 'conflict' });
    const ok = await s.moveChannel({ name: 'stage1', channel: 'prod', toImageId: b.id, action: 'promote', actor: 'y', at, expectFromImageId: a.id });
    expect(ok).toMatchObject({ fromVersion: '1', fromDigest: d('1'), toVersion: '2', actor: 'y' });
    expect((await s.channel('stage1', 'prod'))?.image.version).toBe('2');
    expect((await s.history('stage1', 'prod')).map((r) => r.action)).toEqual(['promote', 'push']);
  });

  it('treats re-inserting the same manifest as a no-op and different content as a conflict', async () => {
    expect((await s.insertImage(row('1', 'a', 'b'))).created).toBe(false);
    const e = await s.insertImage({ ...row('1', 'a', 'b'), manifestDigest: d('9') }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(AppError);
    expect((e as AppError).status).toBe(409);
  });

  it('counts nodes now on a kernel+initrd pair', async () => {
    const add = (state: string, k = 'a', i = 'b') => h.db.insert(nodes).values({ uuid: randomUUID(), state, stateSince: new Date('2026-11-01T01:00:00Z'), kernelDigest: d(k), initrdDigest: d(i) });
    await add('active');
    await add('active');
    await add('failed');
    await add('quarantined');
    await add('active', 'a', 'f'); // other initrd: not this image
    expect(await s.nodesOnImage(d('a'), d('b'))).toEqual({ active: 2, quarantined: 1 });
  });
});
