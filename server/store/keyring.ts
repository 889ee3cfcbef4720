// The database keyring (issue 14 item 1): data keys in `data_keys`, wrapped by the KEK from configuration, so
// every replica on the database seals and opens the same BMC passwords. Values sealed here read
// "v2.<key id>.<iv>.<tag>.<ct>"; "v1.…" values from before are opened with the imported legacy key(s).
//
// - init(): under a transaction-scoped advisory lock (two replicas starting together create one first key),
//   refuses a KEK whose check value matches no stored key (KekMismatchError, before anything is written), imports
//   legacy `secret.key`s, and creates the first active key.
// - encrypt() asks the database which key is active (one indexed read; sealing is rare), so a rotation on
//   another replica takes effect at once; decrypt() loads a key it has not seen on first use.
// - rotate(): new active key, every sealed BMC password re-encrypted under it, optionally every data key
//   re-wrapped under this replica's KEK, and an audit row — one transaction.
// Old data keys are kept (retired) for a while: a replica that read "active" just before a rotation committed may
// still seal one value with the previous key, and that value must stay readable. The next rotation re-encrypts it.
// - purgeRetiredKeys(): the retention job (store/retention.ts, table "data_keys") deletes a retired key once it has
//   been retired for retention.dataKeysDays and no sealed value names it. Not rotate(): deleting the key it has just
//   retired would make such a late value unreadable for good. A replica that still holds a purged key in memory
//   loses nothing: every value it meets names the key that opens it, and a key it has not loaded is read by id.
import { randomBytes } from 'node:crypto';
import { eq, isNotNull, sql, type SQL } from 'drizzle-orm';
import { rowsOf, type Db } from '../db/index.ts';
import { bmcSetups, bmcs, dataKeys } from '../db/schema/index.ts';
import { gcmOpen, gcmSeal, kekCheck, type SecretBox } from '../secrets.ts';
import type { Clock } from '../clock.ts';
import { audit, writeAuditAs, type AuditIntent } from './audit.ts';

/** "bfkeys" in ASCII: the advisory lock around creating and rotating keys */
export const KEYRING_LOCK_KEY = 0x62666b657973;

/** The configured KEK cannot unwrap the database's data keys: the replica must not start. */
export class KekMismatchError extends Error {
  override name = 'KekMismatchError';
}

type KeyRow = typeof dataKeys.$inferSelect;
type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

/**
 * True when a sealed value in the database names data key `id` ("v2.<id>.…"): every column the keyring seals,
 * the same ones rotate() re-encrypts. A new sealed column belongs here and in rotate(), or its key can be purged.
 */
const keyReferenced = (id: SQL) => {
  const names = (col: SQL) => sql`starts_with(${col}, 'v2.' || ${id} || '.')`;
  return sql`(exists (select 1 from bmcs b where ${names(sql`b.password_enc`)})
    or exists (select 1 from bmc_setups s where ${names(sql`s.plan_sealed`)} or ${names(sql`s.password_sealed`)}))`;
};

/**
 * Deletes up to `limit` retired data keys that were retired before `retiredBefore` and that no sealed value names,
 * with an audit row each (actor "system", action secrets.purge); the number deleted. Call it inside a transaction:
 * it takes the keyring's advisory lock, so it never runs beside a rotation (while one runs it deletes nothing and
 * returns 0: the next retention run purges). The check and the delete are one statement. Never deleted: the active
 * key, legacy keys (v1 values do not name their key, and every start imports the replica's secret.key again), a key
 * any value still names. A value sealed with a retired key after this check is the one case left open (a replica
 * that read "active" before the rotation and writes more than `retiredBefore`'s grace later); a key-id column with
 * a foreign key on every sealed value would close it and needs a migration.
 */
export async function purgeRetiredKeys(tx: Pick<Db, 'execute' | 'delete' | 'insert'>, { retiredBefore, limit, at }: { retiredBefore: Date; limit: number; at: Date }): Promise<number> {
  const [lock] = rowsOf<{ locked: boolean }>(await tx.execute(sql`select pg_try_advisory_xact_lock(${KEYRING_LOCK_KEY}::bigint) as locked`));
  if (!lock?.locked) return 0;
  const pick = sql`select k.id from data_keys k
    where not k.active and not k.legacy and k.retired_at < ${retiredBefore.toISOString()}::timestamptz
      and not ${keyReferenced(sql`k.id`)}
    order by k.id limit ${limit}`;
  const gone = await tx
    .delete(dataKeys)
    .where(sql`${dataKeys.id} in (${pick})`)
    .returning({ id: dataKeys.id, kekCheck: dataKeys.kekCheck, createdAt: dataKeys.createdAt, retiredAt: dataKeys.retiredAt });
  for (const k of gone) await audit(tx, { actor: 'system', action: 'secrets.purge', target: `data-key:${k.id}`, before: k, after: null }, at);
  return gone.length;
}

export interface RotateResult {
  keyId: number;
  previousKeyId: number | null;
  reencrypted: number;
  rewrapped: number;
  kekCheck: string;
}

export interface KeyringStatus {
  kekCheck: string;
  keys: { id: number; active: boolean; legacy: boolean; kekCheck: string; createdAt: Date; retiredAt: Date | null }[];
}

export interface Keyring extends SecretBox {
  encrypt(plain: string): Promise<string>;
  decrypt(sealed: string): Promise<string>;
  readonly kekCheck: string;
  init(opts?: { legacyKeys?: Buffer[] }): Promise<{ created: boolean; imported: number; keys: number }>;
  rotate(opts: { actor: string; rewrapKek?: boolean; audit?: AuditIntent }): Promise<RotateResult>;
  /** The data keys (never the keys themselves) and this replica's KEK check value. */
  status(): Promise<KeyringStatus>;
  /** Seal and open inside a caller's transaction (rotation re-encrypts other tables' values this way). */
  encryptWith(keyId: number, plain: string): string;
  decryptCached(sealed: string): string;
}

export function createKeyring(db: Db, { kek, previousKeks = [], clock }: { kek: Buffer; previousKeks?: Buffer[]; clock: Clock }): Keyring {
  const current = kekCheck(kek);
  const keks = new Map<string, Buffer>([...previousKeks.map((k) => [kekCheck(k), k] as const), [current, kek]]);
  /** unwrapped data keys by id */
  const keys = new Map<number, Buffer>();
  const legacyIds = new Set<number>();

  function unwrap(row: KeyRow): Buffer {
    const k = keks.get(row.kekCheck);
    if (!k) {
      const known = [...keks.keys()].join(', ');
      throw new KekMismatchError(
        `this replica's KEK does not match the database: data key ${row.id} was wrapped by the KEK with check value ${row.kekCheck}, ` +
          `this replica knows ${known}. Every replica on one database needs the same KEK (secrets.kek, BOOTFARM_KEK or secrets.kekFile; ` +
          'while rolling to a new KEK, the old one in secrets.previousKeks). Refusing to start.',
      );
    }
    try {
      return gcmOpen(k, row.wrappedKey);
    } catch {
      throw new KekMismatchError(`data key ${row.id} does not unwrap under the KEK with check value ${row.kekCheck}: the row is damaged or was written by another KEK with a colliding check. Refusing to start.`);
    }
  }

  function remember(row: KeyRow): Buffer {
    const k = keys.get(row.id) ?? unwrap(row);
    keys.set(row.id, k);
    if (row.legacy) legacyIds.add(row.id);
    return k;
  }

  async function keyById(id: number, q: Pick<Db, 'select'> = db): Promise<Buffer> {
    const cached = keys.get(id);
    if (cached) return cached;
    const [row] = await q.select().from(dataKeys).where(eq(dataKeys.id, id));
    if (!row) throw new Error(`sealed value names data key ${id}, which is not in the database`);
    return remember(row);
  }

  async function activeId(q: Pick<Db, 'select'> = db): Promise<number> {
    const [row] = await q.select().from(dataKeys).where(eq(dataKeys.active, true));
    if (!row) throw new Error('no active data key: the keyring was not initialised (startServer calls init)');
    remember(row);
    return row.id;
  }

  const lock = (tx: Tx) => tx.execute(sql`select pg_advisory_xact_lock(${KEYRING_LOCK_KEY}::bigint)`);

  async function newKey(tx: Tx, { active, legacy, key = randomBytes(32) }: { active: boolean; legacy: boolean; key?: Buffer }): Promise<number> {
    const [row] = await tx.insert(dataKeys).values({ wrappedKey: gcmSeal(kek, key), kekCheck: current, active, legacy, createdAt: clock.now() }).returning();
    keys.set(row!.id, key);
    if (legacy) legacyIds.add(row!.id);
    return row!.id;
  }

  function encryptWith(keyId: number, plain: string): string {
    const key = keys.get(keyId);
    if (!key) throw new Error(`data key ${keyId} is not loaded`);
    return `v2.${keyId}.${gcmSeal(key, Buffer.from(plain, 'utf8'))}`;
  }

  /** Opens with keys already loaded; null when the value names a key not loaded yet. */
  function openLoaded(sealed: string): string | null {
    if (sealed.startsWith('v1.')) {
      for (const id of legacyIds) {
        try {
          return gcmOpen(keys.get(id)!, sealed.slice(3)).toString('utf8');
        } catch {
          // another legacy key: try the next
        }
      }
      return null;
    }
    const m = /^v2\.(\d{1,9})\.(.*)$/s.exec(sealed);
    if (!m) throw new Error('sealed secret has an unknown format');
    const key = keys.get(Number(m[1]));
    return key ? gcmOpen(key, m[2]!).toString('utf8') : null;
  }

  return {
    kekCheck: current,
    encryptWith,
    decryptCached(sealed) {
      const plain = openLoaded(sealed);
      if (plain === null) throw new Error('sealed value names a data key that is not loaded');
      return plain;
    },

    async init({ legacyKeys = [] } = {}) {
      return db.transaction(async (tx) => {
        await lock(tx);
        const rows = await tx.select().from(dataKeys).orderBy(dataKeys.id);
        // every stored key must unwrap before anything is written: a wrong KEK changes nothing
        for (const r of rows) remember(r);
        let imported = 0;
        const known = rows.filter((r) => r.legacy).map((r) => keys.get(r.id)!);
        for (const key of legacyKeys) {
          if (known.some((k) => k.equals(key))) continue;
          await newKey(tx, { active: false, legacy: true, key });
          known.push(key);
          imported++;
        }
        const created = !rows.some((r) => r.active);
        if (created) await newKey(tx, { active: true, legacy: false });
        return { created, imported, keys: rows.length + imported + (created ? 1 : 0) };
      });
    },

    async status() {
      const rows = await db.select().from(dataKeys).orderBy(dataKeys.id);
      return { kekCheck: current, keys: rows.map((r) => ({ id: r.id, active: r.active, legacy: r.legacy, kekCheck: r.kekCheck, createdAt: r.createdAt, retiredAt: r.retiredAt })) };
    },

    async encrypt(plain) {
      return encryptWith(await activeId(), plain);
    },

    async decrypt(sealed) {
      const plain = openLoaded(sealed);
      if (plain !== null) return plain;
      if (sealed.startsWith('v1.')) {
        // a legacy key another replica imported after we started
        for (const r of await db.select().from(dataKeys).where(eq(dataKeys.legacy, true))) remember(r);
        const again = openLoaded(sealed);
        if (again === null) throw new Error('v1 sealed value does not open with any legacy key (the secret.key that sealed it was never imported)');
        return again;
      }
      const id = Number(/^v2\.(\d+)\./.exec(sealed)![1]);
      await keyById(id);
      return openLoaded(sealed)!;
    },

    async rotate({ actor, rewrapKek = false, audit: intent }) {
      return db.transaction(async (tx) => {
        await lock(tx);
        const rows = await tx.select().from(dataKeys).orderBy(dataKeys.id);
        for (const r of rows) remember(r);
        const previous = rows.find((r) => r.active) ?? null;
        let rewrapped = 0;
        if (rewrapKek) {
          for (const r of rows) {
            if (r.kekCheck === current) continue;
            await tx.update(dataKeys).set({ wrappedKey: gcmSeal(kek, keys.get(r.id)!), kekCheck: current }).where(eq(dataKeys.id, r.id));
            rewrapped++;
          }
        }
        const now = clock.now();
        await tx.update(dataKeys).set({ active: false, retiredAt: now }).where(eq(dataKeys.active, true));
        const keyId = await newKey(tx, { active: true, legacy: false });
        // every sealed BMC password, locked against a concurrent change, re-sealed under the new key
        const sealed = await tx.select({ nodeUuid: bmcs.nodeUuid, passwordEnc: bmcs.passwordEnc }).from(bmcs).for('update');
        for (const b of sealed) {
          const plain = openLoaded(b.passwordEnc);
          if (plain === null) throw new Error(`the BMC password of node ${b.nodeUuid} is sealed with a key that is not in the database; rotation aborted, nothing changed`);
          await tx.update(bmcs).set({ passwordEnc: encryptWith(keyId, plain) }).where(eq(bmcs.nodeUuid, b.nodeUuid));
        }
        // open in-band BMC setup requests hold a sealed plan and password too
        const plans = await tx.select({ id: bmcSetups.id, planSealed: bmcSetups.planSealed, passwordSealed: bmcSetups.passwordSealed }).from(bmcSetups).where(isNotNull(bmcSetups.passwordSealed)).for('update');
        const reseal = (v: string | null) => {
          if (v === null) return null;
          const plain = openLoaded(v);
          if (plain === null) throw new Error('a BMC setup request is sealed with a key that is not in the database; rotation aborted, nothing changed');
          return encryptWith(keyId, plain);
        };
        for (const p of plans) await tx.update(bmcSetups).set({ planSealed: reseal(p.planSealed), passwordSealed: reseal(p.passwordSealed) }).where(eq(bmcSetups.id, p.id));
        const result: RotateResult = { keyId, previousKeyId: previous?.id ?? null, reencrypted: sealed.length + plans.length, rewrapped, kekCheck: current };
        const target = { kind: 'data-key', id: String(keyId) };
        await writeAuditAs(tx, intent, { actor, action: 'secrets.rotate', target }, { target, before: { activeKey: previous?.id ?? null }, after: result }, now);
        return result;
      });
    },
  };
}
