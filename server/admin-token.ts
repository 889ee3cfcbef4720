// The bootstrap admin token (issue 14 item 1): with no tokens in the configuration, the server writes an admin
// token to <dataDir>/admin.token for the CLI. With several replicas on one database it must be ONE token: its
// sha256 is stored as the database's bootstrap token (a unique index: the first replica wins), and
// - a replica with an admin.token file offers it; if another token already stands, the file is not accepted and
//   the log says so;
// - a replica without the file creates a token only if the database has none; otherwise it invents nothing and
//   says where to get one (copy the file from the first replica, or `bootfarm tokens create`).
// A revoked bootstrap token stays revoked: it is never created again.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hashToken } from './secrets.ts';
import { newApiToken, type TokenStore } from './store/tokens.ts';
import type { Logger } from './log.ts';

export async function bootstrapAdminToken({ store, dataDir, log }: { store: Pick<TokenStore, 'claimBootstrap' | 'bootstrap'>; dataDir: string; log: Logger }): Promise<string | undefined> {
  const file = join(dataDir, 'admin.token');
  if (existsSync(file)) {
    const token = readFileSync(file, 'utf8').trim();
    const { won, tokenHash } = await store.claimBootstrap(hashToken(token));
    if (tokenHash !== hashToken(token)) {
      log.warn({ file }, 'the admin token in the data directory is not the bootstrap admin token of this database (another replica created that one first): it is not accepted; copy that replica\'s admin.token here or create one with `bootfarm tokens create`');
      return undefined;
    }
    if (won) log.info({ file }, 'the admin token in the data directory is now the bootstrap admin token of the database');
    return token;
  }
  if (await store.bootstrap()) {
    log.info({ file }, 'no admin.token here and the database already has a bootstrap admin token (made by another replica): none invented; copy that replica\'s admin.token or use `bootfarm tokens create`');
    return undefined;
  }
  const token = newApiToken();
  const { won } = await store.claimBootstrap(hashToken(token));
  if (!won) {
    log.info({ file }, 'another replica created the bootstrap admin token at the same moment: none invented here');
    return undefined;
  }
  writeFileSync(file, token + '\n', { mode: 0o600 });
  log.info({ file }, 'no API tokens configured: an admin token was written to the data directory');
  return token;
}
