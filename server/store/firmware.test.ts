// The firmware store against Debian's PostgreSQL server (15 here), the engine production runs; the integration
// suite (test/firmware) runs the same store on PGlite (PostgreSQL 18), so both engines see every query.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../clock.ts';
import { Baseline, type PlanStep } from '../contract/firmware.ts';
import { createDb, type DbHandle } from '../db/index.ts';
import { startPostgres, type PgCluster } from '../../test/harness/postgres.ts';
import { createFirmwareGate } from '../domain/firmware-gate.ts';
import { createFirmwareStore, type FirmwareStore } from './firmware.ts';
import { createNodeStore, type NodeStore } from './nodes.ts';

const UUID = '00000000-0000-4000-8000-00000000f001';
const spec = (minimum: string, policy: 'report' | 'enforce' = 'enforce') =>
  Baseline.parse({
    name: 'qemu',
    selector: { manufacturer: 'QEMU', product: 'Standard PC (i440FX + PIIX, 1996)' },
    policy,
    maxAttempts: 2,
    components: [{ type: 'bios', minimum, update: { sha256: 'd'.repeat(64), command: 'true', reboot: true } }],
  });
const facts = (bios: string) => ({
  system: { uuid: UUID, manufacturer: 'QEMU', product: 'Standard PC (i440FX + PIIX, 1996)' },
  bios: { version: bios },
  nics: [{ name: 'eth0', mac: '52:54:00:00:f0:01', driver: 'virtio_net' }],
  lldp: [{ interface: 'eth0', systemName: 'tor-1' }],
});

let pg: PgCluster | undefined;
let handle: DbHandle;
let store: FirmwareStore;
let nodes: NodeStore;
const clock = new FakeClock('2026-11-21T00:00:00Z');

beforeAll(async () => {
  pg = await startPostgres();
  handle = await createDb({ url: await pg.createDatabase('firmware'), maxConnections: 4 });
  store = createFirmwareStore(handle.db, { clock });
  nodes = createNodeStore(handle.db, { clock });
});

afterAll(async () => {
  await handle?.close();
  pg?.stop();
});

describe('baselines', () => {
  it('versions real changes only, and keeps the history in order', async () => {
    expect(await store.applyBaseline(spec('1.16.0'), { actor: 'test', source: 'a.yaml' })).toEqual({ name: 'qemu', version: 1, action: 'created' });
    // key order is not a change
    const reordered = Object.fromEntries(Object.entries(spec('1.16.0')).reverse()) as Baseline;
    expect(Object.keys(reordered)[0]).toBe('components');
    expect(await store.applyBaseline(reordered, { actor: 'test' })).toMatchObject({ version: 1, action: 'unchanged' });
    // two changes at once: the row lock serialises them, both land, versions stay dense
    const [a, b] = await Promise.all([store.applyBaseline(spec('1.16.2'), { actor: 'x' }), store.applyBaseline(spec('1.16.3'), { actor: 'y' })]);
    expect([a.version, b.version].sort()).toEqual([2, 3]);
    expect((await store.history('qemu')).map((h) => [h.version, h.action])).toEqual([
      [1, 'create'],
      [2, 'update'],
      [3, 'update'],
    ]);
    expect((await store.getBaseline('qemu'))?.version).toBe(3);
  });
});

describe('the gate over the store', () => {
  it('numbers attempts within a streak, closes the streak when compliant, and starts again at 1', async () => {
    await store.applyBaseline(spec('1.16.3'), { actor: 'test' });
    const gate = createFirmwareGate({ store });
    const subject = { uuid: UUID, state: 'inspecting' as const, manufacturer: 'QEMU', product: null, labels: {} };
    await nodes.register({ facts: facts('1.16.2') as never, failures: [] }, 'agent');

    expect((await gate(subject, facts('1.16.2') as never)).action).toBe('firmware');
    expect((await gate(subject, facts('1.16.2') as never)).action).toBe('firmware');
    expect((await store.openAttempts(UUID)).map((a) => a.number)).toEqual([1, 2]);
    const steps = (await store.latestAttempt(UUID))!.steps as PlanStep[];
    expect(steps.map((s) => [s.component, s.current, s.package.url])).toEqual([['bios', '1.16.2', `/images/${'d'.repeat(64)}`]]);

    expect(await gate(subject, facts('1.16.3') as never)).toEqual({ action: 'ready', reason: 'firmware compliant with baseline qemu v3' });
    expect(await store.openAttempts(UUID)).toEqual([]);
    expect((await store.latestAttempt(UUID))?.outcome).toBe('closed');
    // a new problem later starts a new streak
    expect((await gate(subject, facts('1.0') as never)).action).toBe('firmware');
    expect((await store.openAttempts(UUID)).map((a) => a.number)).toEqual([1]);
  });

  it('reads the latest facts per node, slimmed to what compliance needs', async () => {
    clock.advance(1000);
    await nodes.register({ facts: { ...facts('1.16.9'), firmware: { secureBoot: 'enabled' }, kernel: { lockdown: 'integrity' } } as never, failures: [] }, 'agent');
    const [n] = await store.fleet();
    expect(n).toMatchObject({ uuid: UUID, facts: { bios: { version: '1.16.9' } }, factsAt: clock.now() });
    // lldp is kept for the cabling check (issue 16 item 5), firmware for a baseline's `secureBoot: required` (issue 19:
    // without it every node's secure-boot component was "unknown", found on the rack's Secure Boot node); the rest
    // stays in the database
    expect(Object.keys(n!.facts!).sort()).toEqual(['bios', 'firmware', 'lldp', 'nics', 'system']);
    expect((n!.facts as { firmware?: unknown }).firmware).toEqual({ secureBoot: 'enabled' });
    expect(await store.fleet({ uuid: '00000000-0000-4000-8000-000000000000' })).toEqual([]);
  });

  it('refuses a report for an attempt that is not the current one', async () => {
    await expect(store.recordReport(UUID, 9, [], 'agent')).rejects.toMatchObject({ status: 409 });
    // exit 0, but with a package other than the planned one: not a success
    expect(await store.recordReport(UUID, 1, [{ component: 'bios', exitCode: 0, stdout: '', stderr: '', sha256: 'e'.repeat(64) }], 'agent')).toMatchObject({ ok: false });
    const rec = await store.recordReport(UUID, 1, [{ component: 'bios', exitCode: 0, stdout: '', stderr: '', sha256: 'd'.repeat(64) }], 'agent');
    expect(rec).toMatchObject({ number: 1, ok: true });
    await store.closeAttempts(UUID, 'gave-up');
    await expect(store.recordReport(UUID, 1, [], 'agent')).rejects.toThrow(/no firmware plan in progress/);
  });
});
