// createTestDb(): a fresh, migrated in-memory PGlite for each call (STYLE.md §8). Starting PGlite and running the
// migrations costs seconds; loading a migrated snapshot costs well under one (FACTS.md), so the first call in a
// run migrates once and saves a snapshot keyed by the migrations' content, and every later call loads it.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDb, MIGRATIONS_DIR, type DbHandle } from '../../server/db/index.ts';

function migrationsKey(): string {
  const h = createHash('sha256');
  const walk = (dir: string) => {
    for (const f of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (f.isDirectory()) walk(join(dir, f.name));
      else h.update(f.name).update(readFileSync(join(dir, f.name)));
    }
  };
  walk(MIGRATIONS_DIR);
  return h.digest('hex').slice(0, 16);
}

let snapshot: Promise<Blob> | undefined;

async function migratedSnapshot(): Promise<Blob> {
  const file = join(tmpdir(), `bootfarm-pglite-${migrationsKey()}.tar`);
  if (existsSync(file)) return new Blob([readFileSync(file)]);
  const db = await createDb({ dataDir: 'memory://' });
  const blob = await db.dump!();
  await db.close();
  const tmp = `${file}.${process.pid}`;
  writeFileSync(tmp, Buffer.from(await blob.arrayBuffer()));
  renameSync(tmp, file);
  return blob;
}

export async function createTestDb({ onQuery }: { onQuery?: (sql: string) => void } = {}): Promise<DbHandle> {
  snapshot ??= migratedSnapshot();
  return createDb({ dataDir: 'memory://', loadDataDir: await snapshot, onQuery });
}
