import { defineConfig } from 'drizzle-kit';

// Migrations are generated from server/db/schema/*.ts with `npx drizzle-kit generate --name WHAT`
// (serialise concurrent generations with `flock /tmp/bootfarm-db.lock`), committed, and applied at start-up.
export default defineConfig({
  dialect: 'postgresql',
  schema: './server/db/schema/index.ts',
  out: './server/db/migrations',
});
