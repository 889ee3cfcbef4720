// The scenarios of issue 8 against the full product: real QEMU nodes (TCG) PXE boot through bootfarm's own
// DHCP/TFTP/HTTP inside the rack namespace, run the stage-1 agent, kexec into the compute OS, log in to their
// iSCSI LUN and become active; bootfarm rebuilds them through their IPMI BMCs after a failure.
//
// A scenario fails at once, naming the missing piece, when a piece it needs is not there (build/images, a
// Debian package, a module not wired into server/main.ts …): see productPieces() in product.ts. Waits are
// on markers (serial console lines, server events) with timeouts; a failure carries the serial and server log
// tails. Run with `make e2e` (vitest.e2e.config.ts); one VM boots at a time except in scenario 3.
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DATA_BRIDGE, type RackNode } from './rack.ts';
import { BONDED_NETWORK, IMAGES_DIR, missingPieces, requirePieces, startProductRack, type ProductRack } from './product.ts';
import { must, run, waitUntil } from './proc.ts';
import { requireCommand } from '../harness/require.ts';
import { SERIAL_MARKERS, type ServerEvent } from './timing.ts';

// ---- budgets (TCG: ~6 s to the script, 25–40 s to the compute OS on this machine; FACTS.md) ----
const T_DHCP = 60_000;
const T_REGISTER = 150_000;
const T_ACTIVE = 240_000;
const T_FAILED = 90_000;
/** the hypervisor self-test: the compute kernel + a busybox initramfs under KVM nested in the TCG node, ~45 s to
 * userspace by hand (agent/README.md), plus the kernel's download; the heartbeat listing the guest comes first */
const T_GUEST = 240_000;

const SWITCH = 'bfe2e-switch';
const BASE_NEEDS = ['build/images', 'DHCP', 'TFTP', 'image store', 'fleet'];

interface NodeDetail {
  node: { uuid: string; state: string; lastHeartbeat: string | null; initrdDigest: string | null; kernelDigest: string | null; imageVersion: string | null };
  facts: { facts: { system: { uuid: string; serial?: string; manufacturer?: string; product?: string }; bios?: { version?: string }; firmware?: { secureBoot?: string }; kernel?: { lockdown?: string }; nics: { mac: string; name: string; boot?: boolean }[]; lldp?: { interface: string; systemName?: string; chassisId?: string; portDescription?: string }[] } } | null;
  interfaces: { mac: string; switchName: string | null; switchPortDescription: string | null }[];
}

const detail = (pr: ProductRack, uuid: string) => pr.rack.server!.api.get<NodeDetail>(`/api/v1/nodes/${uuid}`);
const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

/** ext4 superblock facts of a node's LUN file (dumpe2fs reads the image file directly; tgtd keeps serving it). */
function lunFs(file: string): { uuid: string; label: string; mounts: number } | null {
  const r = run(['dumpe2fs', '-h', file]);
  if (r.status !== 0) return null;
  const get = (k: string) => new RegExp(`^${k}:\\s*(.*)$`, 'm').exec(r.stdout)?.[1]?.trim() ?? '';
  return { uuid: get('Filesystem UUID'), label: get('Filesystem volume name'), mounts: Number(get('Mount count')) };
}

/** Enrols the node's BMC with bootfarm (the server reaches ipmi_sim on the namespace's 127.0.0.1). */
async function enrolBmc(pr: ProductRack, node: RackNode) {
  await pr.rack.server!.api.put(`/api/v1/nodes/${node.spec.uuid}/bmc`, { driver: 'ipmi', address: '127.0.0.1', port: node.bmc.port, username: node.bmc.username, password: node.bmc.password });
}

/**
 * Day one of a node: it is unknown to bootfarm until its first boot request, so the operator powers it on once
 * with its BMC (`chassis bootdev pxe` + `power on`); as soon as it shows up as `discovered` its BMC is enrolled,
 * and bootfarm powers it off and on again through the BMC (POST /api/v1/nodes/:uuid/power). That boot is the
 * one the scenario follows; returns the id of the last event before it, to wait on newer ones.
 */
async function firstPowerOn(pr: ProductRack, node: RackNode, { labels }: { labels?: Record<string, string> } = {}): Promise<number> {
  const boot = await node.bmc.ipmitool(['chassis', 'bootdev', 'pxe']);
  expect(boot.out).toMatch(/Set Boot Device to pxe/);
  const on = await node.bmc.ipmitool(['chassis', 'power', 'on']);
  expect(on.out).toMatch(/Up\/On/);
  await waitUntil(`${node.spec.name} QEMU running`, 10_000, () => (node.running() ? true : undefined), { context: () => pr.rack.context(node) });
  await pr.rack.waitEvent(node.spec.uuid, 'discovered', (e) => e.toState === 'discovered', T_DHCP, node);
  await enrolBmc(pr, node);
  const api = pr.rack.server!.api;
  // labels before the boot that follows: its profile is chosen by them
  if (labels) expect((await api.raw('PATCH', `/api/v1/nodes/${node.spec.uuid}`, { labels })).status).toBe(200);
  await api.post(`/api/v1/nodes/${node.spec.uuid}/power`, { action: 'off' });
  await waitUntil(`${node.spec.name} powered off by bootfarm`, 20_000, () => (node.running() ? undefined : true), { context: () => pr.rack.context(node) });
  const before = await lastEventId(pr, node.spec.uuid);
  const powerOns = node.powerOns().length;
  const r = await api.post<{ power: string }>(`/api/v1/nodes/${node.spec.uuid}/power`, { action: 'on', bootdev: 'pxe' });
  expect(JSON.stringify(r.power)).toMatch(/on/i);
  await waitUntil(`${node.spec.name} powered on by bootfarm`, 20_000, () => (node.powerOns().length > powerOns && node.running() ? true : undefined), { context: () => pr.rack.context(node) });
  return before;
}

/** Waits for one full boot of a node to `active` after `afterId`, checking the stage-1 → kexec → compute path. */
async function waitBootedToActive(pr: ProductRack, node: RackNode, afterEventId: number): Promise<ServerEvent> {
  const { uuid } = node.spec;
  const newer = (pred: (e: ServerEvent) => boolean) => (e: ServerEvent) => e.id > afterEventId && pred(e);
  await pr.rack.waitEvent(uuid, 'iPXE script served', newer((e) => e.kind === 'phase' && e.reason === 'ipxe-script'), T_DHCP, node);
  await node.waitSerial(SERIAL_MARKERS.kernel, 60_000);
  await pr.rack.waitEvent(uuid, 'agent registered', newer((e) => e.kind === 'phase' && e.reason === 'registered'), T_REGISTER, node);
  // the compute OS is the second kernel after the same power-on: stage-1 kexec'd into it
  await waitUntil(`${node.spec.name} kexec into the compute OS`, T_ACTIVE, () => (node.serial.seenAt(SERIAL_MARKERS.kernel, { nth: 1 }) ? true : undefined), { context: () => pr.rack.context(node) });
  await node.waitSerial(/iscsi: \S+ mounted at \/var\/lib\/bootfarm/, 120_000);
  return pr.rack.waitEvent(uuid, 'active', newer((e) => e.toState === 'active'), T_ACTIVE, node);
}

/** After a failed test (an expect, not only a wait), print every node's serial tail and the server log tail. */
function dumpOnFailure(get: () => ProductRack | undefined) {
  afterEach((ctx) => {
    const pr = get();
    if (ctx.task.result?.state !== 'fail' || !pr) return;
    for (const n of pr.rack.nodes) console.error(pr.rack.context(n));
  });
}

async function lastEventId(pr: ProductRack, uuid: string) {
  return (await pr.rack.events(uuid)).at(-1)?.id ?? 0;
}

// ---------------------------------------------------------------------------------------------------------
describe(`rack: smoke — the server's own DHCP on the bridge, PostgreSQL and Ceph in the namespace`, () => {
  beforeAll(() => requirePieces('DHCP'));
  let pr: ProductRack;
  dumpOnFailure(() => pr);
  beforeAll(async () => {
    pr = await startProductRack({ nodes: [{ name: 'smoke0' }], images: false });
  });
  afterAll(async () => {
    await pr?.stop();
  });

  it('hands the ROM iPXE an address from the pool and /boot.ipxe; the node is discovered by its SMBIOS UUID', async () => {
    const node = pr.rack.nodes[0]!;
    const since = await firstPowerOn(pr, node);
    expect(since).toBeGreaterThan(0);
    await node.waitSerial(SERIAL_MARKERS.dhcp, T_DHCP);
    // iPXE prints the address and then the filename after "Configuring … ok"; the serial port may deliver them a moment
    // later (a clean-clone CI run read "net0: 10.77.0.10" cut mid-line), so wait for the filename line first
    await node.waitSerial(new RegExp(`Filename: http://10\\.77\\.0\\.1:8080/boot\\.ipxe`), 10_000);
    expect(node.serial.lastBoot()).toMatch(/net0: 10\.77\.0\.1\d\d\/255\.255\.255\.0/);
    const d = await detail(pr, node.spec.uuid);
    expect(d.node).toMatchObject({ uuid: node.spec.uuid, state: 'discovered' });
    // the BMC was enrolled by firstPowerOn: bootfarm now reads the node's power state through it
    const bmc = await pr.rack.server!.api.get<{ bmc: { driver: string; address: string; port: number } }>(`/api/v1/nodes/${node.spec.uuid}/bmc`);
    expect(bmc.bmc).toMatchObject({ driver: 'ipmi', address: '127.0.0.1', port: node.bmc.port });
    console.log(await pr.rack.timingTable(node));
  });
});

// ---------------------------------------------------------------------------------------------------------
describe(`rack: one BIOS node — unattended boot, rebuild, image promotion`, () => {
  beforeAll(() => requirePieces(...BASE_NEEDS, 'firmware'));
  let pr: ProductRack;
  dumpOnFailure(() => pr);
  let node: RackNode;
  let fsBefore: ReturnType<typeof lunFs>;

  beforeAll(async () => {
    pr = await startProductRack({ nodes: [{ name: 'node0', firmware: 'bios', biosVersion: '2.4.1' }] });
    node = pr.rack.nodes[0]!;
    // a report-policy baseline this node meets, so "firmware compliant" is a real evaluation
    const r = await pr.rack.server!.api.raw('POST', '/api/v1/firmware/baselines', { name: 'e2e-rack', selector: { manufacturer: node.spec.manufacturer, product: node.spec.product }, policy: 'report', components: [{ type: 'bios', minimum: '2.0.0' }] });
    expect(r.status, r.text).toBeLessThan(300);
  });

  afterAll(async () => {
    await pr?.stop();
  });

  it('scenario 1 — unattended boot: DHCP → iPXE → stage-1 → register → kexec → iSCSI → active with heartbeats; a guest runs on it', async () => {
    const { uuid } = node.spec;
    // the label picks product.ts's `selftest` profile (bootfarm.selftest=hypervisor) for this boot only: scenarios 2
    // and 5 rebuild without it, so CI runs one nested guest
    const since = await firstPowerOn(pr, node, { labels: { selftest: 'hypervisor' } });
    const active = await waitBootedToActive(pr, node, since);
    expect(active.toState).toBe('active');

    // the agent's facts match what the VM was given
    const d = await detail(pr, uuid);
    const f = d.facts!.facts;
    expect(f.system).toMatchObject({ uuid, serial: node.spec.serial, manufacturer: node.spec.manufacturer, product: node.spec.product });
    expect(f.bios?.version).toBe(node.spec.biosVersion);
    expect(f.nics.map((n) => n.mac.toLowerCase())).toContain(node.spec.mac);
    expect(f.lldp).toEqual(expect.arrayContaining([expect.objectContaining({ systemName: SWITCH, portDescription: node.portDescription })]));
    expect(d.interfaces).toEqual(expect.arrayContaining([expect.objectContaining({ mac: node.spec.mac, switchName: SWITCH, switchPortDescription: node.portDescription })]));

    // firmware compliant under the report baseline
    const fw = await pr.rack.server!.api.get<{ compliance: { state: string } }>(`/api/v1/firmware/nodes/${uuid}`);
    expect(fw.compliance.state).toBe('compliant');

    // the lifecycle went the documented way
    const states = (await pr.rack.events(uuid)).filter((e) => e.kind === 'transition').map((e) => e.toState);
    expect(states).toEqual(expect.arrayContaining(['discovered', 'inspecting', 'ready', 'provisioning', 'active']));
    expect(states.indexOf('inspecting')).toBeLessThan(states.indexOf('provisioning'));

    // the compute OS formatted its blank LUN (a write through iSCSI with CHAP) and mounted it
    expect(node.serial.lastBoot()).toMatch(/is blank: mkfs\.ext4/);
    fsBefore = lunFs(pr.rack.tgtd!.luns[0]!.file);
    expect(fsBefore?.label).toBe('bootfarm-state');

    // heartbeats keep arriving
    const hb1 = await waitUntil('a heartbeat', 30_000, async () => (await detail(pr, uuid)).node.lastHeartbeat ?? undefined, { intervalMs: 500 });
    await waitUntil('a later heartbeat', 30_000, async () => {
      const hb = (await detail(pr, uuid)).node.lastHeartbeat;
      return hb && Date.parse(hb) > Date.parse(hb1) ? true : undefined;
    }, { intervalMs: 500, context: () => pr.rack.context(node) });

    // issue 16 item 2: the compute OS is a hypervisor. The heartbeats report its capacity: KVM *is* usable here. The
    // rack's nodes run `-cpu max` under TCG, which advertises AMD-V (svm, AuthenticAMD): kvm_amd loads in the compute
    // OS and KVM runs nested on TCG's SVM emulation (measured 2026-12-03: a Linux guest reached userspace in 45 s
    // under it, 180 s under TCG inside TCG; agent/README.md)
    const hv = await waitUntil('heartbeat with the running self-test guest', T_GUEST, async () => {
      const n = (await detail(pr, uuid)).node as NodeDetail['node'] & { hypervisor?: { cpus: number; memoryMiB: number; kvm: boolean; kvmDetail?: string; qemu?: { version: string }; guests: { name: string; status: string }[] } | null };
      return n.hypervisor?.guests.some((g) => g.name === 'selftest' && g.status === 'running') ? n.hypervisor : undefined;
    }, { intervalMs: 1000, context: () => pr.rack.context(node) });
    console.log(`hypervisor capacity: ${JSON.stringify(hv)}`);
    expect(hv).toMatchObject({ kvm: true, qemu: { version: expect.stringMatching(/^7\.2\./) } });
    expect(hv.cpus).toBeGreaterThanOrEqual(1);
    expect(hv.memoryMiB).toBeGreaterThan(512);
    // the self-test guest (with KVM: the compute kernel fetched from /images/<digest> and a busybox initramfs made on
    // the node) reached userspace: its /init printed the banner on COM1
    const guest = await pr.rack.waitEvent(uuid, 'hypervisor self-test', (e) => e.id > since && e.kind === 'phase' && /^hypervisor-selftest/.test(e.reason ?? ''), T_GUEST, node);
    const result = (guest.data?.['data'] ?? {}) as { ok?: boolean; kind?: string; accel?: string; seconds?: number; banner?: string; guestUptime?: number; kernel?: string; error?: string };
    console.log(`hypervisor self-test: ${JSON.stringify(result)}`);
    expect(guest.reason, JSON.stringify(guest.data)).toBe('hypervisor-selftest');
    expect(result).toMatchObject({ ok: true, kind: 'linux', accel: 'kvm', banner: expect.stringMatching(/^BOOTFARM-GUEST-UP uptime=[\d.]+ kernel=6\.1\.\S+-amd64$/) });
    // later boots of this node (scenarios 2 and 5) go back to the default profile
    expect((await pr.rack.server!.api.raw('PATCH', `/api/v1/nodes/${uuid}`, { labels: { selftest: null } })).status).toBe(200);

    console.log(await pr.rack.timingTable(node));
    // the boot (up to T_ACTIVE) and then the guest (up to T_GUEST twice): more than the suite's 300 s default
  }, 720_000);

  it('scenario 2 — rebuild after failure: QEMU killed, heartbeats stop, bootfarm fails and power-cycles it back to active; the LUN keeps its data', async () => {
    const { uuid } = node.spec;
    expect(fsBefore).toBeTruthy();
    const before = await lastEventId(pr, uuid);
    const powerOnsBefore = node.powerOns().length;
    await node.crash();
    expect(node.running()).toBe(false);

    await pr.rack.waitEvent(uuid, 'failed', (e) => e.id > before && e.toState === 'failed', T_FAILED, node);
    await pr.rack.waitEvent(uuid, 'rebuilding', (e) => e.id > before && e.toState === 'rebuilding', 60_000, node);
    // bootfarm, not the test, powered it on again through the BMC
    await waitUntil('power-on by bootfarm through the BMC', 60_000, () => (node.powerOns().length > powerOnsBefore ? true : undefined), { context: () => pr.rack.context(node) });
    await waitBootedToActive(pr, node, before);

    // same file system (not re-formatted), mounted once more: the data written before the failure survived
    const boot = node.serial.lastBoot();
    expect(boot).not.toMatch(/is blank: mkfs\.ext4/);
    const fsAfter = lunFs(pr.rack.tgtd!.luns[0]!.file);
    expect(fsAfter?.uuid).toBe(fsBefore!.uuid);
    expect(fsAfter!.mounts).toBeGreaterThan(fsBefore!.mounts);
    console.log(await pr.rack.timingTable(node));
  });

  it('scenario 5 — image promotion: a new compute image on canary boots on the node, passes the gate, is promoted to prod and a rebuild boots it', async () => {
    const { uuid } = node.spec;
    // a v2 compute image: the same kernel, the initramfs plus one more (concatenated) newc archive
    const dir = mkdtempSync(join(tmpdir(), 'bfe2e-img-'));
    try {
      copyFileSync(join(IMAGES_DIR, 'compute/vmlinuz'), join(dir, 'vmlinuz'));
      writeFileSync(join(dir, 'release'), 'e2e-2\n');
      const extra = must(['sh', '-c', `cd ${dir} && printf 'release\\n' | cpio -o -H newc --quiet | base64 -w0`]);
      writeFileSync(join(dir, 'initrd.img'), Buffer.concat([readFileSync(join(IMAGES_DIR, 'compute/initrd.img')), Buffer.from(extra, 'base64')]));
      rmSync(join(dir, 'release'));
      const manifest = JSON.parse(readFileSync(join(IMAGES_DIR, 'compute/manifest.json'), 'utf8')) as { cmdline: string };
      writeFileSync(join(dir, 'cmdline'), `${manifest.cmdline}\n`);
      await pr.pushImage(dir, 'compute', 'e2e-2', 'canary');
      const v2Initrd = sha256(join(dir, 'initrd.img'));

      // the node joins the canary profile and is rebuilt onto it
      const lab = await pr.rack.server!.api.raw('PATCH', `/api/v1/nodes/${uuid}`, { labels: { channel: 'canary' } });
      expect(lab.status, lab.text).toBe(200);
      let before = await lastEventId(pr, uuid);
      await pr.rack.server!.api.post(`/api/v1/nodes/${uuid}/actions`, { action: 'rebuild', reason: 'e2e: canary' });
      await waitBootedToActive(pr, node, before);
      expect((await detail(pr, uuid)).node.initrdDigest).toContain(v2Initrd);

      const gates = await pr.rack.server!.api.get<{ gates: { ok: boolean } }>(`/api/v1/images/compute/channels/canary/gates`);
      expect(gates.gates.ok).toBe(true);
      await pr.rack.server!.api.post(`/api/v1/images/compute/promote`, { from: 'canary', to: 'prod', reason: 'e2e: gate passed' });

      // back on prod: a rebuild boots the promoted digest
      const unlab = await pr.rack.server!.api.raw('PATCH', `/api/v1/nodes/${uuid}`, { labels: { channel: null } });
      expect(unlab.status, unlab.text).toBe(200);
      before = await lastEventId(pr, uuid);
      await pr.rack.server!.api.post(`/api/v1/nodes/${uuid}/actions`, { action: 'rebuild', reason: 'e2e: prod' });
      await waitBootedToActive(pr, node, before);
      expect((await detail(pr, uuid)).node.initrdDigest).toContain(v2Initrd);
      console.log(await pr.rack.timingTable(node));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
// The Secure Boot node (sb0) shares this rack's server and runs last, after the two-node scenarios: one PostgreSQL +
// Ceph start-up less than a rack of its own (CI time).
describe(`rack: scenario 3 — two nodes at once, BIOS and UEFI; then a Secure Boot node`, () => {
  beforeAll(() => requirePieces(...BASE_NEEDS, 'OVMF', 'ipxe binaries', 'Secure Boot'));
  let pr: ProductRack;
  dumpOnFailure(() => pr);
  // issue 16 items 1 and 5 on bios0: two further NICs cabled to two switches (rack.ts nics: eth1 → tor-a, eth2 → tor-b
  // on the data bridge), the `bonded` profile (label bond=active-backup), and a cabling plan in which eth1 and eth2
  // are the other way round: as if the rack's two data cables had been swapped
  const TOR_A = 'bfe2e-tor-a';
  const TOR_B = 'bfe2e-tor-b';
  let bondedSince = 0;
  beforeAll(async () => {
    pr = await startProductRack({
      nodes: [
        { name: 'bios0', firmware: 'bios', nics: [{ switch: TOR_A, port: 'tor-a port 1' }, { switch: TOR_B, port: 'tor-b port 1' }] },
        { name: 'uefi0', firmware: 'uefi' },
        { name: 'sb0', firmware: 'uefi-sb', product: 'E2E-Rack-SB' },
      ],
      secureBoot: true,
    });
    const api = pr.rack.server!.api;
    const bios = pr.rack.nodes[0]!;
    const net = await api.raw('PUT', `/api/v1/networks/${BONDED_NETWORK.name}`, { cidr: BONDED_NETWORK.cidr, pool: BONDED_NETWORK.pool });
    expect(net.status, net.text).toBeLessThan(300);
    // the plan (JSON is YAML to the loader): eth0 as cabled, eth1 and eth2 swapped against the rack
    const plan = {
      plans: [
        {
          node: bios.spec.uuid,
          policy: 'warn',
          links: [
            { nic: 'eth0', switch: 'bfe2e-switch', port: bios.portDescription },
            { nic: 'eth1', switch: TOR_B, port: 'tor-b port 1' },
            { nic: 'eth2', switch: TOR_A, port: 'tor-a port 1' },
          ],
        },
      ],
    };
    const load = await api.raw('PUT', '/api/v1/cabling', plan);
    expect(load.status, load.text).toBe(200);
  });
  afterAll(async () => {
    await pr?.stop();
  });

  it('boots a BIOS node (ROM iPXE) and a UEFI node (OVMF PXE → TFTP snponly.efi/ipxe.efi → iPXE) concurrently to active', async () => {
    const [bios, uefi] = pr.rack.nodes as [RackNode, RackNode];
    const [sbios, su] = await Promise.all([firstPowerOn(pr, bios, { labels: { bond: 'active-backup' } }), firstPowerOn(pr, uefi)]);
    bondedSince = sbios;
    await Promise.all([waitBootedToActive(pr, bios, sbios), waitBootedToActive(pr, uefi, su)]);
    // the UEFI node got its iPXE by TFTP from bootfarm (OVMF prints the NBP it downloads)
    expect(uefi.serial.all()).toMatch(/snponly\.efi|ipxe\.efi/);
    for (const n of [bios, uefi]) console.log(await pr.rack.timingTable(n));
  });

  it('issue 16 items 1 and 5 — bios0 bonds eth1 + eth2 (two switches, the boot NIC left out) from its detail with no network-mismatch, the bond carries traffic, and the swapped cables are a cabling failure under warn while it stays active', async () => {
    const bios = pr.rack.nodes[0]!;
    const { uuid } = bios.spec;
    const api = pr.rack.server!.api;
    const [eth1, eth2] = bios.nics as [RackNode['nics'][number], RackNode['nics'][number]];
    const mine = (e: ServerEvent) => e.id > bondedSince;
    const d = await detail(pr, uuid);
    expect(d.node.state).toBe('active');
    const activeAt = Date.parse((await pr.rack.events(uuid)).find((e) => mine(e) && e.toState === 'active')!.at);
    console.log(`bios0 (3 NICs, bonded): power-on → active ${((activeAt - bios.powerOns().at(-1)!) / 1000).toFixed(1)} s`);

    // stage-1 saw every NIC's switch port (its /init brings the further NICs' links up for lldpd) and booted from eth0
    const f = d.facts!.facts;
    expect(f.nics.find((n) => n.boot)?.mac.toLowerCase()).toBe(bios.spec.mac);
    expect(f.lldp).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ interface: 'eth0', systemName: SWITCH, portDescription: bios.portDescription }),
        expect.objectContaining({ interface: 'eth1', systemName: TOR_A, chassisId: TOR_A, portDescription: 'tor-a port 1' }),
        expect.objectContaining({ interface: 'eth2', systemName: TOR_B, chassisId: TOR_B, portDescription: 'tor-b port 1' }),
      ]),
    );

    // both kernels took their lease on eth0: stage-1 from iPXE's BOOTIF, the compute OS from the BOOTIF the server put
    // on its command line (its /init would otherwise take the first NIC with a carrier)
    const boot = bios.serial.lastBoot();
    const kexecAt = boot.lastIndexOf('Linux version');
    expect(boot.indexOf('Linux version')).toBeLessThan(kexecAt);
    const compute = boot.slice(kexecAt);
    expect(compute).toContain(`bootif=01-${bios.spec.mac.replace(/:/g, '-')} `);
    expect(compute).toMatch(new RegExp(`boot NIC eth0 \\(${bios.spec.mac}`));

    // the compute OS applied the detail's bond with iproute2 and read it back (agent/network): eth1 + eth2 on two
    // switches, active-backup, its IPAM address on bond0. The boot NIC eth0 is not a member: its DHCP address carries
    // the iSCSI disk and the control channel, which agent/network never cuts, so the server leaves it out of the bond
    // (server/domain/ipam.ts chooseBondMembers) — the bond is the node's data path, not its boot path.
    const evs = (await pr.rack.events(uuid)).filter(mine);
    expect(evs.filter((e) => e.reason === 'network-failed'), 'network-failed events').toEqual([]);
    const applied = evs.find((e) => e.reason === 'network-configured');
    expect(applied, 'network-configured event').toBeDefined();
    const data = (applied!.data?.['data'] ?? {}) as { ran?: string[][]; configured?: { addresses: { device: string; address: string }[]; bond?: { name: string; mode: string; members: string[] } } };
    console.log(`bios0 network-configured: ${applied!.data?.['message']}; read back ${JSON.stringify(data.configured)}`);
    expect(data.configured?.bond).toEqual({ name: 'bond0', mode: 'active-backup', members: expect.arrayContaining(['eth1', 'eth2']) });
    expect(data.configured?.bond?.members).toHaveLength(2);
    // allocated at the node's first detail (stage-1 or the compute OS), kept across rebuilds
    const allocated = (await pr.rack.events(uuid)).find((e) => e.reason === 'address-allocated');
    const address = String(allocated?.data?.['address']);
    expect(address).toMatch(/^10\.78\.0\.\d+$/);
    expect(data.configured?.addresses).toEqual([{ device: 'bond0', address: `${address}/24` }]);

    // the heartbeats carry that read-back and the server compares it with what detail handed out: two heartbeats
    // after the network came up, no network-mismatch
    const appliedAt = Date.parse(applied!.at);
    await waitUntil('two heartbeats after the network came up', 60_000, async () => {
      const hb = (await detail(pr, uuid)).node.lastHeartbeat;
      return hb && Date.parse(hb) > appliedAt + 10_000 ? true : undefined;
    }, { intervalMs: 1000, context: () => pr.rack.context(bios) });
    expect((await pr.rack.events(uuid)).filter((e) => mine(e) && e.reason === 'network-mismatch')).toEqual([]);

    // the bond carries traffic: the data bridge holds only eth1 and eth2, and the rack pings the bond's address there
    // (busybox's ping: this machine has no iputils-ping; busybox is in deps/dhcp.txt)
    requireCommand('busybox', 'busybox');
    const ping = run(['busybox', 'ping', '-c', '3', '-W', '2', '-I', DATA_BRIDGE, address], { netns: pr.rack.net.netns });
    expect(ping.status, ping.stdout + ping.stderr).toBe(0);
    const neigh = JSON.parse(run(['ip', '-j', 'neigh', 'show', address, 'dev', DATA_BRIDGE], { netns: pr.rack.net.netns }).stdout || '[]') as { lladdr?: string }[];
    console.log(`ping ${address} through bond0: ${/\d+ packets received/.exec(ping.stdout)?.[0]}, answered from ${neigh[0]?.lladdr}`);
    expect([eth1.mac, eth2.mac]).toContain(neigh[0]?.lladdr);

    // cabling (item 5): eth1 and eth2 are swapped against the plan; warn reports it and the node stays active
    const cablingEv = evs.find((e) => e.kind === 'cabling');
    expect(cablingEv?.reason).toMatch(/eth1 and eth2 are swapped/);
    const report = await api.get<{ uuid: string; nodeState: string; cabling: { status: string; policy: string; action: string; reason?: string; problems: { kind: string; nic: string; with?: string }[] } }>(`/api/v1/firmware/nodes/${uuid}`);
    console.log(`compliance report (JSON) cabling of bios0: ${JSON.stringify(report.cabling)}`);
    expect(report.cabling).toMatchObject({ status: 'failed', policy: 'warn', action: 'warn' });
    expect(report.cabling.problems).toEqual([expect.objectContaining({ kind: 'swapped', nic: 'eth1', with: 'eth2' }), expect.objectContaining({ kind: 'swapped', nic: 'eth2', with: 'eth1' })]);
    // "seen on" names the switch and its port ID (lldpd sends the port's MAC as its ID; the plan matched its description)
    expect(report.cabling.reason).toMatch(/eth1 and eth2 are swapped: eth1 expected on bfe2e-tor-b tor-b port 1, seen on bfe2e-tor-a /);
    // the fleet's compliance report (JSON) carries the same beside firmware
    const fleetReport = await api.get<{ nodes: { uuid: string; cabling: { status: string; reason?: string } }[] }>('/api/v1/reports/firmware');
    expect(fleetReport.nodes.find((r) => r.uuid === uuid)?.cabling).toMatchObject({ status: 'failed', reason: report.cabling.reason });
    expect(report.nodeState).toBe('active');
    expect((await detail(pr, uuid)).node.state).toBe('active');
  });

  it('issue 12 — a control-plane outage of 3× the failure threshold fails no node and sends no BMC command; a VM killed after it is rebuilt', async () => {
    // the two nodes of the first test (sb0 is still off)
    const nodes = pr.rack.nodes.slice(0, 2);
    for (const n of nodes) expect((await detail(pr, n.spec.uuid)).node.state).toBe('active');
    const threshold = 5 * 3 * 1000; // fleet.heartbeat: interval 5 s × 3 missed (product.ts)
    const bmcSets = (n: RackNode) => (existsSync(join(n.files.dir, 'calls.log')) ? readFileSync(join(n.files.dir, 'calls.log'), 'utf8').split('\n').filter((l) => / call set /.test(l)).length : 0);
    const setsBefore = nodes.map(bmcSets);
    const powerOnsBefore = nodes.map((n) => n.powerOns().length);
    const eventsBefore = await Promise.all(nodes.map((n) => lastEventId(pr, n.spec.uuid)));

    await pr.stopServer();
    await new Promise((r) => setTimeout(r, 3 * threshold));
    await pr.startServer();
    // two more thresholds with the server up: every verdict it could reach about that outage has been reached
    await new Promise((r) => setTimeout(r, 2 * threshold + 5_000));

    for (const [i, n] of nodes.entries()) {
      const evs = (await pr.rack.events(n.spec.uuid)).filter((e) => e.id > eventsBefore[i]!);
      expect(evs.filter((e) => e.kind === 'transition'), `${n.spec.name} changed state`).toEqual([]);
      expect((await detail(pr, n.spec.uuid)).node.state).toBe('active');
      // the BMC simulator saw status reads at most: no power or boot-device command
      expect(bmcSets(n), `${n.spec.name}: BMC set commands`).toBe(setsBefore[i]);
      expect(n.powerOns()).toHaveLength(powerOnsBefore[i]!);
      expect(n.running()).toBe(true);
    }
    const fleet = await pr.rack.server!.api.get<{ degraded: boolean; events: { kind: string; reason: string }[] }>('/api/v1/fleet');
    expect(fleet.degraded).toBe(false);
    expect(fleet.events.map((e) => e.kind)).toContain('leader');

    // then a real failure is still repaired: one VM dies, bootfarm powers it back on through its BMC
    const victim = nodes[0]!;
    const before = await lastEventId(pr, victim.spec.uuid);
    const ons = victim.powerOns().length;
    await victim.crash();
    await pr.rack.waitEvent(victim.spec.uuid, 'failed', (e) => e.id > before && e.toState === 'failed', T_FAILED, victim);
    await waitUntil('power-on by bootfarm through the BMC', 120_000, () => (victim.powerOns().length > ons ? true : undefined), { context: () => pr.rack.context(victim) });
    await waitBootedToActive(pr, victim, before);
  });

  it('Secure Boot (issue 19 item 1): enforcing OVMF refuses unsigned iPXE; an enrolled shim-grub node boots shim → GRUB → the signed stage-1 kernel, reports Secure Boot and lockdown, and reaches active', async () => {
    const sb = pr.rack.nodes[2]!;
    const { uuid } = sb.spec;
    const api = pr.rack.server!.api;
    // the compliance report's view: a baseline that requires Secure Boot (issue 19), report only
    const bl = await api.raw('POST', '/api/v1/firmware/baselines', { name: 'e2e-secure-boot', selector: { manufacturer: sb.spec.manufacturer, product: sb.spec.product }, policy: 'report', components: [{ type: 'bios', minimum: '0.0.1' }], secureBoot: 'required' });
    expect(bl.status, bl.text).toBeLessThan(300);

    // 1. negative: an unknown machine is handed iPXE (snponly.efi), which is not signed: the firmware refuses to run it
    expect((await sb.bmc.ipmitool(['chassis', 'bootdev', 'pxe'])).out).toMatch(/Set Boot Device to pxe/);
    expect((await sb.bmc.ipmitool(['chassis', 'power', 'on'])).out).toMatch(/Up\/On/);
    await sb.waitSerial(/NBP filename is snponly\.efi/, T_DHCP);
    await sb.waitSerial(/Access Denied|Security Violation/, 60_000);
    expect(sb.serial.lastBoot()).not.toMatch(SERIAL_MARKERS.kernel);
    // iPXE never ran, so it never asked for /ipxe/<uuid>: the server has not heard of this UUID
    expect(await pr.rack.events(uuid)).toEqual([]);
    expect((await sb.bmc.ipmitool(['chassis', 'power', 'off'])).out).toMatch(/Down\/Off/);
    await waitUntil('sb0 off', 20_000, () => (sb.running() ? undefined : true));

    // 2. the operator enrols it (UUID, MAC, BMC, label secureboot=yes → profile secure, bootloader shim-grub)
    const csv = `uuid,macs,label.secureboot,bmc_driver,bmc_address,bmc_port,bmc_username,bmc_password\n${uuid},${sb.spec.mac},yes,ipmi,127.0.0.1,${sb.bmc.port},${sb.bmc.username},${sb.bmc.password}\n`;
    const en = await api.raw('POST', '/api/v1/nodes/enroll', { format: 'csv', inventory: csv });
    expect(en.status, en.text).toBe(201);
    const before = await lastEventId(pr, uuid);
    const ons = sb.powerOns().length;
    await api.post(`/api/v1/nodes/${uuid}/power`, { action: 'on', bootdev: 'pxe' });
    await waitUntil('sb0 powered on by bootfarm', 20_000, () => (sb.powerOns().length > ons && sb.running() ? true : undefined), { context: () => pr.rack.context(sb) });
    const powerOnAt = sb.powerOns().at(-1)!;

    // 3. the signed chain: OVMF → shimx64.efi (TFTP) → grubx64.efi → /grub/grub.cfg → /grub/<uuid>.cfg (over TFTP)
    await sb.waitSerial(/NBP filename is shimx64\.efi/, T_DHCP);
    const grubCfg = await pr.rack.waitEvent(uuid, 'GRUB config served', (e) => e.id > before && e.kind === 'phase' && e.reason === 'ipxe-script', 180_000, sb);
    expect(grubCfg.data).toMatchObject({ loader: 'shim-grub' });
    const stage1At = await sb.waitSerial(SERIAL_MARKERS.kernel, 600_000);
    await pr.rack.waitEvent(uuid, 'agent registered', (e) => e.id > before && e.kind === 'phase' && e.reason === 'registered', T_REGISTER, sb);
    const registeredAt = Date.now();
    const boot = sb.serial.lastBoot();
    // Debian's kernel says so itself when the firmware enforces Secure Boot and it locks down (6.1.0-57, measured)
    expect(boot).toMatch(/EFI stub: UEFI Secure Boot is enabled/);
    expect(boot).toMatch(/secureboot: Secure boot enabled/);
    expect(boot).toMatch(/Kernel is locked down from EFI Secure Boot/);
    // what makes kexec -s of a Debian-signed kernel possible: the kernel's compiled-in keys are only its build key,
    // but shim hands its vendor certificate (Debian Secure Boot CA) over in MokListRT, which lands in the platform
    // keyring that kexec_file_load also verifies against
    expect(boot).toMatch(/Loading X\.509 certificate: UEFI:MokListRT[^\n]*\n[^\n]*Loaded X\.509 cert 'Debian Secure Boot CA/);

    // 4. what the agent saw, through the API: Secure Boot on, kernel locked down; the compliance report agrees
    const f = (await detail(pr, uuid)).facts!.facts;
    expect(f.system.uuid).toBe(uuid);
    expect(f.firmware?.secureBoot).toBe('enabled');
    expect(['integrity', 'confidentiality']).toContain(f.kernel?.lockdown);
    const fw = await waitUntil('compliance report with the secure-boot component', 30_000, async () => {
      const row = await api.get<{ compliance: { components: { component: string; status: string; current: string | null }[] } }>(`/api/v1/firmware/nodes/${uuid}`);
      return row.compliance.components.find((c) => c.component === 'secure-boot');
    }, { intervalMs: 1000 });
    expect(fw).toMatchObject({ status: 'compliant', current: 'enabled' });

    // 5. kexec_file_load of the signed compute kernel under lockdown, then active
    const outcome = await waitUntil('kexec into compute (active) or kexec-refused', T_ACTIVE, async () => {
      const evs = (await pr.rack.events(uuid)).filter((e) => e.id > before);
      return evs.find((e) => e.toState === 'active' || e.reason === 'kexec-refused');
    }, { intervalMs: 1000, context: () => pr.rack.context(sb) });
    console.log(`sb0 kexec outcome: ${JSON.stringify(outcome)}`);
    expect(outcome.reason === 'kexec-refused' ? `kexec refused: ${JSON.stringify(outcome.data)}` : 'active').toBe('active');
    expect(sb.serial.seenAt(SERIAL_MARKERS.kernel, { nth: 1 })).toBeDefined();
    // the agent loaded the compute kernel with kexec_file_load (the only load lockdown allows), and the kexec'd kernel
    // still sees Secure Boot (kexec_file_load hands the EFI state on) and locks itself down again
    const started = (await pr.rack.events(uuid)).find((e) => e.id > before && e.reason === 'kexec-started');
    expect(started?.data).toMatchObject({ data: { fileLoad: true } });
    expect(sb.serial.lastBoot().match(/Kernel is locked down from EFI Secure Boot/g)).toHaveLength(2);
    const activeAt = new Date(outcome.at).getTime();
    console.log(`Secure Boot chain timing (sb0): power-on → GRUB config ${(new Date(grubCfg.at).getTime() - powerOnAt) / 1000} s → stage-1 kernel ${(stage1At - powerOnAt) / 1000} s → registered ≤${(registeredAt - powerOnAt) / 1000} s → active ${(activeAt - powerOnAt) / 1000} s`);
    console.log(await pr.rack.timingTable(sb));
  }, 900_000);
});

// ---------------------------------------------------------------------------------------------------------
describe(`rack: scenario 4 — firmware enforce holds an outdated node`, () => {
  beforeAll(() => requirePieces(...BASE_NEEDS, 'firmware'));
  let pr: ProductRack;
  dumpOnFailure(() => pr);
  beforeAll(async () => {
    pr = await startProductRack({ nodes: [{ name: 'old0', firmware: 'bios', biosVersion: '1.0.3', product: 'E2E-Rack-Old' }] });
    const r = await pr.rack.server!.api.raw('POST', '/api/v1/firmware/baselines', { name: 'e2e-enforce', selector: { manufacturer: 'Bootfarm Labs', product: 'E2E-Rack-Old' }, policy: 'enforce', components: [{ type: 'bios', minimum: '2.0.0' }] });
    expect(r.status, r.text).toBeLessThan(300);
  });
  afterAll(async () => {
    await pr?.stop();
  });

  it('registers the node, reports its BIOS as outdated and never provisions it', async () => {
    const node = pr.rack.nodes[0]!;
    const { uuid } = node.spec;
    const since = await firstPowerOn(pr, node);
    await pr.rack.waitEvent(uuid, 'agent registered', (e) => e.id > since && e.kind === 'phase' && e.reason === 'registered', T_REGISTER, node);
    const fw = await waitUntil('firmware report: bios outdated', 60_000, async () => {
      const row = await pr.rack.server!.api.get<{ compliance: { state: string; components: { component: string; status: string }[] } }>(`/api/v1/firmware/nodes/${uuid}`);
      return row.compliance.components.some((c) => c.component === 'bios' && ['outdated', 'failed'].includes(c.status)) ? row : undefined;
    }, { intervalMs: 1000, context: () => pr.rack.context(node) });
    expect(fw.compliance.state).not.toBe('compliant');
    // held: the node is not provisioned and stage-1 never kexecs into the compute OS
    const d = await detail(pr, uuid);
    expect(['provisioning', 'active']).not.toContain(d.node.state);
    const states = (await pr.rack.events(uuid)).map((e) => e.toState);
    expect(states).not.toContain('provisioning');
    expect(node.serial.seenAt(SERIAL_MARKERS.kernel, { nth: 1 })).toBeUndefined();
  });
});

// one line in the summary that names every missing piece at once (each scenario also fails on its own)
describe('rack scenarios: prerequisites', () => {
  it('every product piece the scenarios need is there', () => {
    expect(missingPieces()).toEqual([]);
    expect(existsSync(join(IMAGES_DIR, 'stage1/manifest.json'))).toBe(true);
  });
});
