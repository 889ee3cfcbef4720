import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDb } from '../test/fakes/db.ts';
import { createNodeStore } from './store/nodes.ts';
import { createBootBackend } from './boot-backend.ts';
import type { DbHandle } from './db/index.ts';
import { sampleFacts } from '../test/fakes/app.ts';

let db: DbHandle;
beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => db?.close());

it('answers DHCP from a MAC table loaded in one query, refreshed on time and on a miss', async () => {
  const nodes = createNodeStore(db.db);
  let queries = 0;
  const counted = { macTable: () => (queries++, nodes.macTable()) };
  let t = 0;
  const backend = createBootBackend({ nodes: counted, refreshMs: 10_000, missRefreshMs: 2_000, now: () => t });
  try {
    const U = '31313131-0000-4000-8000-000000000001';
    await nodes.register({ facts: sampleFacts(U, { macs: ['52:54:00:31:00:01'] }) as never, failures: [] }, 'test');
    await nodes.setLabels(U, { 'bootfarm.io/ipv4': '10.20.0.50', 'bootfarm.io/ipv6': 'fd5b:0:0:1::50', 'bootfarm.io/hostname': 'hv-31' }, 'test');

    expect(await backend.dhcpHost('52:54:00:31:00:01')).toEqual({ mac: '52:54:00:31:00:01', allowBoot: true, hostname: 'hv-31', ipv4: '10.20.0.50', ipv6: 'fd5b:0:0:1::50' });
    expect(queries).toBe(1);
    // a storm of strangers: answered from memory, at most one reload per missRefreshMs
    for (let i = 0; i < 100; i++) expect(await backend.dhcpHost(`52:54:00:99:00:${(i % 100).toString(16).padStart(2, '0')}`)).toBeNull();
    expect(queries).toBe(1);
    t += 2_500;
    expect(await backend.dhcpHost('52:54:00:99:99:99')).toBeNull();
    expect(queries).toBe(2);

    // a retirement reaches DHCP at the next reload
    await nodes.transition(U, { type: 'retire' }, 'test');
    expect((await backend.dhcpHost('52:54:00:31:00:01'))!.allowBoot).toBe(true);
    t += 10_001;
    expect((await backend.dhcpHost('52:54:00:31:00:01'))!.allowBoot).toBe(false);
  } finally {
    backend.stop();
  }
});

it('keeps serving the last table when a reload fails', async () => {
  let fail = false;
  let t = 0;
  const backend = createBootBackend({ nodes: { macTable: async () => (fail ? Promise.reject(new Error('db down')) : [{ mac: 'aa:bb:cc:dd:ee:ff', state: 'active', hostname: null, labels: {}, profile: null }]) }, now: () => t });
  try {
    expect(await backend.dhcpHost('AA:BB:CC:DD:EE:FF')).toMatchObject({ allowBoot: true });
    fail = true;
    t += 60_000;
    expect(await backend.dhcpHost('aa:bb:cc:dd:ee:ff')).toMatchObject({ allowBoot: true });
  } finally {
    backend.stop();
  }
});

it('hands DHCP the boot loader of the node\'s profile, and says nothing for ipxe', async () => {
  const nodes = createNodeStore(db.db);
  const profiles: Record<string, 'ipxe' | 'shim-grub'> = { sb: 'shim-grub', plain: 'ipxe' };
  const backend = createBootBackend({ nodes, bootloaderOf: (n) => (n.labels.secure === 'yes' ? 'shim-grub' : profiles[n.profile ?? ''] ?? 'ipxe') });
  try {
    const U = '31313131-0000-4000-8000-000000000009';
    await nodes.register({ facts: sampleFacts(U, { macs: ['52:54:00:31:00:09'] }) as never, failures: [] }, 'test');
    expect(await backend.dhcpHost('52:54:00:31:00:09')).toEqual({ mac: '52:54:00:31:00:09', allowBoot: true });
    await nodes.touch(U, { profile: 'sb' });
    await backend.refresh();
    expect((await backend.dhcpHost('52:54:00:31:00:09'))!.bootloader).toBe('shim-grub');
    await nodes.touch(U, { profile: 'plain' });
    await backend.refresh();
    expect(await backend.dhcpHost('52:54:00:31:00:09')).not.toHaveProperty('bootloader');
  } finally {
    backend.stop();
  }
});
