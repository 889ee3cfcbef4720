// The change trigger of the DHCP MAC table (migrations 0011_mac_changes, 0024_watch_node_profile) on PGlite, the
// embedded default: which node updates move the bootfarm_mac_changes sequence and notify bootfarm_macs, and that a
// profile assignment reaches a boot backend listening on the same database without its periodic reload. Across two
// replicas on a real PostgreSQL: server/boot-backend.replicas.pg.test.ts.
import { afterEach, describe, expect, it } from 'vitest';
import { createTestDb } from '../../test/fakes/db.ts';
import { sampleFacts } from '../../test/fakes/app.ts';
import { until } from '../../test/harness/wait.ts';
import type { DbHandle } from '../db/index.ts';
import { createBootBackend, type CachedBootBackend } from '../boot-backend.ts';
import { createMacChanges } from './mac-changes.ts';
import { createNodeStore } from './nodes.ts';

const HOUR = 3_600_000;
const U = 'ae000000-0000-4000-8000-000000000001';
const MAC = '52:54:00:ae:00:01';

let db: DbHandle | undefined;
let backend: CachedBootBackend | undefined;
afterEach(async () => {
  backend?.stop();
  await db?.close();
  backend = db = undefined;
});

async function registered() {
  db = await createTestDb();
  const nodes = createNodeStore(db.db);
  await nodes.register({ facts: sampleFacts(U, { macs: [MAC] }) as never, failures: [] }, 'test');
  return { nodes, changes: createMacChanges(db) };
}

describe('the MAC table change trigger', () => {
  it('moves on a profile assignment and a profile change, not on a heartbeat or a profile written back unchanged', async () => {
    const { nodes, changes } = await registered();
    const moved = async (what: () => Promise<void>) => {
      const before = await changes.version();
      await what();
      return (await changes.version()) !== before;
    };
    expect(await moved(() => nodes.touch(U, { lastSeen: new Date(), lastHeartbeat: new Date() }))).toBe(false);
    expect(await moved(() => nodes.touch(U, { profile: 'secure' }))).toBe(true);
    expect(await moved(() => nodes.touch(U, { profile: 'secure', lastHeartbeat: new Date() }))).toBe(false);
    expect(await moved(() => nodes.touch(U, { profile: 'default' }))).toBe(true);
    expect(await moved(() => nodes.touch(U, { profile: null }))).toBe(true);
    // what 0011 watched still moves it
    expect(await moved(() => nodes.touch(U, { hostname: 'hv-ae' }))).toBe(true);
  });

  it('a profile assignment reaches a listening boot backend at once: the node is handed shim-grub without a reload', async () => {
    const { nodes, changes } = await registered();
    let loads = 0;
    backend = createBootBackend({
      nodes: { macTable: () => (loads++, nodes.macTable()) },
      changes,
      refreshMs: HOUR,
      missRefreshMs: HOUR,
      pollMs: HOUR,
      bootloaderOf: (n) => (n.profile === 'secure' ? 'shim-grub' : 'ipxe'),
    });
    await backend.ready;
    expect(await backend.dhcpHost(MAC)).toEqual({ mac: MAC, allowBoot: true });
    const before = loads;
    await nodes.touch(U, { profile: 'secure' });
    await until('the boot backend to hand the node shim-grub', async () => (await backend!.dhcpHost(MAC))?.bootloader === 'shim-grub', { limitMs: 10_000, pollMs: 5 });
    expect(loads).toBeGreaterThan(before);
  });
});
