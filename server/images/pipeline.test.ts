// The promotion pipeline on a real (embedded) PostgreSQL — PGlite — and the local directory store.
// Node outcomes are written through the node store the way the agent routes and the fleet controller leave them
// (test/fakes/node-history.ts); kernels and initrds are the smallest that pass the push checks.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { createDb, type DbHandle } from '../db/index.ts';
import { createNodeStore } from '../store/nodes.ts';
import { FakeClock } from '../clock.ts';
import { AppError } from '../errors.ts';
import { createLocalStore } from './local.ts';
import { createImagePipeline, sha256File, type ImagePipeline } from './pipeline.ts';
import { initrdFile, kernelFile } from '../../test/fakes/boot-files.ts';
import { bootNode, type BootStep } from '../../test/fakes/node-history.ts';

describe('image promotion pipeline', () => {
  let h: DbHandle;
  let tmp: string;
  let p: ImagePipeline;
  const clock = new FakeClock('2026-11-01T00:00:00Z');
  const store = () => createLocalStore({ dir: join(tmp, 'store') });
  let v1: { kernel: string; initrd: string };
  let v2: { kernel: string; initrd: string };
  let i1Size: number;

  const STEPS: Record<string, BootStep[]> = {
    active: ['kexec', 'active'],
    failed: ['kexec', 'active', { fail: 'heartbeat' }],
  };
  const addNodes = async (img: { kernel: string; initrd: string }, state: 'active' | 'failed' | 'rebuilding' | 'quarantined', n: number) => {
    const ns = createNodeStore(h.db, { clock });
    for (let i = 0; i < n; i++) {
      const uuid = randomUUID();
      await bootNode(ns, uuid, img, STEPS[state] ?? STEPS.failed!);
      if (state === 'rebuilding') await ns.transition(uuid, { type: 'rebuild', reason: 'test' }, 'fleet');
      if (state === 'quarantined') await ns.transition(uuid, { type: 'quarantine', reason: 'test' }, 'fleet');
    }
  };
  const rejected = async (fn: () => Promise<unknown>): Promise<AppError> => {
    try {
      await fn();
    } catch (e) {
      expect(e).toBeInstanceOf(AppError);
      return e as AppError;
    }
    throw new Error('expected a rejection');
  };

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'bfimg-pipe-'));
    h = await createDb({ dataDir: 'memory://' });
    p = createImagePipeline({
      db: h.db,
      store: store(),
      clock,
      gates: { minActiveNodes: 3, minSuccessRatio: 0.9, windowMs: 3600_000, noQuarantined: true },
      rollback: { maxFailureRatio: 0.5, minSamples: 4, windowMs: 3600_000 },
    });
    const k1 = kernelFile(tmp, 'k1', 4096);
    const i1 = initrdFile(tmp, 'i1', 8192);
    const k2 = kernelFile(tmp, 'k2', 4096);
    const i2 = initrdFile(tmp, 'i2', 8192);
    i1Size = i1.size;
    v1 = { kernel: k1.digest, initrd: i1.digest };
    v2 = { kernel: k2.digest, initrd: i2.digest };
    await p.push({ name: 'compute', version: '1.0', kernelPath: k1.path, initrdPath: i1.path, cmdline: 'console=ttyS0', actor: 'alice' });
  });
  afterAll(async () => {
    await h?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('push stores blobs and a manifest, publishes on dev, and records who did it', async () => {
    const r = await p.catalog.resolve('compute', 'dev');
    expect(r).toMatchObject({ version: '1.0', kernel: { digest: v1.kernel, size: 4096 }, initrd: { digest: v1.initrd, size: i1Size }, cmdline: 'console=ttyS0' });
    expect(await p.catalog.resolve('compute', 'prod')).toBeNull();
    const m = await store().getManifest('compute', '1.0');
    expect(m?.kernel.digest).toBe(v1.kernel);
    const hist = await p.history('compute', 'dev');
    expect(hist).toHaveLength(1);
    expect(hist[0]).toMatchObject({ action: 'push', actor: 'alice', from: null, to: { version: '1.0' } });
  });

  it('pushing the same version again is idempotent; with other content it is a conflict', async () => {
    const again = await p.push({ name: 'compute', version: '1.0', kernelPath: join(tmp, 'k1'), initrdPath: join(tmp, 'i1'), cmdline: 'console=ttyS0', actor: 'alice' });
    expect(again.created).toBe(false);
    expect(await p.history('compute', 'dev')).toHaveLength(1);
    const e = await rejected(() => p.push({ name: 'compute', version: '1.0', kernelPath: join(tmp, 'k2'), initrdPath: join(tmp, 'i1'), actor: 'alice' }));
    expect(e.status).toBe(409);
  });

  it('refuses a promotion whose gates fail and says which conditions failed', async () => {
    const e = await rejected(() => p.promote({ name: 'compute', from: 'dev', to: 'canary', actor: 'bob' }));
    expect(e.code).toBe('gate_failed');
    expect((e.details as { failed: string[] }).failed).toEqual(['min-active-nodes', 'success-ratio']);
    expect(e.message).toMatch(/0 node\(s\) active on the candidate, 3 required/);
    expect(await p.catalog.resolve('compute', 'canary')).toBeNull();
  });

  it('refuses backwards moves and unknown channels', async () => {
    expect((await rejected(() => p.promote({ name: 'compute', from: 'prod', to: 'dev', actor: 'bob' }))).code).toBe('wrong_direction');
    expect((await rejected(() => p.promote({ name: 'compute', from: 'dev', to: 'qa', actor: 'bob' }))).status).toBe(400);
  });

  it('promotes once enough nodes are active on the candidate, recording gate figures', async () => {
    await addNodes(v1, 'active', 3);
    const row = await p.promote({ name: 'compute', from: 'dev', to: 'canary', actor: 'bob', reason: 'soaked' });
    expect(row).toMatchObject({ action: 'promote', actor: 'bob', reason: 'soaked', from: null, to: { version: '1.0' } });
    expect((row.data as { health: { active: number } }).health.active).toBe(3);
    await p.promote({ name: 'compute', from: 'canary', to: 'prod', actor: 'bob' });
    expect((await p.catalog.resolve('compute', 'prod'))?.version).toBe('1.0');
  });

  it('blocks promotion while a node is quarantined on the candidate', async () => {
    await p.push({ name: 'compute', version: '2.0', kernelPath: join(tmp, 'k2'), initrdPath: join(tmp, 'i2'), actor: 'alice' });
    await addNodes(v2, 'active', 4);
    await addNodes(v2, 'quarantined', 1);
    const e = await rejected(() => p.promote({ name: 'compute', from: 'dev', to: 'canary', actor: 'bob' }));
    expect((e.details as { failed: string[] }).failed).toEqual(['success-ratio', 'no-quarantined']);
    // An operator may override; history says so.
    const forced = await p.promote({ name: 'compute', from: 'dev', to: 'prod', actor: 'carol', force: true });
    expect((forced.data as { forced: boolean }).forced).toBe(true);
    expect(forced.from).toEqual({ version: '1.0', digest: expect.stringMatching(/^[0-9a-f]{64}$/) });
  });

  it('rolls a channel back by hand to the image it had before', async () => {
    const row = await p.rollback({ name: 'compute', channel: 'prod', actor: 'dave', reason: 'kernel panic on R640' });
    expect(row).toMatchObject({ action: 'rollback', actor: 'dave', reason: 'kernel panic on R640', from: { version: '2.0' }, to: { version: '1.0' } });
    expect((await p.catalog.resolve('compute', 'prod'))?.version).toBe('1.0');
    const e = await rejected(() => p.rollback({ name: 'compute', channel: 'prod', actor: 'dave' }));
    expect(e.code).toBe('nothing_to_roll_back');
  });

  it('rolls back automatically when the failure ratio crosses the threshold, and not before', async () => {
    clock.advance(2 * 3600_000); // earlier node outcomes leave the window
    await p.promote({ name: 'compute', from: 'dev', to: 'prod', actor: 'carol', force: true });
    await addNodes(v2, 'active', 2);
    await addNodes(v2, 'failed', 1);
    const calm = await p.evaluateRollback({ name: 'compute', channel: 'prod' });
    expect(calm).toMatchObject({ rollback: false, samples: 3 });
    await addNodes(v2, 'rebuilding', 1);
    const d = await p.evaluateRollback({ name: 'compute', channel: 'prod' });
    expect(d).toMatchObject({ rollback: true, failureRatio: 0.5, version: '2.0', rolledBackTo: '1.0' });
    const [last] = await p.history('compute', 'prod', 1);
    expect(last).toMatchObject({ action: 'auto-rollback', actor: 'rollback-controller', from: { version: '2.0' }, to: { version: '1.0' } });
    expect(last!.reason).toMatch(/^automatic: failure ratio 0.500/);
  });

  it('refuses random bytes as a kernel, a non-cpio initrd and an unrenderable command line, naming the part, and stores nothing', async () => {
    const junk = join(tmp, 'junk');
    writeFileSync(junk, randomBytes(8192));
    const push = (o: { kernelPath?: string; initrdPath?: string; cmdline?: string }) =>
      rejected(() => p.push({ name: 'compute', version: '9.0', kernelPath: join(tmp, 'k1'), initrdPath: join(tmp, 'i1'), actor: 'mallory', ...o }));
    const k = await push({ kernelPath: junk });
    expect([k.status, k.code, k.details]).toEqual([422, 'invalid_image', { part: 'kernel' }]);
    expect(k.message).toMatch(/^kernel: is not a bootable kernel/);
    const i = await push({ initrdPath: junk });
    expect([i.status, i.details]).toEqual([422, { part: 'initrd' }]);
    expect(i.message).toMatch(/^initrd: it is neither a newc cpio archive/);
    const c = await push({ cmdline: 'console=ttyS0 root=${x}' });
    expect([c.status, c.details]).toEqual([422, { part: 'cmdline' }]);
    expect(c.message).toMatch(/^cmdline: .*"root=\$\{x\}"/);
    expect((await p.show('compute')).versions.map((v) => v.version)).not.toContain('9.0');
    expect(await store().stat((await sha256File(junk)).digest)).toBeNull();
  });

  it('refuses a push straight onto a gated channel without force; with force it leaves an audit row', async () => {
    const k = kernelFile(tmp, 'k3');
    const i = initrdFile(tmp, 'i3');
    const e = await rejected(() => p.push({ name: 'compute', version: '3.0', kernelPath: k.path, initrdPath: i.path, channel: 'prod', actor: 'alice' }));
    expect([e.status, e.code]).toEqual([409, 'gated_channel']);
    expect(e.message).toMatch(/prod is reached by promotion \(dev → canary → prod\)/);
    expect((await p.catalog.resolve('compute', 'prod'))?.version).not.toBe('3.0');
    const r = await p.push({ name: 'compute', version: '3.0', kernelPath: k.path, initrdPath: i.path, channel: 'prod', force: true, actor: 'alice' });
    expect(r.published).toMatchObject({ channel: 'prod', action: 'push', actor: 'alice', reason: 'pushed 3.0 straight onto prod with force: promotion gates skipped', data: { forced: true, gatesSkipped: true } });
    await p.rollback({ name: 'compute', channel: 'prod', actor: 'alice', reason: 'undo the forced push' });
  });

  it('lists and shows images with their channels', async () => {
    const list = await p.list();
    expect(list).toEqual([expect.objectContaining({ name: 'compute', versions: 3, channels: { dev: '2.0', canary: '1.0', prod: '1.0' } })]);
    const show = await p.show('compute');
    expect(show.versions.map((v) => v.version).sort()).toEqual(['1.0', '2.0', '3.0']);
    expect((await rejected(() => p.show('nope'))).status).toBe(404);
  });
});
