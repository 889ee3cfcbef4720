// The e2e test rack: a network namespace with a bridge, a router advertisement, one QEMU node per tap with its
// own ipmi_sim BMC, lldpd on the node ports, a tgtd iSCSI target with a CHAP-protected LUN per node, and the
// bootfarm server, all inside the namespace. createRack() builds it; destroy() stops every process by PID and
// deletes the namespace (also on SIGINT/SIGTERM, and stale namespaces of a crashed run are removed at start).
//
//   const rack = await createRack({ nodes: [{ name: 'n0' }] });
//   const server = await rack.startServer({ config });      // bootfarm in the namespace
//   await rack.nodes[0].bmc.ipmitool(['chassis', 'power', 'on']);
//   await rack.nodes[0].waitSerial(/Linux version/, 60_000);
//   await rack.destroy();
import { chmodSync, mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import { stringify as toYaml } from 'yaml';
import { createRackNet, type RackNet } from './netns.ts';
import { startBmc, type Bmc } from './bmc.ts';
import { nodeMac, qemuPid, writeNodeFiles, type NodeFiles, type NodeSpec } from './qemu.ts';
import { alive, onSignalCleanup, stopAll, stopPid, tail, waitUntil, type Managed } from './proc.ts';
import { startBootfarm, startDnsmasq, startLldpd, startRadvd, startTgtd, type Lldpd, type ServerProc, type Tgtd } from './services.ts';
import { SerialWatcher, bootPhases, formatTimingTable, type ServerEvent } from './timing.ts';

export const repoRoot = resolve(fileURLToPath(new URL('../..', import.meta.url)));

export interface RackNodeOptions {
  name?: string;
  firmware?: 'bios' | 'uefi' | 'uefi-sb';
  biosVersion?: string;
  uuid?: string;
  serial?: string;
  manufacturer?: string;
  product?: string;
  memoryMiB?: number;
  /**
   * Further NICs after the boot NIC (eth1, eth2 … in the guest), each cabled to a port of a switch on the rack's data
   * bridge (bfe2ebr1, 10.78.0.1/24, no DHCP): one lldpd per switch name, its chassis ID that name, so two switches are
   * two chassis to the bond's member choice and the cabling check.
   */
  nics?: { switch: string; port: string }[];
}

/** the data bridge of the rack's further NICs (RackNodeOptions.nics) and its address */
export const DATA_BRIDGE = 'bfe2ebr1';
export const DATA_IP = '10.78.0.1';

export interface RackOptions {
  nodes: RackNodeOptions[];
  /** router advertisement for fd00:77::/64 (default on; off only to measure iPXE's IPv6 wait) */
  ra?: boolean;
  lldp?: boolean;
  iscsi?: boolean;
  /** BMC credentials shared by the rack's BMCs */
  bmcUser?: string;
  bmcPassword?: string;
  /** keep the temp dir (logs) after destroy, e.g. when debugging */
  keepDir?: boolean;
  /** the bridge's IPv4 address with prefix (default 10.77.0.1/24; the HA rack needs a /16 for 200+ leases) */
  ipv4?: string;
  /** no IPv4 on the link at all: the bridge has only fd00:77::1/64, radvd adds the Managed flag (DHCPv6), tgtd and the
   * server listen on IPv6 (issue 19 item 3) */
  ipv6Only?: boolean;
}

export interface RackNode {
  index: number;
  spec: NodeSpec;
  files: NodeFiles;
  bmc: Bmc;
  serial: SerialWatcher;
  /** lldpd port description advertised on this node's port */
  portDescription: string;
  /** the further NICs: guest name (eth1 …), tap, MAC, and the switch port they are cabled to */
  nics: { name: string; tap: string; mac: string; switch: string; port: string }[];
  /** the running QEMU PID, if powered on */
  qemuPid(): number | null;
  running(): boolean;
  /** epoch ms of every BMC power-on of this node */
  powerOns(): number[];
  /** waits for a console line in the latest boot (or from `from`); errors carry the serial + server log tails */
  waitSerial(re: RegExp, timeoutMs: number, from?: number): Promise<number>;
  /** kills QEMU by PID (a crash, not a BMC action) */
  crash(): Promise<void>;
}

export interface Rack {
  dir: string;
  net: RackNet;
  nodes: RackNode[];
  lldpd?: Lldpd;
  /** the switches of the further NICs (one lldpd each), by system name */
  switches: Map<string, Lldpd>;
  tgtd?: Tgtd;
  radvd?: Managed;
  server?: ServerProc;
  /** starts the bootfarm server in the namespace with this config (written to a YAML file) */
  startServer(opts?: { config?: Record<string, unknown>; port?: number; env?: Record<string, string> }): Promise<ServerProc>;
  /** starts dnsmasq as the rack's DHCP server (the plumbing proof and the baseline) */
  startDnsmasq(bootUrl: string, tftpRoot?: string, tftpServer?: string): Managed;
  /** events of a node through the admin API */
  events(uuid: string): Promise<ServerEvent[]>;
  waitEvent(uuid: string, what: string, pred: (e: ServerEvent) => boolean, timeoutMs: number, node?: RackNode): Promise<ServerEvent>;
  /** log tails for an error message */
  context(node?: RackNode): string;
  timingTable(node: RackNode): Promise<string>;
  destroy(): Promise<void>;
}

const BMC_PORT_BASE = 6230;

export async function createRack(opts: RackOptions): Promise<Rack> {
  const { ra = true, lldp = true, iscsi = true, bmcUser = 'admin', bmcPassword = 'bfe2e-bmc-pass' } = opts;
  const dir = mkdtempSync(join(tmpdir(), 'bfe2e-'));
  // lldpd applies its -O file by running lldpcli as its unprivileged user, which must reach the socket here
  chmodSync(dir, 0o755);
  const keep = opts.keepDir ?? process.env.BFE2E_KEEP === '1';
  const net = createRackNet(opts.ipv6Only ? { ipv4: false } : opts.ipv4 ? { ipv4: opts.ipv4 } : {});
  const netns = net.netns;
  let destroyed = false;
  // SIGINT/SIGTERM/exit before destroy(): the namespace goes (netns.ts), and the temp dir with it
  const unhookDir = onSignalCleanup(() => keep || rmSync(dir, { recursive: true, force: true }));
  const rack: Rack = {
    dir,
    net,
    nodes: [],
    switches: new Map(),
    startServer,
    startDnsmasq: (bootUrl, tftpRoot, tftpServer) => startDnsmasq({ netns, dir, iface: net.bridge, range: ['10.77.0.100', '10.77.0.199'], bootUrl, tftpRoot, tftpServer }),
    events,
    waitEvent,
    context,
    timingTable,
    destroy,
  };

  async function destroy() {
    if (destroyed) return;
    destroyed = true;
    for (const n of rack.nodes) {
      n.serial.stop();
      const pid = n.qemuPid();
      if (pid && alive(pid)) await stopPid(pid, 2000);
    }
    await rack.tgtd?.stop();
    await stopAll();
    net.destroy();
    unhookDir();
    if (!keep) rmSync(dir, { recursive: true, force: true });
  }

  try {
    if (ra) rack.radvd = startRadvd({ netns, dir, iface: net.bridge, prefix: net.ipv6Prefix, managed: !!opts.ipv6Only });
    if (opts.nodes.some((o) => o.nics?.length)) net.addBridge(DATA_BRIDGE, `${DATA_IP}/24`);
    for (const [i, o] of opts.nodes.entries()) {
      const tap = net.addTap(i);
      const nics = (o.nics ?? []).map((n, k) => ({ name: `eth${k + 1}`, tap: net.addTap(i, { name: `bfe2et${i}n${k + 1}`, bridge: DATA_BRIDGE }), mac: nodeMac(i, k + 1), ...n }));
      const spec: NodeSpec = {
        name: o.name ?? `node${i}`,
        tap,
        uuid: o.uuid ?? randomUUID(),
        serial: o.serial ?? `BFE2E-${String(i).padStart(4, '0')}`,
        manufacturer: o.manufacturer ?? 'Bootfarm Labs',
        product: o.product ?? 'E2E-Rack-1U',
        biosVersion: o.biosVersion ?? '2.4.1',
        mac: nodeMac(i),
        firmware: o.firmware ?? 'bios',
        memoryMiB: o.memoryMiB,
        ...(nics.length ? { extraNics: nics.map((n) => ({ tap: n.tap, mac: n.mac })) } : {}),
      };
      const files = writeNodeFiles(spec, join(dir, spec.name));
      const bmc = await startBmc({ netns, dir: join(dir, spec.name, 'bmc'), port: BMC_PORT_BASE + i, control: files.control, username: bmcUser, password: bmcPassword });
      const serial = new SerialWatcher(files.serialLog);
      const node: RackNode = {
        index: i,
        spec,
        files,
        bmc,
        serial,
        portDescription: `rack1 port ${i + 1}`,
        nics,
        qemuPid: () => qemuPid(files),
        running: () => {
          const p = qemuPid(files);
          return !!p && alive(p);
        },
        powerOns: () =>
          readFileSync(files.powerLog, 'utf8')
            .split('\n')
            .filter((l) => / power-on$/.test(l))
            .map((l) => Number(l.split(' ')[0])),
        waitSerial: async (re, timeoutMs, from) => {
          await waitUntil(`serial console of ${spec.name} to show ${re}`, timeoutMs, () => (re.test(serial.all().slice(from ?? serial.lastBootStart())) ? true : undefined), { context: () => context(node) });
          return serial.seenAt(re, from === undefined ? {} : { from }) ?? Date.now();
        },
        crash: async () => {
          const p = qemuPid(files);
          if (p) await stopPid(p, 0);
        },
      };
      rack.nodes.push(node);
    }
    if (lldp && rack.nodes.length) rack.lldpd = await startLldpd({ netns, dir, ports: rack.nodes.map((n) => ({ iface: n.spec.tap, description: n.portDescription })) });
    const cabled = rack.nodes.flatMap((n) => n.nics);
    if (lldp)
      for (const sw of new Set(cabled.map((c) => c.switch))) {
        const ports = cabled.filter((c) => c.switch === sw).map((c) => ({ iface: c.tap, description: c.port }));
        rack.switches.set(sw, await startLldpd({ netns, dir, ports, systemName: sw, chassisId: sw, name: `lldpd-${sw}` }));
      }
    if (iscsi && rack.nodes.length) rack.tgtd = await startTgtd({ netns, dir, ip: net.host, nodes: rack.nodes.map((n) => n.spec.uuid) });
  } catch (e) {
    await destroy();
    throw e;
  }

  async function startServer({ config = {}, port = 8080, env = {} }: { config?: Record<string, unknown>; port?: number; env?: Record<string, string> } = {}) {
    const configFile = join(dir, 'bootfarm.yaml');
    writeFileSync(configFile, toYaml(config));
    rack.server = await startBootfarm({ netns, dir, repoRoot, ip: net.host, port, env, configFile });
    return rack.server;
  }

  async function events(uuid: string): Promise<ServerEvent[]> {
    if (!rack.server) throw new Error('the bootfarm server is not running');
    const r = await rack.server.api.raw('GET', `/api/v1/nodes/${uuid}/events?limit=5000`);
    if (r.status === 404) return [];
    if (r.status !== 200) throw new Error(`events of ${uuid}: ${r.status} ${r.text.slice(0, 300)}`);
    // the API answers newest first (issue 17 item 5); the rack's checks read the timeline in order
    return (JSON.parse(r.text) as { events: ServerEvent[] }).events.reverse();
  }

  async function waitEvent(uuid: string, what: string, pred: (e: ServerEvent) => boolean, timeoutMs: number, node?: RackNode) {
    return waitUntil(`server event: ${what} (node ${uuid})`, timeoutMs, async () => (await events(uuid)).find(pred), { intervalMs: 500, context: () => context(node) });
  }

  function context(node?: RackNode): string {
    const parts: string[] = [];
    if (node) {
      parts.push(tail(`serial log of ${node.spec.name}`, node.serial.all().replace(/\x1b\[[0-9;]*[A-Za-z]/g, ''), 40));
      if (existsSync(node.files.powerLog)) parts.push(tail(`power log of ${node.spec.name}`, readFileSync(node.files.powerLog, 'utf8'), 10));
      const qerr = join(node.files.dir, 'qemu.err');
      if (existsSync(qerr)) parts.push(tail('qemu stderr', readFileSync(qerr, 'utf8'), 10));
    }
    if (rack.server) parts.push(tail('server log', rack.server.proc.output(), 40));
    return parts.join('\n');
  }

  async function timingTable(node: RackNode): Promise<string> {
    const powerOnAt = node.powerOns().at(-1);
    if (powerOnAt === undefined) return `${node.spec.name}: never powered on`;
    const evs = rack.server ? await events(node.spec.uuid).catch(() => []) : [];
    return formatTimingTable(`boot timing of ${node.spec.name} (${node.spec.firmware}, ${node.spec.uuid})`, bootPhases({ powerOnAt, serial: node.serial, events: evs }));
  }

  return rack;
}
