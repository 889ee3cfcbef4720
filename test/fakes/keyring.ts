// The data-key purge scenario (server/store/keyring.test.ts on PGlite, server/store/keyring.pg.test.ts on a real
// PostgreSQL): two replicas on one database (two keyrings, each with its own cache of unwrapped keys), BMC
// passwords, rotations, and the retention job (the real one, under a leader fence) purging retired data keys. The
// scenario returns what it saw at each step; both tests compare that whole with KEY_PURGE.expected.
//
// Keys are named K1, K2 … in the order they were created (ids differ between databases), each with its state.
import { asc, eq } from 'drizzle-orm';
import type { Db } from '../../server/db/index.ts';
import { auditLog, bmcs, dataKeys } from '../../server/db/schema/index.ts';
import { FakeClock } from '../../server/clock.ts';
import { RetentionConfig } from '../../server/config.ts';
import { createRetention } from '../../server/fleet/retention.ts';
import type { SecretBox } from '../../server/secrets.ts';
import { createBmcStore } from '../../server/store/bmcs.ts';
import { createFenceStore } from '../../server/store/fence.ts';
import { createKeyring, type Keyring } from '../../server/store/keyring.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const N1 = 'fe000000-0000-4000-8000-000000000001';
const N2 = 'fe000000-0000-4000-8000-000000000002';

export const KEY_PURGE = {
  KEK: Buffer.alloc(32, 7),
  START: new Date('2026-03-01T00:00:00Z'),
  /** retention.dataKeysDays in the scenario */
  dataKeysDays: 7,
  expected: {
    afterTwoRotations: { keys: ['K1 retired', 'K2 retired', 'K3 active'] },
    // a day later: both retired keys are unreferenced, but still within dataKeysDays
    withinGrace: { purged: 0, keys: ['K1 retired', 'K2 retired', 'K3 active'] },
    // past dataKeysDays: both go, one audit row each; every replica opens every password, including replica B that
    // holds K1 in memory and never loaded K3, and a replica started after the purge
    afterGrace: {
      purged: 2,
      keys: ['K3 active'],
      audit: ['system secrets.purge data-key:K1', 'system secrets.purge data-key:K2'],
      passwords: { a: ['pw-1', 'pw-2'], b: ['pw-1', 'pw-2'], fresh: ['pw-1', 'pw-2'] },
    },
    // a third rotation, and replica B writes a password sealed with K3 (it read "active" just before the rotation
    // committed): K3 is past dataKeysDays but a value names it, so it stays
    stillReferenced: { purged: 0, keys: ['K3 retired', 'K4 active'], n2Seal: 'K3', passwords: { a: ['pw-1', 'pw-2-late'], fresh: ['pw-1', 'pw-2-late'] } },
    // the next rotation moves that value to K5; then K3 and K4 go
    afterNextRotation: { purged: 2, keys: ['K5 active'], n2Seal: 'K5', passwords: { a: ['pw-1', 'pw-2-late'], b: ['pw-1', 'pw-2-late'], fresh: ['pw-1', 'pw-2-late'] } },
  },
};

export async function keyPurgeScenario(db: Db) {
  const clock = new FakeClock(KEY_PURGE.START);
  const keyring = async () => {
    const k = createKeyring(db, { kek: KEY_PURGE.KEK, clock });
    await k.init();
    return k;
  };
  const a = await keyring();
  const b = await keyring();
  const bmcA = createBmcStore(db, a, { clock });
  const bmc = (password: string) => ({ driver: 'ipmi', address: '10.0.0.5', username: 'admin', password });
  await bmcA.set(N1, bmc('pw-1'), 'test', { enroll: 'test' });
  await bmcA.set(N2, bmc('pw-2'), 'test', { enroll: 'test' });
  const passwords = async (k: SecretBox) => {
    const store = createBmcStore(db, k, { clock });
    return [(await store.getCredentials(N1))!.password, (await store.getCredentials(N2))!.password];
  };
  // replica B opens a password now: K1 stays in its memory from here on
  await passwords(b);

  // labels in creation order: K1, K2 …
  const label = new Map<number, string>();
  const keyOf = (id: number) => {
    if (!label.has(id)) label.set(id, `K${label.size + 1}`);
    return label.get(id)!;
  };
  const keys = async () => (await db.select().from(dataKeys).orderBy(asc(dataKeys.id))).map((r) => `${keyOf(r.id)} ${r.active ? 'active' : 'retired'}`);
  /** which key seals N2's password now */
  const n2Seal = async () => {
    const [row] = await db.select({ sealed: bmcs.passwordEnc }).from(bmcs).where(eq(bmcs.nodeUuid, N2));
    return keyOf(Number(row!.sealed.split('.')[1]));
  };

  const fences = createFenceStore(db);
  const retention = createRetention({ db, config: RetentionConfig.parse({ dataKeysDays: KEY_PURGE.dataKeysDays }), clock });
  const purge = async () => {
    const fence = { epoch: (await fences.takeEpoch('key-purge', clock.now()))!, holder: 'key-purge' };
    const run = await retention.run(clock.now(), fence, { force: true });
    return run!.pruned.data_keys!;
  };
  const rotate = (k: Keyring) => k.rotate({ actor: 'cli' });

  await keys();
  await rotate(a);
  clock.advance(HOUR);
  await rotate(a);
  const afterTwoRotations = { keys: await keys() };

  clock.advance(DAY);
  const withinGrace = { purged: await purge(), keys: await keys() };

  clock.advance(KEY_PURGE.dataKeysDays * DAY);
  const afterGracePurged = await purge();
  const purgeAudit = await db.select().from(auditLog).where(eq(auditLog.action, 'secrets.purge')).orderBy(asc(auditLog.id));
  const audit = purgeAudit.map((r) => `${r.actor} ${r.action} data-key:${keyOf(Number(r.target!.split(':')[1]))}`);
  const afterGrace = { purged: afterGracePurged, keys: await keys(), audit, passwords: { a: await passwords(a), b: await passwords(b), fresh: await passwords(await keyring()) } };

  // replica B read "active" (K3) just before the third rotation committed, and writes after it
  const k3 = [...label].find(([, l]) => l === 'K3')![0];
  await rotate(a);
  const late: SecretBox = { encrypt: (p) => b.encryptWith(k3, p), decrypt: (s) => b.decrypt(s) };
  await createBmcStore(db, late, { clock }).set(N2, bmc('pw-2-late'), 'test');
  clock.advance((KEY_PURGE.dataKeysDays + 1) * DAY);
  const stillReferenced = { purged: await purge(), keys: await keys(), n2Seal: await n2Seal(), passwords: { a: await passwords(a), fresh: await passwords(await keyring()) } };

  await rotate(a);
  clock.advance((KEY_PURGE.dataKeysDays + 1) * DAY);
  const afterNextRotation = { purged: await purge(), keys: await keys(), n2Seal: await n2Seal(), passwords: { a: await passwords(a), b: await passwords(b), fresh: await passwords(await keyring()) } };

  return { afterTwoRotations, withinGrace, afterGrace, stillReferenced, afterNextRotation };
}
