// Secrets at rest (BMC passwords): AES-256-GCM with a 32-byte key from config. The stored form is
// "v1.<iv b64>.<tag b64>.<ciphertext b64>"; a wrong key or a tampered value fails authentication and throws.
import { createCipheriv, createDecipheriv, createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export interface Secrets {
  encrypt(plain: string): string;
  decrypt(sealed: string): string;
}

export function createSecrets(key: Buffer): Secrets {
  if (key.length !== 32) throw new Error(`secret key must be 32 bytes (got ${key.length})`);
  return {
    encrypt(plain) {
      const iv = randomBytes(12);
      const c = createCipheriv('aes-256-gcm', key, iv);
      const ct = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
      return ['v1', iv.toString('base64'), c.getAuthTag().toString('base64'), ct.toString('base64')].join('.');
    },
    decrypt(sealed) {
      const [v, iv, tag, ct] = sealed.split('.');
      if (v !== 'v1' || !iv || !tag || ct === undefined) throw new Error('sealed secret has an unknown format');
      const d = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64'));
      d.setAuthTag(Buffer.from(tag, 'base64'));
      return Buffer.concat([d.update(Buffer.from(ct, 'base64')), d.final()]).toString('utf8');
    },
  };
}

/** sha256 hex of a token; tokens are stored only as this hash. */
export const hashToken = (token: string) => createHash('sha256').update(token, 'utf8').digest('hex');

/** Constant-time comparison of a presented token with a stored hash. */
export function tokenMatches(token: string, storedHash: string | null | undefined): boolean {
  if (!storedHash) return false;
  const a = Buffer.from(hashToken(token), 'hex');
  const b = Buffer.from(storedHash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

/** A new random token, URL- and kernel-cmdline-safe. */
export const newToken = () => randomBytes(24).toString('base64url');

/** Makes a directory tree private to the user the server runs as: directories 0700, files 0600. PGlite's initdb
 * unpacks its cluster template with mode 0666 files (explicit chmod, so the umask does not help), and an older
 * data directory may hold such files already. Symbolic links are left alone (chmod would follow them out of the
 * tree). Returns what could not be changed (e.g. a file owned by another user), for the caller to log. */
export function restrictTree(root: string): { path: string; error: string }[] {
  const failures: { path: string; error: string }[] = [];
  const visit = (path: string) => {
    let st;
    try {
      st = lstatSync(path);
    } catch (e) {
      // a file PostgreSQL removed while we walked: nothing left to protect
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') failures.push({ path, error: (e as Error).message });
      return;
    }
    if (st.isSymbolicLink()) return;
    const want = st.isDirectory() ? 0o700 : 0o600;
    if ((st.mode & 0o777) !== want) {
      try {
        chmodSync(path, want);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') failures.push({ path, error: (e as Error).message });
      }
    }
    if (st.isDirectory()) {
      let names: string[] = [];
      try {
        names = readdirSync(path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') failures.push({ path, error: (e as Error).message });
      }
      for (const n of names) visit(join(path, n));
    }
  };
  visit(root);
  return failures;
}
