// The bounded console store on PGlite: the byte budget holds after every append, the tail and the last lines
// come back in order, and follow mode continues from an id.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb } from '../../test/fakes/db.ts';
import { createNodeStore } from './nodes.ts';
import { consoleLines, createConsoleStore, utf8Tail } from './console.ts';
import { FakeClock } from '../clock.ts';
import type { DbHandle } from '../db/index.ts';

const A = '00000000-0000-4000-8000-00000000c001';
const B = '00000000-0000-4000-8000-00000000c002';
let handle: DbHandle;
const clock = new FakeClock('2026-12-03T08:00:00Z');

beforeAll(async () => {
  handle = await createTestDb();
  const nodes = createNodeStore(handle.db, { clock });
  await nodes.enroll(A, {}, 'test');
  await nodes.enroll(B, {}, 'test');
});
afterAll(() => handle.close());

describe('console store', () => {
  it('keeps at most maxBytes per node, pruning the oldest chunks in the append', async () => {
    const store = createConsoleStore(handle.db, { clock, maxBytes: 1000 });
    const boot = new Date('2026-12-03T08:00:00Z');
    for (let i = 0; i < 100; i++) {
      await store.append(A, boot, `line ${String(i).padStart(3, '0')} ${'x'.repeat(39)}\r\n`);
      expect(await store.size(A)).toBeLessThanOrEqual(1000);
    }
    // 50-byte lines: the budget holds the newest 20 of them
    const lines = consoleLines((await store.tail(A)).text);
    expect(lines).toHaveLength(20);
    expect(lines[0]).toMatch(/^line 080 /);
    expect(lines.at(-1)).toMatch(/^line 099 /);
    // another node's output is untouched by A's pruning
    await store.append(B, boot, 'hello from B\n');
    expect((await store.tail(B)).text).toBe('hello from B\n');
    expect(await store.size(A)).toBe(1000);
  });

  it('keeps only the tail of a chunk larger than the whole budget', async () => {
    const store = createConsoleStore(handle.db, { clock, maxBytes: 100 });
    await store.append(B, new Date(), 'a'.repeat(500) + 'END');
    const t = await store.tail(B);
    expect(Buffer.byteLength(t.text)).toBe(100);
    expect(t.text.endsWith('END')).toBe(true);
  });

  it('tail(bytes) returns the last N bytes; since(id) continues after it', async () => {
    const store = createConsoleStore(handle.db, { clock, maxBytes: 10_000 });
    const C = '00000000-0000-4000-8000-00000000c003';
    await createNodeStore(handle.db, { clock }).enroll(C, {}, 'test');
    const boot = new Date('2026-12-03T08:01:00Z');
    await store.append(C, boot, 'one\n');
    await store.append(C, boot, 'two\n');
    const t = await store.tail(C, { bytes: 6 });
    expect(t.text).toBe('e\ntwo\n');
    await store.append(C, boot, 'three\n');
    expect((await store.since(C, t.lastId)).map((c) => c.data)).toEqual(['three\n']);
  });

  it('lastLines reads the latest boot only, without escape sequences', async () => {
    const store = createConsoleStore(handle.db, { clock, maxBytes: 10_000 });
    const D = '00000000-0000-4000-8000-00000000c004';
    await createNodeStore(handle.db, { clock }).enroll(D, {}, 'test');
    await store.append(D, new Date('2026-12-03T07:00:00Z'), 'old boot\n');
    const boot = new Date('2026-12-03T08:00:00Z');
    await store.append(D, boot, '\x1b[2J\x1b[1;1HSeaBIOS\r\n');
    for (let i = 0; i < 30; i++) await store.append(D, boot, `kernel: step ${i}\r\n`);
    const lines = await store.lastLines(D, 20);
    expect(lines).toHaveLength(20);
    expect(lines[0]).toBe('kernel: step 10');
    expect(lines.at(-1)).toBe('kernel: step 29');
    expect(await store.lastLines('00000000-0000-4000-8000-0000000000ff')).toEqual([]);
  });

  it('utf8Tail never starts inside a character', () => {
    expect(utf8Tail('äöü', 3)).toBe('ü');
    expect(utf8Tail('abc', 10)).toBe('abc');
  });
});
