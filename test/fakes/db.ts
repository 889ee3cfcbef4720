// createTestDb(): a migrated in-memory PGlite for tests (STYLE.md §8). Every call is a fresh database.
import { createDb, type DbHandle } from '../../server/db/index.ts';

export async function createTestDb(): Promise<DbHandle> {
  return createDb({ dataDir: 'memory://' });
}
