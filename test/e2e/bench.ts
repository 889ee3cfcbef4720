// Boot-path timings on the rack (`make bench-e2e`; results in BENCHMARKS.md). Each variant boots one QEMU
// node (TCG) N times through its BMC and times, from the BMC power-on, the first serial-console line of each
// phase up to the per-node iPXE script:
//   ra-bootfarm      RA on,  dnsmasq DHCP, bootfarm HTTP (the rack's default)
//   nora-bootfarm    RA off, dnsmasq DHCP, bootfarm HTTP (iPXE waits for IPv6 autoconfiguration)
//   ra-nginx         RA on,  dnsmasq DHCP, nginx serving the same two scripts as static files (baseline)
//   ra-bfdhcp        RA on,  bootfarm's own DHCP module (boot/dhcp), bootfarm HTTP
//   uefi-ra-bootfarm RA on,  OVMF PXE → dnsmasq TFTP snponly.efi → iPXE → bootfarm HTTP
//   uefi-ra-bftftp   RA on,  OVMF PXE → bootfarm TFTP (boot/tftp) snponly.efi → iPXE → bootfarm HTTP
//   stage1-nginx     RA on,  dnsmasq, nginx: a static script + build/images/stage1 → time to the kernel
//   stage1-bootfarm  the full product (bootfarm DHCP, scripts, images from Ceph RGW via its cache) → same
// Usage: node --import tsx test/e2e/bench.ts [--runs N] [--only name,name]
import { mkdirSync, writeFileSync, existsSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { renderBootScript } from '../../boot/ipxe/script.ts';
import { createRack, repoRoot, type Rack, type RackNode } from './rack.ts';
import { waitUntil } from './proc.ts';
import { startBootfarmDhcp, startBootfarmTftp, startNginx } from './services.ts';
import { SERIAL_MARKERS } from './timing.ts';
import { IMAGES_DIR, startProductRack } from './product.ts';

interface Sample {
  dhcp?: number;
  script?: number;
  nodeScript?: number;
  /** stage-1 kernel started (only variants that boot it) */
  kernel?: number;
}

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, only: { type: 'string' } } });
const RUNS = Number(values.runs);
const only = values.only?.split(',');

async function bootOnce(node: RackNode, rack: Rack, untilKernel = false): Promise<Sample> {
  const boots = node.serial.boots();
  const on = await node.bmc.ipmitool(['chassis', 'power', 'on']);
  if (!/Up\/On/.test(on.out)) throw new Error(`power on failed: ${on.out}`);
  await waitUntil('power-on marker', 10_000, () => (node.serial.boots() > boots ? true : undefined));
  const t0 = node.powerOns().at(-1)!;
  await node.waitSerial(untilKernel ? SERIAL_MARKERS.kernel : SERIAL_MARKERS.nodeScript, 90_000);
  const s = node.serial;
  const sample: Sample = { dhcp: (s.seenAt(SERIAL_MARKERS.dhcp) ?? NaN) - t0, script: (s.seenAt(SERIAL_MARKERS.ipxeScript) ?? NaN) - t0, nodeScript: (s.seenAt(SERIAL_MARKERS.nodeScript) ?? NaN) - t0, kernel: (s.seenAt(SERIAL_MARKERS.kernel) ?? NaN) - t0 };
  await node.bmc.ipmitool(['chassis', 'power', 'off']);
  await waitUntil('QEMU stopped', 10_000, () => (node.running() ? undefined : true), { context: () => rack.context(node) });
  return sample;
}

function startStaticScripts(rack: Rack, port: number, uuid: string): void {
  const root = join(rack.dir, 'www');
  mkdirSync(join(root, 'ipxe'), { recursive: true });
  // the same scripts bootfarm serves: /boot.ipxe chaining to /ipxe/${uuid}, and a per-node script
  writeFileSync(join(root, 'boot.ipxe'), renderBootScript({ baseUrl: `http://${rack.net.ip}:${port}` }));
  writeFileSync(join(root, 'ipxe', uuid), '#!ipxe\necho bootfarm: static per-node script\nsleep 30\n');
  startNginx({ netns: rack.net.netns, dir: rack.dir, ip: rack.net.ip, port, root });
}

interface Variant {
  name: string;
  ra: boolean;
  firmware: 'bios' | 'uefi';
  /** time to the stage-1 kernel instead of the per-node script */
  untilKernel?: boolean;
  /** a full product rack (PostgreSQL, Ceph, images pushed) instead of a bare one */
  product?: boolean;
  setup(rack: Rack): Promise<void>;
}

/** The stage-1 kernel + initramfs from nginx with a static script, the same files bootfarm serves from its store. */
function startStaticStage1(rack: Rack, port: number): void {
  const root = join(rack.dir, 'www-stage1');
  mkdirSync(root, { recursive: true });
  for (const f of ['vmlinuz', 'initrd.img']) symlinkSync(join(IMAGES_DIR, 'stage1', f), join(root, f));
  const base = `http://${rack.net.ip}:${port}`;
  writeFileSync(join(root, 'boot.ipxe'), `#!ipxe\nkernel ${base}/vmlinuz initrd=initrd.img console=ttyS0,115200\ninitrd --name initrd.img ${base}/initrd.img\nboot\n`);
  startNginx({ netns: rack.net.netns, dir: rack.dir, ip: rack.net.ip, port, root });
}

const variants: Variant[] = [
  {
    name: 'ra-bootfarm',
    ra: true,
    firmware: 'bios',
    async setup(rack) {
      const s = await rack.startServer({ port: 8080 });
      rack.startDnsmasq(`${s.url}/boot.ipxe`);
    },
  },
  {
    name: 'nora-bootfarm',
    ra: false,
    firmware: 'bios',
    async setup(rack) {
      const s = await rack.startServer({ port: 8080 });
      rack.startDnsmasq(`${s.url}/boot.ipxe`);
    },
  },
  {
    name: 'ra-nginx',
    ra: true,
    firmware: 'bios',
    async setup(rack) {
      startStaticScripts(rack, 8081, rack.nodes[0]!.spec.uuid);
      rack.startDnsmasq(`http://${rack.net.ip}:8081/boot.ipxe`);
    },
  },
  {
    name: 'ra-bfdhcp',
    ra: true,
    firmware: 'bios',
    async setup(rack) {
      const s = await rack.startServer({ port: 8080 });
      await startBootfarmDhcp({ netns: rack.net.netns, dir: rack.dir, repoRoot, iface: rack.net.bridge, serverIp: rack.net.ip, httpBase: s.url });
    },
  },
  {
    name: 'uefi-ra-bootfarm',
    ra: true,
    firmware: 'uefi',
    async setup(rack) {
      const s = await rack.startServer({ port: 8080 });
      rack.startDnsmasq(`${s.url}/boot.ipxe`, '/usr/lib/ipxe');
    },
  },
  {
    name: 'stage1-nginx',
    ra: true,
    firmware: 'bios',
    untilKernel: true,
    async setup(rack) {
      startStaticStage1(rack, 8081);
      rack.startDnsmasq(`http://${rack.net.ip}:8081/boot.ipxe`);
    },
  },
  {
    name: 'stage1-bootfarm',
    ra: true,
    firmware: 'bios',
    untilKernel: true,
    product: true,
    async setup() {},
  },
  {
    name: 'uefi-ra-bftftp',
    ra: true,
    firmware: 'uefi',
    async setup(rack) {
      const s = await rack.startServer({ port: 8080 });
      await startBootfarmTftp({ netns: rack.net.netns, dir: rack.dir, repoRoot, address: rack.net.ip });
      rack.startDnsmasq(`${s.url}/boot.ipxe`, undefined, rack.net.ip);
    },
  },
];

const fmt = (ms: number | undefined) => (ms === undefined || Number.isNaN(ms) ? '—' : `${(ms / 1000).toFixed(2)} s`);
const median = (xs: number[]) => {
  const v = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  return v.length ? v[Math.floor((v.length - 1) / 2)] : NaN;
};

const rows: string[] = [];
for (const v of variants) {
  if (only && !only.includes(v.name)) continue;
  if (v.firmware === 'uefi' && !existsSync('/usr/share/ovmf/OVMF.fd')) continue;
  const product = v.product ? await startProductRack({ nodes: [{ name: 'bench0', firmware: v.firmware }] }) : undefined;
  const rack = product?.rack ?? (await createRack({ nodes: [{ name: 'bench0', firmware: v.firmware }], ra: v.ra, lldp: false, iscsi: false }));
  try {
    await v.setup(rack);
    const samples: Sample[] = [];
    for (let i = 0; i < RUNS; i++) samples.push(await bootOnce(rack.nodes[0]!, rack, v.untilKernel));
    const m = (k: keyof Sample) => median(samples.map((s) => s[k] ?? NaN));
    const last: keyof Sample = v.untilKernel ? 'kernel' : 'nodeScript';
    const row = `| ${v.name} | ${RUNS} | ${fmt(m('dhcp'))} | ${fmt(m('script'))} | ${fmt(m('nodeScript'))} | ${fmt(m('kernel'))} | ${samples.map((s) => fmt(s[last])).join(', ')} |`;
    rows.push(row);
    console.log(row);
  } catch (e) {
    console.error(`${v.name}: ${(e as Error).message}`);
    rows.push(`| ${v.name} | failed: ${(e as Error).message.split('\n')[0]} |`);
  } finally {
    if (product) await product.stop();
    else await rack.destroy();
  }
}
console.log('\n| variant | runs | DHCP done (median) | /boot.ipxe fetched | /ipxe/${uuid} fetched | stage-1 kernel up | each run (last phase) |\n|---|---|---|---|---|---|---|');
for (const r of rows) console.log(r);
