// The embedded database's files are private to the server's user (issue 13 item 6): PGlite's initdb unpacks a
// template of 0666 files, and a data directory written by an older version still has them.
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, lstatSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { createDb } from './index.ts';
import { restrictTree } from '../secrets.ts';

const root = mkdtempSync(join(tmpdir(), 'bootfarm-modes-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** every entry under dir whose mode is not 0700 (directories) / 0600 (files), as "mode path" */
function openEntries(dir: string): string[] {
  const out: string[] = [];
  const visit = (p: string) => {
    const st = lstatSync(p);
    if (st.isSymbolicLink()) return;
    const mode = st.mode & 0o777;
    if (mode !== (st.isDirectory() ? 0o700 : 0o600)) out.push(`${mode.toString(8)} ${p}`);
    if (st.isDirectory()) for (const n of readdirSync(p)) visit(join(p, n));
  };
  visit(dir);
  return out;
}

const countFiles = (dir: string): number => readdirSync(dir, { withFileTypes: true, recursive: true }).filter((e) => e.isFile()).length;

it('a new PGlite data directory is 0700 with 0600 files, and an old one with open modes is closed at start', async () => {
  const dir = join(root, 'pglite');
  const db = await createDb({ dataDir: dir });
  await db.ping();
  await db.close();
  expect(countFiles(dir)).toBeGreaterThan(500); // a whole cluster, not an empty directory
  expect(openEntries(dir)).toEqual([]);

  // what an older bootfarm left behind
  const files = readdirSync(join(dir, 'global'));
  chmodSync(join(dir, 'global', files[0]!), 0o666);
  chmodSync(join(dir, 'global'), 0o755);
  chmodSync(dir, 0o755);
  writeFileSync(join(dir, 'stray.txt'), 'x', { mode: 0o644 });
  expect(openEntries(dir).length).toBe(4);

  const again = await createDb({ dataDir: dir });
  await again.ping();
  await again.close();
  expect(openEntries(dir)).toEqual([]);
}, 240_000); // two file-backed PGlite clusters: initdb on disk is slow on a loaded two-core machine

it('restrictTree leaves symbolic links and what they point to alone', () => {
  const outside = join(root, 'outside.txt');
  writeFileSync(outside, 'shared', { mode: 0o644 });
  chmodSync(outside, 0o644);
  const tree = join(root, 'tree');
  mkdirSync(join(tree, 'sub'), { recursive: true, mode: 0o755 });
  symlinkSync(root, join(tree, 'sub', 'up')); // a link back up (to outside.txt's directory) is not followed either
  writeFileSync(join(tree, 'sub', 'f'), 'x', { mode: 0o664 });
  symlinkSync(outside, join(tree, 'link'));
  expect(restrictTree(tree)).toEqual([]);
  expect(openEntries(tree)).toEqual([]);
  expect(lstatSync(outside).mode & 0o777).toBe(0o644);
});
