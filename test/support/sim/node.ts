// One simulated node, protocol-faithful: the requests and credentials of a real machine, in its order —
// DHCP (the iPXE ROM's DISCOVER) → the boot script named in the lease → /ipxe/<uuid> (the stage-1 token arrives
// on the kernel command line) → stage-1: the agent client's register / bmc-setup / profile / detail and its event
// timeline (agent/client.ts, createReporter from agent/flow.ts), with the agent's retry → compute OS: the node
// credential from the profile's command line, `installed`, then heartbeats until stopped.
// With `firmware: 'pxe'` it starts one step earlier, as a machine's own PXE ROM: DHCP without the iPXE user class
// → TFTP of the iPXE binary the lease names → DHCP again as iPXE (the storm simulator, bench/storm).
// What it does not do: run the probes (facts are made up but valid for server/contract/facts.ts), execute
// a BMC setup plan, kexec, or transfer the image bytes unless `images: 'full'` (download and verify) or 'stream'
// (download and count, no sha256: 1,000 nodes would hash 150 GB on the machine the server runs on). HEAD requests
// by default; the QEMU nodes of a rack download and verify the real images.
import { createAgentClient, type AgentClient } from '../../../agent/client.ts';
import { createReporter } from '../../../agent/flow.ts';
import { parseAgentCmdline, type AgentConfig } from '../../../agent/cmdline.ts';
import { retry } from '../../../agent/retry.ts';
import type { Facts } from '../../../server/contract/facts.ts';
import type { DhcpClient, DhcpFirmware, Lease } from './dhcp.ts';
import { tftpGet } from './tftp.ts';
import { createHash } from 'node:crypto';
import { createSimFetch, type SimDownload, type SimFetch } from './http.ts';
import { runIpxe, type IpxeMachine } from './ipxe.ts';

export const SIM_AGENT_VERSION = 'sim-0.1.0';

/** the hardware a node reports beyond its identity (simFacts); absent: one small VM-like machine */
export interface SimHardware {
  biosVendor: string;
  biosVersion: string;
  cpuModel: string;
  sockets: number;
  cores: number;
  memoryGiB: number;
  disks: { name: string; sizeBytes: number; model: string; rotational: boolean }[];
  nics: { name: string; driver: string; speedMbps: number; pciId: string }[];
}

export interface SimNodeSpec extends IpxeMachine {
  index: number;
  nicName?: string;
  hw?: SimHardware;
}

/** what the node is doing; `at[phase]` is when it started doing it. tftp and images are reached only with
 * firmware: 'pxe' and images: 'stream'/'full' (a HEAD costs nothing worth a phase); compute likewise. */
export type SimPhase = 'dhcp' | 'tftp' | 'ipxe' | 'images' | 'stage1' | 'registered' | 'profile' | 'compute' | 'installed' | 'active' | 'failed';
export const SIM_PHASES: readonly SimPhase[] = ['dhcp', 'tftp', 'ipxe', 'images', 'stage1', 'registered', 'profile', 'compute', 'installed', 'active'];

export interface SimNodeReport {
  uuid: string;
  mac: string;
  ip?: string;
  phase: SimPhase;
  error?: string;
  /** the phase the node was in when it gave up */
  failedIn?: SimPhase;
  /** firmware: 'pxe': the TFTP transfer (ms, packets sent again) and the iPXE DHCP exchange after it (ms) */
  tftp?: { ms: number; resent: number; dhcpMs: number; client?: 'ovmf' | 'pxe-rom'; windowsize?: number; stalls?: { block: number; ms: number }[] };
  /** bytes received: the iPXE binary over TFTP, and image bodies over HTTP (images: 'stream') */
  bytes: { tftp: number; http: number };
  /** ms since the simulator started, per phase reached */
  at: Partial<Record<SimPhase, number>>;
  dhcp?: Pick<Lease, 'serverId' | 'discovers' | 'naks'>;
  scripts?: number;
  /** register responses said created: true (a registration the server had not seen) */
  created?: boolean;
  heartbeats: number;
  heartbeatErrors: number;
  /** calls that needed a retry (server gone, 5xx, timeout) */
  retries: number;
  /** states the heartbeat responses reported, in order, deduplicated */
  states: string[];
  /** a heartbeat answered next: reboot (a rebuild asked of this node) */
  rebootAsked: boolean;
}

export interface SimNodeDeps {
  dhcp: DhcpClient;
  /** gives the node its leased address (ip addr add … in the simulator's namespace) */
  addAddress(ip: string, mask?: string): Promise<void>;
  sleep(ms: number): Promise<void>;
  now(): number;
  images?: 'head' | 'full' | 'stream';
  stopped(): boolean;
  log?: (line: string) => void;
  /** called with the node's report object as soon as it exists (it is updated in place as the node goes) */
  onReport?: (rep: SimNodeReport) => void;
  /** backoff of the agent's retries (the real agent: 1 s base, 60 s cap) */
  backoff?: { baseMs: number; capMs: number };
  /** 'pxe': start as the machine's PXE ROM (DHCP, TFTP of the iPXE binary, then DHCP as iPXE); default 'ipxe' */
  firmware?: 'pxe' | 'ipxe';
  tftpPort?: number;
  /** the TFTP client of an EFI node: edk2's as in OVMF (size probe, windowsize 4, 4 s fixed; default), or the BIOS
   * PXE ROM's lockstep one (what the storm simulator did before; for comparing runs) */
  efiTftp?: 'ovmf' | 'pxe-rom';
  /** every chunk of image body received, for the storm's bytes-over-time */
  onBytes?: (n: number) => void;
  /** the node reached installed (the storm simulator frees its power-on slot here) */
  onInstalled?: () => void;
}

export function simFacts(s: SimNodeSpec): Facts {
  const hw = s.hw;
  if (hw)
    return {
      system: { uuid: s.uuid, serial: s.serial, manufacturer: s.manufacturer, product: s.product },
      bios: { vendor: hw.biosVendor, version: hw.biosVersion },
      cpu: { model: hw.cpuModel, sockets: hw.sockets, cores: hw.cores * hw.sockets, threads: 2 * hw.cores * hw.sockets },
      memory: { totalBytes: hw.memoryGiB * 2 ** 30 },
      // the first NIC boots (its MAC is the one DHCP saw); the others get MACs of their own from the same prefix
      nics: hw.nics.map((n, i) => ({ name: n.name, mac: i === 0 ? s.mac : nthMac(s.mac, i), driver: n.driver, pciId: n.pciId, link: i === 0, speedMbps: n.speedMbps, boot: i === 0 })),
      disks: hw.disks.map((d, i) => ({ ...d, serial: `${s.serial}-D${i}` })),
    };
  return {
    system: { uuid: s.uuid, serial: s.serial, manufacturer: s.manufacturer, product: s.product },
    bios: { vendor: 'SeaBIOS', version: '2.4.1' },
    cpu: { model: 'Simulated CPU', sockets: 1, cores: 2, threads: 2 },
    memory: { totalBytes: 8 * 2 ** 30 },
    nics: [{ name: s.nicName ?? 'eth0', mac: s.mac, driver: 'virtio_net', link: true, speedMbps: 10000, boot: true }],
    disks: [],
  };
}

/** the MAC of the node's i-th other port: the boot MAC with its first octet's high bits set per port (unique per node) */
const nthMac = (mac: string, i: number) => `${(0x02 | (i << 4)).toString(16).padStart(2, '0')}${mac.slice(2)}`;

const firmwareOf = (pxe: boolean, spec: SimNodeSpec): DhcpFirmware => `${pxe ? 'pxe' : 'ipxe'}-${spec.platform === 'efi' ? 'efi' : 'bios'}`;

export async function runSimNode(spec: SimNodeSpec, deps: SimNodeDeps): Promise<SimNodeReport> {
  const t0 = deps.now();
  const rep: SimNodeReport = { uuid: spec.uuid, mac: spec.mac, phase: 'dhcp', at: {}, bytes: { tftp: 0, http: 0 }, heartbeats: 0, heartbeatErrors: 0, retries: 0, states: [], rebootAsked: false };
  deps.onReport?.(rep);
  const reach = (p: SimPhase) => {
    rep.phase = p;
    rep.at[p] = deps.now() - t0;
  };
  const log = (l: string) => deps.log?.(`${spec.uuid.slice(0, 8)} ${l}`);
  const backoff = deps.backoff ?? { baseMs: 1000, capMs: 60_000 };
  const retryOpts = (what: string) => ({
    sleep: deps.sleep,
    baseMs: backoff.baseMs,
    capMs: backoff.capMs,
    attempts: Infinity,
    onRetry: (err: unknown) => {
      rep.retries++;
      log(`${what}: ${(err as Error).message}`);
      if (deps.stopped()) throw err;
    },
  });
  let fetch: ReturnType<typeof createSimFetch> | undefined;
  try {
    reach('dhcp');
    let lease: Lease;
    if (deps.firmware === 'pxe') {
      // the PXE ROM: a lease naming the iPXE binary, fetched by TFTP from next-server; then iPXE asks again
      const pxe = await deps.dhcp.acquire(spec.mac, spec.uuid, { firmware: firmwareOf(true, spec) });
      await deps.addAddress(pxe.ip, pxe.mask);
      if (/^https?:\/\//.test(pxe.bootfile)) throw new Error(`the PXE ROM was given a URL, not an iPXE binary: ${pxe.bootfile}`);
      reach('tftp');
      const tt = deps.now();
      const client = spec.platform === 'efi' ? (deps.efiTftp ?? 'ovmf') : 'pxe-rom';
      const t = await tftpGet({ server: pxe.nextServer ?? pxe.serverId, port: deps.tftpPort, file: pxe.bootfile, localAddress: pxe.ip, client });
      rep.bytes.tftp += t.bytes;
      if (t.tsize !== undefined && t.tsize !== t.bytes) throw new Error(`TFTP ${pxe.bootfile}: ${t.bytes} bytes, the OACK said ${t.tsize}`);
      const td = deps.now();
      lease = await deps.dhcp.acquire(spec.mac, spec.uuid, { firmware: firmwareOf(false, spec) });
      rep.tftp = { ms: td - tt, resent: t.resent, dhcpMs: deps.now() - td, client, windowsize: t.windowsize, stalls: t.stalls };
      lease = { ...lease, discovers: lease.discovers + pxe.discovers, naks: lease.naks + pxe.naks };
      if (lease.ip !== pxe.ip) await deps.addAddress(lease.ip, lease.mask);
    } else {
      lease = await deps.dhcp.acquire(spec.mac, spec.uuid, { firmware: firmwareOf(false, spec) });
      await deps.addAddress(lease.ip, lease.mask);
    }
    rep.ip = lease.ip;
    rep.dhcp = { serverId: lease.serverId, discovers: lease.discovers, naks: lease.naks };
    fetch = createSimFetch({ localAddress: lease.ip });

    reach('ipxe');
    if (!/^https?:\/\//.test(lease.bootfile)) throw new Error(`the lease's boot file is not a URL for iPXE: ${lease.bootfile}`);
    const streamed = (n: number) => {
      rep.bytes.http += n;
      deps.onBytes?.(n);
    };
    const boot = await runIpxe(lease.bootfile, spec, { fetch, download: fetch.download, onBytes: streamed, onImages: () => deps.images !== 'head' && deps.images !== undefined && rep.phase !== 'images' && reach('images'), sleep: deps.sleep, images: deps.images, log });
    rep.scripts = boot.scripts;
    const stage1 = parseAgentCmdline(boot.args.join(' '));
    if (stage1.mode !== 'stage1' || !stage1.uuid) throw new Error(`the stage-1 command line is not a stage-1 boot: ${boot.args.join(' ')}`);

    reach('stage1');
    const client = createAgentClient({ server: stage1.server, token: stage1.token!, fetch });
    const profile = await stage1Flow(client, fetch, spec, stage1, deps, retryOpts, rep, reach, streamed);

    // kexec: the compute OS comes up with the command line the profile gave (its own node credential)
    const compute = parseAgentCmdline(profile.cmdline);
    if (compute.mode !== 'compute' || !compute.token) throw new Error(`the compute command line carries no compute credential: ${profile.cmdline.replace(/token=\S+/, 'token=<redacted>')}`);
    const nodeClient = createAgentClient({ server: compute.server, token: compute.token, fetch });
    const reporter = createReporter(nodeClient, () => new Date(), () => {});
    reporter.setUuid(spec.uuid);
    await reporter.report('compute-started', `bootfarm-agent ${SIM_AGENT_VERSION}`, { agentVersion: SIM_AGENT_VERSION });
    const digests = { ...(compute.kernelDigest ? { kernelDigest: compute.kernelDigest } : {}), ...(compute.initrdDigest ? { initrdDigest: compute.initrdDigest } : {}) };
    await retry(() => nodeClient.installed(spec.uuid, { ...digests, bootId: `sim-${spec.uuid}` }), retryOpts('installed'));
    reach('installed');
    deps.onInstalled?.();

    const every = (compute.heartbeatSeconds ?? profile.heartbeatIntervalSeconds) * 1000;
    const started = deps.now();
    while (!deps.stopped()) {
      try {
        const res = await nodeClient.heartbeat(spec.uuid, { uptimeSeconds: Math.round((deps.now() - started) / 1000), load1: 0.1, iscsi: compute.iscsiTarget ? 'up' : 'none', ...digests });
        rep.heartbeats++;
        if (rep.states.at(-1) !== res.state) rep.states.push(res.state);
        if (res.state === 'active' && rep.phase !== 'active') reach('active');
        if (res.next === 'reboot') {
          rep.rebootAsked = true;
          throw new Error(`the server asked for a reboot (state ${res.state})`);
        }
      } catch (e) {
        if (rep.rebootAsked) throw e;
        // a missed beat is the server's business: the agent keeps beating
        rep.heartbeatErrors++;
        log(`heartbeat: ${(e as Error).message}`);
      }
      await deps.sleep(every);
    }
    await reporter.flush();
  } catch (e) {
    rep.error = (e as Error).message;
    rep.failedIn = rep.phase;
    reach('failed');
  } finally {
    fetch?.close();
  }
  return rep;
}

async function stage1Flow(
  client: AgentClient,
  fetch: SimFetch & { download: SimDownload },
  spec: SimNodeSpec,
  cfg: AgentConfig,
  deps: SimNodeDeps,
  retryOpts: (what: string) => Parameters<typeof retry>[1],
  rep: SimNodeReport,
  reach: (p: SimPhase) => void,
  streamed: (n: number) => void,
) {
  const reporter = createReporter(client, () => new Date(), () => {});
  reporter.setUuid(cfg.uuid!);
  await reporter.report('stage1-started', `bootfarm-agent ${SIM_AGENT_VERSION}`, { agentVersion: SIM_AGENT_VERSION, dryRun: false });
  const facts = simFacts(spec);
  await reporter.report('facts-collected', `1 NICs, 0 LLDP neighbours, 0 probe failures`, { ms: 1, failedProbes: [] });
  const reg = await retry(() => client.register({ facts, failures: [], agentVersion: SIM_AGENT_VERSION }), retryOpts('register'));
  rep.created = reg.created;
  await reporter.report('registered', `state ${reg.state}, next ${reg.next}`, { state: reg.state, next: reg.next, created: reg.created, conflicts: reg.conflicts });
  if (reg.next !== 'provision') throw new Error(`register said ${reg.next}${reg.reason ? `: ${reg.reason}` : ''} (the simulator only provisions)`);
  reach('registered');
  // the agent asks for a pending in-band BMC setup after registering (3 attempts; never stops the boot)
  const offer = await retry(() => client.bmcSetup(cfg.uuid!), { ...retryOpts('bmc-setup'), attempts: 3 }).catch(() => undefined);
  if (offer?.pending) await reporter.report('bmc-setup-skipped', 'the simulator has no BMC to set up');
  const profile = await retry(() => client.profile(cfg.uuid!), retryOpts('profile'));
  const detail = await retry(() => client.detail(cfg.uuid!), retryOpts('detail'));
  await reporter.report('profile-fetched', `${profile.profile}: ${profile.image.name}@${profile.image.version ?? ''} for ${detail.hostname}`, { profile: profile.profile, image: profile.image, kernel: profile.kernel.sha256, initrd: profile.initrd.sha256, hostname: detail.hostname });
  reach('profile');
  // the agent downloads both and checks their sha256; the simulator asks for them (HEAD) unless images: 'full'
  // (downloads and checks) or 'stream' (downloads and counts)
  if (deps.images === 'stream' || deps.images === 'full') reach('compute');
  for (const a of [profile.kernel, profile.initrd]) {
    if (deps.images === 'stream') {
      await retry(async () => {
        const r = await fetch.download(a.url, streamed).catch((e: Error) => {
          throw Object.assign(new Error(`download ${a.url}: ${e.message}`), { retryable: true });
        });
        if (r.status < 200 || r.status >= 300) throw Object.assign(new Error(`download ${a.url}: ${r.status}`), { retryable: r.status >= 500 || r.status === 429 });
        if (a.size !== undefined && r.bytes !== a.size) throw Object.assign(new Error(`download ${a.url}: ${r.bytes} bytes, the profile said ${a.size}`), { retryable: true });
      }, { ...retryOpts('download'), attempts: 5 });
      continue;
    }
    await retry(async () => {
      // as agent/kexec: a network error or a 5xx/429 is worth another attempt, anything else is not
      const r = await fetch(a.url, { method: deps.images === 'full' ? 'GET' : 'HEAD' }).catch((e: Error) => {
        throw Object.assign(new Error(`download ${a.url}: ${e.message}`), { retryable: true });
      });
      if (!r.ok) throw Object.assign(new Error(`download ${a.url}: ${r.status}`), { retryable: r.status >= 500 || r.status === 429 });
      const body = Buffer.from(await r.arrayBuffer());
      if (deps.images === 'full' && createHash('sha256').update(body).digest('hex') !== a.sha256.replace(/^sha256:/, '')) throw new Error(`download ${a.url}: sha256 mismatch`);
    }, { ...retryOpts('download'), attempts: 5 });
  }
  await reporter.report('image-downloaded', `kernel and initrd ${deps.images === 'full' ? 'downloaded' : deps.images === 'stream' ? 'downloaded (bytes counted, not hashed)' : 'checked (HEAD)'}`, { simulated: true });
  await reporter.report('kexec-started', 'simulated kexec', { dryRun: true });
  await reporter.flush();
  return profile;
}
