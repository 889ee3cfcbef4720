// A rack of simulated nodes (node.ts) sharing one DHCP client socket, started over a spread like a rack powering
// on. Reusable: the HA rack (test/e2e/ha) runs 200 of them; the boot-storm simulator (bench/storm, issue 15) runs
// 1,000 from their PXE ROMs with the real image bytes, varied hardware and at most `concurrency` machines between
// power-on and installed at once (a provisioner powering on in batches, as Metal3 does 20 at a time).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createDhcpClient, type Retransmit } from './dhcp.ts';
import { runSimNode, SIM_PHASES, type SimHardware, type SimNodeReport, type SimNodeSpec, type SimPhase } from './node.ts';

const exec = promisify(execFile);

export interface SimFleetOptions {
  count: number;
  /** distinguishes fleets of different runs/tests: 0–255, in the UUIDs and MACs */
  fleetId?: number;
  /** the interface the leased addresses go on (inside the simulator's namespace) */
  iface: string;
  /** prefix length for the leased addresses when the lease gives no mask */
  prefixLen?: number;
  /** node i starts at i * spreadMs / count */
  spreadMs?: number;
  images?: 'head' | 'full' | 'stream';
  backoff?: { baseMs: number; capMs: number };
  /** 'pxe': every node starts as its PXE ROM (DHCP, TFTP of the iPXE binary); default 'ipxe' */
  firmware?: 'pxe' | 'ipxe';
  /** DHCP retransmission (dhcp.ts; RFC2131_RETRANSMIT for the storm) */
  retransmit?: Retransmit;
  /** at most this many nodes between power-on and installed at once (default: all) */
  concurrency?: number;
  /** varied hardware and a quarter of the nodes on EFI (simSpec's `varied`) */
  varied?: boolean;
  /** the TFTP client of the EFI nodes (node.ts SimNodeDeps.efiTftp) */
  efiTftp?: 'ovmf' | 'pxe-rom';
  /** every chunk of image body any node received */
  onBytes?: (n: number) => void;
  log?: (line: string) => void;
  /** called once per node that gave up (its report says why) */
  onFailed?: (rep: SimNodeReport) => void;
}

export interface SimFleet {
  specs: SimNodeSpec[];
  /** every node's report so far (live objects) */
  reports(): SimNodeReport[];
  counts(): Record<SimPhase, number>;
  /** stops the heartbeats and resolves with the final reports */
  stop(): Promise<SimNodeReport[]>;
}

const hex = (n: number, w: number) => n.toString(16).padStart(w, '0');

// Hardware of the kind a rack is made of: the vendors' own dmidecode strings, CPU model names as /proc/cpuinfo
// prints them, NIC drivers and PCI ids as ethtool -i / lspci -n show them.
const TB = 1e12;
const MODELS: { manufacturer: string; product: string; biosVendor: string; biosVersion: string; cpuModel: string; sockets: number; cores: number; memoryGiB: number[]; disks: SimHardware['disks']; nics: SimHardware['nics'] }[] = [
  { manufacturer: 'Dell Inc.', product: 'PowerEdge R650', biosVendor: 'Dell Inc.', biosVersion: '1.13.2', cpuModel: 'Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz', sockets: 2, cores: 32, memoryGiB: [256, 512], disks: [{ name: 'nvme0n1', sizeBytes: 1.6 * TB, model: 'Dell Ent NVMe P5600 MU U.2 1.6TB', rotational: false }], nics: [{ name: 'eno12399np0', driver: 'bnxt_en', speedMbps: 25000, pciId: '14e4:16d7' }, { name: 'eno12409np1', driver: 'bnxt_en', speedMbps: 25000, pciId: '14e4:16d7' }] },
  { manufacturer: 'HPE', product: 'ProLiant DL360 Gen10 Plus', biosVendor: 'HPE', biosVersion: 'U46', cpuModel: 'Intel(R) Xeon(R) Silver 4314 CPU @ 2.40GHz', sockets: 2, cores: 16, memoryGiB: [128, 256], disks: [{ name: 'sda', sizeBytes: 480e9, model: 'MR416i-a Gen10+', rotational: false }, { name: 'sdb', sizeBytes: 1.92 * TB, model: 'MR416i-a Gen10+', rotational: false }], nics: [{ name: 'ens1f0np0', driver: 'mlx5_core', speedMbps: 25000, pciId: '15b3:1017' }, { name: 'ens1f1np1', driver: 'mlx5_core', speedMbps: 25000, pciId: '15b3:1017' }, { name: 'eno1', driver: 'tg3', speedMbps: 1000, pciId: '14e4:1657' }] },
  { manufacturer: 'Supermicro', product: 'SYS-1029P-WTR', biosVendor: 'American Megatrends Inc.', biosVersion: '3.4', cpuModel: 'Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz', sockets: 2, cores: 20, memoryGiB: [192, 384], disks: [{ name: 'sda', sizeBytes: 960e9, model: 'SAMSUNG MZ7LH960HAJR', rotational: false }, { name: 'sdb', sizeBytes: 8 * TB, model: 'ST8000NM000A-2KE101', rotational: true }], nics: [{ name: 'eno1', driver: 'ixgbe', speedMbps: 10000, pciId: '8086:1563' }, { name: 'eno2', driver: 'ixgbe', speedMbps: 10000, pciId: '8086:1563' }] },
  { manufacturer: 'Lenovo', product: 'ThinkSystem SR630 V2', biosVendor: 'Lenovo', biosVersion: 'AFE124C-1.40', cpuModel: 'Intel(R) Xeon(R) Gold 5318Y CPU @ 2.10GHz', sockets: 1, cores: 24, memoryGiB: [128], disks: [{ name: 'nvme0n1', sizeBytes: 960e9, model: 'SAMSUNG MZQL2960HCJR-00A07', rotational: false }, { name: 'nvme1n1', sizeBytes: 960e9, model: 'SAMSUNG MZQL2960HCJR-00A07', rotational: false }], nics: [{ name: 'ens3f0', driver: 'i40e', speedMbps: 10000, pciId: '8086:1572' }, { name: 'ens3f1', driver: 'i40e', speedMbps: 10000, pciId: '8086:1572' }] },
  { manufacturer: 'Gigabyte Technology Co., Ltd.', product: 'R282-Z91-00', biosVendor: 'American Megatrends International, LLC.', biosVersion: 'R20', cpuModel: 'AMD EPYC 7543 32-Core Processor', sockets: 2, cores: 32, memoryGiB: [512, 1024], disks: [{ name: 'nvme0n1', sizeBytes: 3.84 * TB, model: 'SAMSUNG MZQL23T8HCLS-00A07', rotational: false }], nics: [{ name: 'enp65s0f0np0', driver: 'mlx5_core', speedMbps: 100000, pciId: '15b3:101d' }, { name: 'enp65s0f1np1', driver: 'mlx5_core', speedMbps: 100000, pciId: '15b3:101d' }] },
];

/** Node `index` of fleet `fleetId`. `varied`: hardware from MODELS (by index), every fourth node on EFI. */
export function simSpec(index: number, fleetId = 0x5a, { varied = false }: { varied?: boolean } = {}): SimNodeSpec {
  const base = {
    index,
    uuid: `${hex(fleetId, 2)}51a000-0000-4000-8000-${hex(index, 12)}`,
    mac: `52:54:00:${hex(fleetId, 2)}:${hex(index >> 8, 2)}:${hex(index & 255, 2)}`,
    serial: `SIM-${hex(fleetId, 2)}-${String(index).padStart(5, '0')}`,
  };
  if (!varied) return { ...base, manufacturer: 'Bootfarm Labs', product: 'Sim-1U', platform: 'pcbios' };
  const m = MODELS[index % MODELS.length]!;
  return {
    ...base,
    manufacturer: m.manufacturer,
    product: m.product,
    platform: index % 4 === 3 ? 'efi' : 'pcbios',
    hw: { biosVendor: m.biosVendor, biosVersion: m.biosVersion, cpuModel: m.cpuModel, sockets: m.sockets, cores: m.cores, memoryGiB: m.memoryGiB[index % m.memoryGiB.length]!, disks: m.disks, nics: m.nics },
  };
}

const maskBits = (mask: string) => mask.split('.').reduce((n, o) => n + (Number(o).toString(2).match(/1/g)?.length ?? 0), 0);

export async function startSimFleet({ count, fleetId = 0x5a, iface, prefixLen = 24, spreadMs = 30_000, images = 'head', backoff, firmware, retransmit, concurrency = Infinity, varied = false, efiTftp, onBytes, log, onFailed }: SimFleetOptions): Promise<SimFleet> {
  const dhcp = await createDhcpClient(retransmit ? { retransmit } : {});
  const specs = Array.from({ length: count }, (_, i) => simSpec(i, fleetId, { varied }));
  // power-on slots: a node takes one before its DHCP and gives it back at installed (or when it gives up)
  let free = concurrency;
  const queue: (() => void)[] = [];
  const slot = async () => {
    if (free > 0) return void free--;
    await new Promise<void>((r) => queue.push(r));
  };
  const release = () => {
    const next = queue.shift();
    if (next) next();
    else free++;
  };
  const reports: SimNodeReport[] = [];
  let stopped = false;
  const sleepers = new Set<() => void>();
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      if (stopped) return resolve();
      const done = () => (clearTimeout(t), sleepers.delete(done), resolve());
      const t = setTimeout(done, ms);
      sleepers.add(done);
    });
  const runs = specs.map(async (spec, i) => {
    await sleep(Math.floor((i * spreadMs) / count));
    await slot();
    if (stopped) return release();
    let held = true;
    const giveBack = () => {
      if (held) (held = false), release();
    };
    const rep = await runSimNode(spec, {
      dhcp,
      onReport: (r) => (reports[i] = r),
      addAddress: async (ip, mask) => {
        await exec('ip', ['addr', 'add', `${ip}/${mask ? maskBits(mask) : prefixLen}`, 'dev', iface]).catch((e: { stderr?: string }) => {
          if (!/File exists/.test(e.stderr ?? '')) throw e;
        });
      },
      sleep,
      now: () => Date.now(),
      images,
      stopped: () => stopped,
      log,
      backoff,
      firmware,
      efiTftp,
      onBytes,
      onInstalled: giveBack,
    });
    giveBack();
    if (rep.phase === 'failed') onFailed?.(rep);
  });
  return {
    specs,
    reports: () => reports.filter(Boolean),
    counts() {
      const c = Object.fromEntries([...SIM_PHASES, 'failed'].map((p) => [p, 0])) as Record<SimPhase, number>;
      for (const r of reports) if (r) c[r.phase]++;
      return c;
    },
    async stop() {
      stopped = true;
      for (const s of [...sleepers]) s();
      for (const q of queue.splice(0)) q();
      await Promise.all(runs);
      dhcp.close();
      return reports;
    },
  };
}
