// Secrets at rest (BMC passwords): AES-256-GCM. Two sealed forms:
//   "v2.<data key id>.<iv b64>.<tag b64>.<ciphertext b64>" — sealed with a data key from the database
//       (server/store/keyring.ts), itself wrapped by the key-encryption key (KEK) from configuration;
//   "v1.<iv b64>.<tag b64>.<ciphertext b64>" — sealed before issue 14 with one key per replica (`secret.key`);
//       still opened, with that key imported into the database as a legacy data key.
// A wrong key or a tampered value fails authentication and throws.
import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** What seals and opens a secret: the database keyring (async) or a fixed v1 key (tests, legacy). */
export interface SecretBox {
  encrypt(plain: string): string | Promise<string>;
  decrypt(sealed: string): string | Promise<string>;
}

/** A fixed-key box that seals "v1" values (tests; what every replica had before issue 14). */
export interface Secrets {
  encrypt(plain: string): string;
  decrypt(sealed: string): string;
}

/** AES-256-GCM: "base64(iv).base64(tag).base64(ciphertext)". */
export function gcmSeal(key: Buffer, plain: Buffer): string {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  const ct = Buffer.concat([c.update(plain), c.final()]);
  return [iv.toString('base64'), c.getAuthTag().toString('base64'), ct.toString('base64')].join('.');
}

/** Opens gcmSeal's output; throws when the key is wrong or the value was changed. */
export function gcmOpen(key: Buffer, sealed: string): Buffer {
  const [iv, tag, ct, extra] = sealed.split('.');
  if (!iv || !tag || ct === undefined || extra !== undefined) throw new Error('sealed value has an unknown format');
  const d = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64'));
  d.setAuthTag(Buffer.from(tag, 'base64'));
  return Buffer.concat([d.update(Buffer.from(ct, 'base64')), d.final()]);
}

/** The check value stored beside every wrapped data key: HMAC-SHA256(KEK, constant), 16 hex. A replica compares
 * it with its own KEK's before unwrapping anything, so a wrong KEK is refused with a clear message. */
export const kekCheck = (kek: Buffer) => createHmac('sha256', kek).update('bootfarm kek check v1').digest('hex').slice(0, 16);

/** The ed25519 seed that signs firmware plans (server/contract/plan-signature.ts), derived from the KEK with
 * HKDF-SHA256 (RFC 5869) under its own label: every replica configured with the shared KEK signs with the same key
 * and nothing new is stored. Rotating the KEK changes the plan key; a node booted before that gets a plan it
 * refuses and must boot again (its next iPXE script carries the new key). */
export const planSigningSeed = (kek: Buffer) => Buffer.from(hkdfSync('sha256', kek, Buffer.alloc(0), 'bootfarm firmware plan signing v1', 32));

/** base64 of exactly 32 bytes, or an Error naming `what` */
export function parseKey(b64: string, what: string): Buffer {
  const s = b64.trim();
  const key = Buffer.from(s, 'base64');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(s) || key.length !== 32) throw new Error(`${what} must be base64 of 32 bytes (e.g. \`openssl rand -base64 32\`)`);
  return key;
}

export function createSecrets(key: Buffer): Secrets {
  if (key.length !== 32) throw new Error(`secret key must be 32 bytes (got ${key.length})`);
  return {
    encrypt(plain) {
      return `v1.${gcmSeal(key, Buffer.from(plain, 'utf8'))}`;
    },
    decrypt(sealed) {
      if (!sealed.startsWith('v1.')) throw new Error('sealed secret has an unknown format');
      return gcmOpen(key, sealed.slice(3)).toString('utf8');
    },
  };
}

export interface KekSettings {
  kek?: string | undefined;
  kekFile?: string | undefined;
  previousKeks?: string[] | undefined;
}

export interface LoadedKek {
  kek: Buffer;
  previous: Buffer[];
  /** where it came from: configuration, a file named in configuration, or generated into the data directory */
  source: 'config' | 'file' | 'generated';
  /** the data-directory file (source "generated") */
  path?: string;
}

/** The KEK: `secrets.kek` (BOOTFARM_KEK), else `secrets.kekFile` (BOOTFARM_KEK_FILE), else `<dataDir>/kek`, created
 * 0600 on first start. The generated one is fine for one replica; replicas sharing a database need the same KEK
 * in their configuration (the keyring refuses a replica whose KEK differs). */
export function loadKek(settings: KekSettings, dataDir: string): LoadedKek {
  const previous = (settings.previousKeks ?? []).map((k, i) => parseKey(k, `secrets.previousKeks[${i}]`));
  if (settings.kek) return { kek: parseKey(settings.kek, 'secrets.kek'), previous, source: 'config' };
  if (settings.kekFile) {
    let text: string;
    try {
      text = readFileSync(settings.kekFile, 'utf8');
    } catch (e) {
      throw new Error(`secrets.kekFile ${settings.kekFile}: ${(e as Error).message}`);
    }
    return { kek: parseKey(text, `the KEK in ${settings.kekFile}`), previous, source: 'file' };
  }
  const path = join(dataDir, 'kek');
  if (!existsSync(path)) writeFileSync(path, randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
  return { kek: parseKey(readFileSync(path, 'utf8'), `the KEK in ${path}`), previous, source: 'generated', path };
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

/**
 * The node credential of the boot a stage-1 attempt kexecs into, derived from that attempt's stage-1 token:
 * HMAC-SHA256(stage-1 token, "bootfarm node credential" ‖ node ‖ attempt), 24 bytes, base64url (the shape of
 * newToken). Derived, not random, so two copies of one profile request (an agent retry while the first copy sat
 * on a paused or cut-off replica) hand out the same credential on any replica, and whichever copy writes last
 * writes the same hash: the agent never holds a credential a later copy replaced. It grants nothing new: whoever
 * holds the stage-1 token can fetch the profile, which carries the credential, anyway.
 */
export const deriveNodeCredential = (stage1Token: string, uuid: string, attemptId: number) =>
  createHmac('sha256', stage1Token).update(`bootfarm node credential\0${uuid}\0${attemptId}`).digest().subarray(0, 24).toString('base64url');

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
