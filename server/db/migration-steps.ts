// The migrations as steps a caller applies inside its own transaction (issue 17 item 6: `bootfarm restore` creates
// the schema up to a backup's version, loads the rows, then applies the rest, all in one transaction, so a restore
// that fails leaves the database as it was). The statements and the bookkeeping rows are exactly the drizzle
// migrator's (drizzle-orm pg-core dialect `migrate`: the file split at "--> statement-breakpoint", its sha256,
// the journal's `when` as created_at), so a database restored this way is one the server's migrator continues.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { MIGRATIONS_DIR, type Db } from './index.ts';

export interface MigrationStep {
  /** journal tag, e.g. "0012_shared_secrets": the schema version after this step */
  tag: string;
  /** sha256 of the .sql file, as drizzle records it */
  hash: string;
  /** the journal's `when`, drizzle.__drizzle_migrations.created_at */
  createdAt: number;
  statements: string[];
}

/** One applied migration as the database records it. */
export interface AppliedMigration {
  hash: string;
  createdAt: number;
}

type Executor = Pick<Db, 'execute'>;

/** This build's migrations in order. */
export function migrationSteps(migrationsDir = MIGRATIONS_DIR): MigrationStep[] {
  const journal = (JSON.parse(readFileSync(join(migrationsDir, 'meta', '_journal.json'), 'utf8')) as { entries: { tag: string; when: number }[] }).entries;
  return journal.map((e) => {
    const text = readFileSync(join(migrationsDir, `${e.tag}.sql`), 'utf8');
    return { tag: e.tag, hash: sha256(text), createdAt: e.when, statements: text.split('--> statement-breakpoint') };
  });
}

/** drizzle's migration hash: sha256 hex of the whole file */
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** The migrations recorded in the database (oldest first); [] when it was never migrated. */
export async function appliedMigrations(db: Executor): Promise<AppliedMigration[]> {
  const present = rows<{ present: boolean }>(await db.execute(sql`select to_regclass('drizzle.__drizzle_migrations') is not null as present`))[0]?.present;
  if (!present) return [];
  return rows<{ hash: string; created_at: string | number }>(await db.execute(sql`select hash, created_at from drizzle.__drizzle_migrations order by created_at, id`)).map((r) => ({
    hash: r.hash,
    createdAt: Number(r.created_at),
  }));
}

/**
 * How many of `steps` the applied list covers, when it is exactly their prefix (same hashes, same order);
 * otherwise null: the database (or backup) was migrated by a build whose migrations this one does not have.
 */
export function prefixLength(applied: AppliedMigration[], steps: MigrationStep[]): number | null {
  if (applied.length > steps.length) return null;
  for (let i = 0; i < applied.length; i++) if (applied[i]!.hash !== steps[i]!.hash || applied[i]!.createdAt !== steps[i]!.createdAt) return null;
  return applied.length;
}

/** Applies steps on the caller's connection or transaction, recording each as drizzle's migrator does. */
export async function applySteps(db: Executor, steps: MigrationStep[]): Promise<void> {
  await db.execute(sql`create schema if not exists "drizzle"`);
  await db.execute(sql`create table if not exists "drizzle"."__drizzle_migrations" (id serial primary key, hash text not null, created_at bigint)`);
  for (const step of steps) {
    for (const stmt of step.statements) await db.execute(sql.raw(stmt));
    await db.execute(sql`insert into "drizzle"."__drizzle_migrations" ("hash", "created_at") values (${step.hash}, ${step.createdAt})`);
  }
}

/** postgres.js returns the rows as the result; PGlite wraps them in { rows } */
export function rows<T>(result: unknown): T[] {
  if (Array.isArray(result)) return result as T[];
  return ((result as { rows?: T[] }).rows ?? []) as T[];
}
