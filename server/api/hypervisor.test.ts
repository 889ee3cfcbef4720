// Hypervisor capacity in heartbeats (issue 16 item 2): validated by the contract, stored on the node (nodes.hypervisor,
// migration 0024) even when steady-state beats are buffered, kept by beats without it, and shown by the node API, the
// CLI's `nodes show` and the UI node page. Real PGlite, the real app, the real beat buffer.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb } from '../../test/fakes/db.ts';
import { bootToken, client, createTestApp, sampleFacts, TOKENS } from '../../test/fakes/app.ts';
import { createBeatBuffer, type BeatBuffer } from '../fleet/beats.ts';
import { FakeClock } from '../clock.ts';
import type { DbHandle } from '../db/index.ts';
import { main } from '../cli.ts';
import { describeCapacity } from '../domain/hypervisor.ts';

const U = '0c000000-0000-4000-8000-000000000001';
const D = 'a'.repeat(64);
/** what the compute OS on the test rack reports: a TCG VM with no /dev/kvm and the self-test guest running */
const RACK_NODE = {
  cpus: 1,
  memoryMiB: 987,
  kvm: false,
  kvmDetail: 'no usable /dev/kvm: the CPU has no VT-x/AMD-V, it is off in the firmware, or kvm_intel/kvm_amd did not load',
  qemu: { version: '7.2.22' },
  guests: [{ name: 'selftest', status: 'running', vcpus: 1, memoryMiB: 128 }],
};

describe('hypervisor capacity from heartbeats', () => {
  let db: DbHandle;
  let t: ReturnType<typeof createTestApp>;
  let http: ReturnType<typeof client>;
  let beats: BeatBuffer;
  let cred: string;
  const clock = new FakeClock('2026-12-03T16:00:00Z');

  beforeAll(async () => {
    db = await createTestDb();
    t = createTestApp(db, { clock, beats: (nodes) => (beats = createBeatBuffer({ store: nodes, flushSeconds: 3600 })) });
    http = client(t.app);
    const token = await bootToken(t.app, U);
    expect((await http.post('/api/v1/agent/register', { token, body: { facts: sampleFacts(U) } })).json.state).toBe('ready');
    cred = /bootfarm\.token=(\S+)/.exec((await http.get(`/api/v1/agent/${U}/profile`, { token })).json.cmdline)![1]!;
    expect((await http.post(`/api/v1/agent/${U}/installed`, { token: cred, body: { kernelDigest: D } })).json.state).toBe('active');
  });
  afterAll(async () => {
    await beats?.stop();
    await db?.close();
  });

  const node = async () => (await http.get(`/api/v1/nodes/${U}`, { token: TOKENS.viewer })).json.node;

  it('an active node beating with its capacity has it stored at once, though steady beats wait in the buffer', async () => {
    // a steady beat is buffered: nothing about the node is written (flushSeconds is an hour here)
    expect((await http.post(`/api/v1/agent/${U}/heartbeat`, { token: cred, body: { kernelDigest: D } })).json).toEqual({ state: 'active', next: 'continue' });
    expect((await node()).hypervisor).toBeNull();
    clock.advance(5000);
    const r = await http.post(`/api/v1/agent/${U}/heartbeat`, { token: cred, body: { kernelDigest: D, hypervisor: RACK_NODE } });
    expect(r.status, r.text).toBe(200);
    const n = await node();
    expect(n.hypervisor).toEqual(RACK_NODE);
    expect(n.hypervisorAt).toBe('2026-12-03T16:00:05.000Z');
  });

  it('a beat without it keeps the last one; a changed one replaces it', async () => {
    clock.advance(5000);
    await http.post(`/api/v1/agent/${U}/heartbeat`, { token: cred, body: { kernelDigest: D } });
    expect((await node()).hypervisor).toEqual(RACK_NODE);
    clock.advance(5000);
    const stopped = { ...RACK_NODE, guests: [] };
    expect((await http.post(`/api/v1/agent/${U}/heartbeat`, { token: cred, body: { kernelDigest: D, hypervisor: stopped } })).status).toBe(200);
    expect((await node()).hypervisor).toEqual(stopped);
    expect((await node()).hypervisorAt).toBe('2026-12-03T16:00:15.000Z');
    // back to the rack's report for the views below
    await http.post(`/api/v1/agent/${U}/heartbeat`, { token: cred, body: { kernelDigest: D, hypervisor: RACK_NODE } });
  });

  it.each([
    ['no CPUs', { ...RACK_NODE, cpus: 0 }, /hypervisor\.cpus/],
    ['a guest name with a slash', { ...RACK_NODE, guests: [{ name: '../etc', status: 'running' }] }, /hypervisor\.guests\.0\.name/],
    ['257 guests', { ...RACK_NODE, guests: Array.from({ length: 257 }, (_, i) => ({ name: `g${i}`, status: 'running' })) }, /hypervisor\.guests/],
    ['an unknown field', { ...RACK_NODE, gpus: 4 }, /gpus/],
    ['a kvm detail of 301 characters', { ...RACK_NODE, kvmDetail: 'x'.repeat(301) }, /hypervisor\.kvmDetail/],
  ])('refuses a capacity with %s (400, nothing stored)', async (_what, hypervisor, why) => {
    const r = await http.post(`/api/v1/agent/${U}/heartbeat`, { token: cred, body: { kernelDigest: D, hypervisor } });
    expect(r.status).toBe(400);
    expect(r.text).toMatch(why);
    expect((await node()).hypervisor).toEqual(RACK_NODE);
  });

  it('nodes show prints it in one line', async () => {
    const lines: string[] = [];
    const fetchImpl = (async (url: string | URL | Request, init?: RequestInit) => t.app.request(String(url).replace('http://bootfarm', ''), init)) as typeof fetch;
    expect(await main(['nodes', 'show', U], { out: (l) => lines.push(l), err: () => {}, fetchImpl, env: { BOOTFARM_URL: 'http://bootfarm', BOOTFARM_TOKEN: TOKENS.viewer } })).toBe(0);
    expect(lines.find((l) => l.startsWith('hypervisor'))).toBe(
      'hypervisor        1 CPU, 987 MiB, KVM no (no usable /dev/kvm: the CPU has no VT-x/AMD-V, it is off in the firmware, or kvm_intel/kvm_amd did not load), QEMU 7.2.22; 1 running guest: selftest (reported 2026-12-03T16:00:15.000Z)',
    );
  });

  it('the UI node page has the capacity and the guest table', async () => {
    const res = await t.app.request(`/ui/nodes/${U}`, { headers: { authorization: `Bearer ${TOKENS.viewer}` } });
    const html = await res.text();
    expect(res.status).toBe(200);
    expect(html).toMatch(/<h2>Hypervisor<\/h2>/);
    expect(html).toMatch(/<dt>KVM<\/dt><dd class="warn">not usable: no usable \/dev\/kvm/);
    expect(html).toMatch(/<tr><td class="mono">selftest<\/td><td>running<\/td><td>1<\/td><td>128 MiB<\/td><\/tr>/);
  });
});

describe('describeCapacity', () => {
  it.each([
    ['the rack node', RACK_NODE, /^1 CPU, 987 MiB, KVM no \(no usable .*\), QEMU 7\.2\.22; 1 running guest: selftest$/],
    ['a KVM host with a paused guest', { cpus: 64, memoryMiB: 515_000, kvm: true, qemu: { version: '7.2.22' }, guests: [{ name: 'a', status: 'running' }, { name: 'b', status: 'running' }, { name: 'c', status: 'paused' }] }, /^64 CPUs, 515000 MiB, KVM yes, QEMU 7\.2\.22; 2 running guests: a, b; c paused$/],
    ['an image without QEMU', { cpus: 2, memoryMiB: 1024, kvm: false, kvmDetail: 'no QEMU: spawn qemu-system-x86_64: ENOENT', guests: [] }, /^2 CPUs, 1024 MiB, KVM no \(no QEMU: .*\), no QEMU; 0 running guests$/],
  ])('%s', (_n, h, want) => {
    expect(describeCapacity(h)).toMatch(want);
  });
});
