// The whole HTTP surface the way server/main.ts composes it (core routes + firmware, in-band BMC setup, images
// admin + serving, power, secrets), over a given database, for tests that must reach every route. Images use the real
// local-directory store in a temporary directory; the catalog is the real one (nothing published until a test
// pushes). The one stand-in: BMC drivers get an `exec` that fails at once, as an unreachable BMC does, because
// hostile-input tests are about our parsing, not about waiting for ipmitool's timeouts against random addresses.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp, type Mount, type RequireRole } from '../../server/api/app.ts';
import { firmwareMount } from '../../server/api/firmware.ts';
import { bmcSetupMount } from '../../server/api/bmc-setup.ts';
import { powerMount } from '../../server/api/power.ts';
import { clusterMount } from '../../server/api/cluster.ts';
import { createReplicaStore } from '../../server/store/replicas.ts';
import { createConsoleStore } from '../../server/store/console.ts';
import { consoleMount } from '../../server/api/console.ts';
import { createBmcFactory, type BmcFactory } from '../../server/bmc/index.ts';
import { FakeClock } from '../../server/clock.ts';
import { parseSection, type Config } from '../../server/config.ts';
import type { DbHandle } from '../../server/db/index.ts';
import type { ImageCatalog } from '../../server/domain/images.ts';
import { createFirmwareGate } from '../../server/domain/firmware-gate.ts';
import { createImages, ImagesConfig } from '../../server/images/index.ts';
import { imagesMount } from '../../server/api/images.ts';
import { silentLogger } from '../../server/log.ts';
import { secretsMount } from '../../server/api/secrets.ts';
import { backupMount } from '../../server/api/backup.ts';
import { createKeyring } from '../../server/store/keyring.ts';
import { createBmcSetupStore } from '../../server/store/bmc-setups.ts';
import { createBmcStore } from '../../server/store/bmcs.ts';
import { createFirmwareStore } from '../../server/store/firmware.ts';
import { createCablingStore } from '../../server/store/cabling.ts';
import { createNodeStore } from '../../server/store/nodes.ts';
import { TEST_KEY, TEST_PLAN_SIGNER, testConfig } from '../fakes/app.ts';

/** the KEK of the full app's keyring (data keys in the database, as server/main.ts does) */
export const TEST_KEK = Buffer.alloc(32, 9);

/** `catalog` replaces the image catalog the boot and agent routes resolve from (the image routes keep the real one);
 * `createBmc` a real BMC factory (for tests with ipmi_sim); `extra` more mounts (the fleet routes, with a fleet). */
export async function createFullApp(
  db: DbHandle,
  { config = testConfig(), clock = new FakeClock(), catalog, createBmc: realBmc, extra = [] }: { config?: Config; clock?: FakeClock; catalog?: ImageCatalog; createBmc?: BmcFactory; extra?: ((r: RequireRole) => Mount)[] } = {},
) {
  const dir = mkdtempSync(join(tmpdir(), 'bf-fullapp-'));
  const log = silentLogger();
  const nodes = createNodeStore(db.db, { clock });
  const keyring = createKeyring(db.db, { kek: TEST_KEK, clock });
  await keyring.init({ legacyKeys: [TEST_KEY] });
  const bmcs = createBmcStore(db.db, keyring, { clock });
  const firmware = createFirmwareStore(db.db, { clock });
  const cabling = createCablingStore(db.db, { clock });
  const unreachable = async () => {
    throw new Error('stand-in: BMC unreachable');
  };
  const createBmc = realBmc ?? createBmcFactory({ exec: unreachable as never, fetch: unreachable as never });
  const images = await createImages({ config: { dataDir: dir, images: parseSection('images', ImagesConfig, { gates: { minActiveNodes: 0 } }) }, db: db.db, log, clock });
  const app = createApp(
    { config, db, nodes, bmcs, images: catalog ?? images.catalog, inspection: createFirmwareGate({ store: firmware }), log, clock, planSigner: TEST_PLAN_SIGNER, cabling },
    { extra: [firmwareMount({ nodes, firmware, cabling, clock, planSigner: TEST_PLAN_SIGNER }), bmcSetupMount({ nodes, bmcs, setups: createBmcSetupStore(db.db, { secrets: keyring, clock }), clock, createBmc, log }), imagesMount(images), powerMount({ nodes, bmcs, createBmc }), secretsMount({ keyring }), backupMount({ db, clock, log }), clusterMount({ replicas: createReplicaStore(db.db), clock, goneAfterMs: 45_000 }), consoleMount({ nodes, consoles: createConsoleStore(db.db, { clock }), clock }), () => ({ at: '/', app: images.serveApp }), ...extra] },
  );
  return {
    app,
    nodes,
    bmcs,
    keyring,
    firmware,
    images,
    clock,
    async close() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
