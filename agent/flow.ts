// The agent's two flows, with every effect handed in (exec, fetch, sleep, clock, paths) so tests drive them.
//
// stage1:  cmdline → facts → register (retry) → pending BMC setup → firmware step (→ fresh facts → register again,
//          or reboot) → profile + detail → download + sha256 → kexec
// compute: cmdline → detail (retry) → network from the detail (agent/network) → installed (retry) → host capacity
//          (agent/hypervisor) → [hypervisor self-test in the background] → heartbeat every N seconds, carrying what
//          the network read back as and the hypervisor capacity when it is the first or has changed; a network that
//          was not put in place (detail refused, a step failed or refused) is fetched and applied again on a later
//          beat (networkRetryDelay)
//
// Each step is reported to POST /api/v1/agent/:uuid/events so the server keeps a timeline of the boot.
import { readFile, readdir, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AgentEvent, Detail, Profile, RegisterResponse } from '../server/contract/agent.ts';
import { parseAgentCmdline, type AgentConfig } from './cmdline.ts';
import { createAgentClient, type AgentClient, type Fetch } from './client.ts';
import type { Exec } from './exec.ts';
import { commandLine, run } from './exec.ts';
import { collectFacts, type FactPaths } from './facts/index.ts';
import { normalizeUuid } from './facts/dmidecode.ts';
import { parseBootif } from './facts/nics.ts';
import { bmcSetupStep } from './bmc/index.ts';
import { defaultFirmwareStep, type FirmwareStep } from './firmware/index.ts';
import { downloadVerified, kexecBoot, KexecRefusedError } from './kexec/index.ts';
import { kexecNeedsSignedLoad } from './facts/secureboot.ts';
import { applyNetwork, configuredFrom, pendingChanges, readState, type ApplyOptions, type ApplyResult } from './network/index.ts';
import { backoffDelay as plainBackoff } from '../server/contract/backoff.ts';
import { retry, type Sleep } from './retry.ts';
import { DEFAULT_HYPERVISOR_PATHS, listGuests, probeHost, type HostCapacity, type HypervisorPaths } from './hypervisor/index.ts';
import { hypervisorSelfTest } from './hypervisor/selftest.ts';
import type { qmp } from './hypervisor/qmp.ts';
import type { HypervisorCapacity } from '../server/contract/agent.ts';

export const AGENT_VERSION = '0.1.0';

/** registrations in one boot that may end in "update firmware" before the agent gives up */
export const MAX_FIRMWARE_ROUNDS = 25;

/** compute mode: heartbeats between the network's bring-up and the first time a network not in place is tried again */
export const NETWORK_RETRY_BEATS = 10;
/** …and no two tries further apart than this, however many failed: a fixed profile is picked up within the hour */
export const NETWORK_RETRY_CAP_MS = 60 * 60_000;

/**
 * How long after the previous try (0 = bring-up) the compute agent fetches the detail and applies it again, when the
 * network is not in place: NETWORK_RETRY_BEATS heartbeat intervals, doubling with each further failure up to
 * NETWORK_RETRY_CAP_MS, spread uniformly over ×0.5–1.5. The spread is what matters after a fleet-wide failure
 * (a rack whose profile names a network IPAM lacks: 409 for all; a detail that failed during an outage where the
 * attempts are bounded): once it is fixed, a thousand nodes must not all ask again on the same beat. The spread
 * keeps a floor (unlike the full jitter of retry()) so a node does not re-fetch on the very next beat.
 */
export function networkRetryDelay(retry: number, everyMs: number, random: () => number): number {
  const base = NETWORK_RETRY_BEATS * everyMs;
  return Math.round(plainBackoff(retry, { baseMs: base, capMs: Math.max(base, NETWORK_RETRY_CAP_MS) }) * (0.5 + random()));
}

/** heartbeats between two that carry the hypervisor capacity although it did not change: a server that lost it (a
 * restored backup, a node row re-created) has it again within minutes */
export const HEARTBEAT_CAPACITY_EVERY = 10;

export interface FlowPaths extends FactPaths, HypervisorPaths {
  cmdline: string;
  /** where the kernel and initrd are written (tmpfs in the stage-1 OS) */
  workDir: string;
  bootId: string;
  uptime: string;
  loadavg: string;
  /** open-iscsi sessions (scsi_transport_iscsi): one directory per session with a `targetname` file */
  iscsiSessions: string;
  /** compute mode writes the detail's DNS servers here */
  resolvConf: string;
  /** written once the detail's addresses are applied: udhcpc's hook (images/rootfs/common/etc/udhcpc/default.script)
   * then stops re-applying the boot lease, which would flush them */
  networkApplied: string;
  /** the statically linked busybox the self-test guest runs */
  busybox: string;
}

export const DEFAULT_PATHS: FlowPaths = {
  cmdline: '/proc/cmdline',
  workDir: '/run/bootfarm',
  bootId: '/proc/sys/kernel/random/boot_id',
  uptime: '/proc/uptime',
  loadavg: '/proc/loadavg',
  iscsiSessions: '/sys/class/iscsi_session',
  resolvConf: '/etc/resolv.conf',
  networkApplied: '/run/bootfarm-init/network-applied',
  sysNet: '/sys/class/net',
  cpuinfo: '/proc/cpuinfo',
  meminfo: '/proc/meminfo',
  ipmiDevice: '/dev/ipmi0',
  productUuid: '/sys/class/dmi/id/product_uuid',
  efi: '/sys/firmware/efi',
  lockdown: '/sys/kernel/security/lockdown',
  kvmDevice: DEFAULT_HYPERVISOR_PATHS.kvmDevice,
  guestsDir: DEFAULT_HYPERVISOR_PATHS.guestsDir,
  busybox: '/bin/busybox',
};

export interface FlowDeps {
  exec: Exec;
  fetch: Fetch;
  sleep: Sleep;
  now: () => Date;
  random?: () => number;
  paths?: Partial<FlowPaths>;
  /** diagnostics (stderr in the binary) */
  log?: (line: string) => void;
  /** results meant for a person or a script (stdout in the binary): dry-run commands */
  print?: (line: string) => void;
  /** --dry-run on the agent's own command line; bootfarm.dryrun=1 on the kernel's works too */
  dryRun?: boolean;
  /** overrides bootfarm.mode= */
  mode?: 'stage1' | 'compute';
  firmware?: FirmwareStep;
  /** ask the server for a pending in-band BMC setup after registering (default true) */
  bmcSetup?: boolean;
  lldpSocket?: string;
  /** attempts per server call (Infinity in production: the server may be restarting) */
  attempts?: number;
  backoff?: { baseMs?: number; capMs?: number };
  /** how long to wait before registering again when the server says hold */
  holdSeconds?: number;
  /** compute mode: how the network is applied (tests: arping through busybox, short DAD waits) */
  network?: Pick<ApplyOptions, 'arping' | 'arpingCount' | 'dadTimeoutMs' | 'dadPollMs' | 'maxConflicts'>;
  /** compute mode: stop after this many heartbeat attempts (tests); forever by default */
  maxHeartbeats?: number;
  /** compute mode: QMP and the liveness check of guest QEMUs (tests hand in fakes) */
  qmp?: typeof qmp;
  alive?: (pid: number) => boolean;
  /** compute mode: bounds of the hypervisor self-test (default 600 s, polled every 2 s) */
  selfTest?: { timeoutMs?: number; pollMs?: number };
}

export type FlowResult =
  | { outcome: 'kexec'; dryRun: boolean; profile: Profile; detail: Detail }
  | { outcome: 'reboot'; reason: string }
  | { outcome: 'poweroff'; reason: string }
  | { outcome: 'heartbeats-done'; beats: number };

/** The node credential (and CHAP password) must not land in the event log: the server's timeline is readable by operators. */
export function redactCmdline(cmdline: string): string {
  return cmdline.replace(/(bootfarm\.token=|bootfarm\.iscsi\.password=)\S+/g, '$1<redacted>');
}

/**
 * Queues events until the node's UUID is known, then posts them. A failed post keeps the events for the next
 * one: losing the server for a moment must not lose the timeline, and never stops the boot.
 */
export function createReporter(client: AgentClient, now: () => Date, log: (l: string) => void) {
  const queue: AgentEvent[] = [];
  let uuid: string | undefined;
  async function flush(): Promise<void> {
    if (!uuid || queue.length === 0) return;
    const batch = queue.slice(0, 100);
    try {
      await client.events(uuid, batch);
      queue.splice(0, batch.length);
      if (queue.length) await flush();
    } catch (err) {
      log(`events: ${(err as Error).message} (${queue.length} kept for the next try)`);
      if (queue.length > 500) queue.splice(0, queue.length - 500);
    }
  }
  return {
    setUuid(u: string) {
      uuid = u;
    },
    async report(phase: string, message?: string, data?: Record<string, unknown>): Promise<void> {
      log(`${phase}${message ? `: ${message}` : ''}`);
      queue.push({ phase, at: now().toISOString(), ...(message ? { message: message.slice(0, 4096) } : {}), ...(data ? { data } : {}) });
      await flush();
    },
    flush,
    pending: () => queue.length,
  };
}

export async function runAgent(deps: FlowDeps): Promise<FlowResult> {
  const paths = { ...DEFAULT_PATHS, ...deps.paths };
  const log = deps.log ?? ((l: string) => console.error(l));
  const cfg = parseAgentCmdline(await readFile(paths.cmdline, 'utf8'));
  const mode = deps.mode ?? cfg.mode;
  const ctx = { ...deps, paths, log, print: deps.print ?? ((l: string) => console.log(l)), dryRun: deps.dryRun || cfg.dryRun };
  return mode === 'compute' ? runCompute(ctx, cfg) : runStage1(ctx, cfg);
}

type Ctx = FlowDeps & { paths: FlowPaths; log: (l: string) => void; print: (l: string) => void; dryRun: boolean };

function retryOpts(ctx: Ctx, what: string) {
  return {
    sleep: ctx.sleep,
    random: ctx.random ?? Math.random,
    attempts: ctx.attempts ?? Infinity,
    baseMs: ctx.backoff?.baseMs ?? 1000,
    capMs: ctx.backoff?.capMs ?? 60_000,
    onRetry: (err: unknown, attempt: number, delay: number) => ctx.log(`${what}: ${(err as Error).message}; retry ${attempt + 1} in ${delay} ms`),
  };
}

async function runStage1(ctx: Ctx, cfg: AgentConfig): Promise<FlowResult> {
  const client = createAgentClient({ server: cfg.server, token: cfg.token, fetch: ctx.fetch });
  const reporter = createReporter(client, ctx.now, ctx.log);
  const report = reporter.report;
  await report('stage1-started', `bootfarm-agent ${AGENT_VERSION}`, { agentVersion: AGENT_VERSION, dryRun: ctx.dryRun });

  const collect = async (round: number) => {
    const t0 = Date.now();
    const r = await collectFacts({
      exec: ctx.exec,
      paths: ctx.paths,
      uuidHint: cfg.uuid,
      bootMac: parseBootif(cfg.bootif),
      lldpSocket: ctx.lldpSocket,
      lldpCaptureSeconds: cfg.lldpCaptureSeconds,
      // only the first round waits: a re-registration after a firmware update already knows its switch
      lldpWaitSeconds: round === 0 ? (cfg.lldpWaitSeconds ?? 10) : 0,
      sleep: ctx.sleep,
    });
    return { ...r, ms: Date.now() - t0, round };
  };
  let { facts, failures, ms } = await collect(0);
  const uuid = facts.system.uuid;
  reporter.setUuid(uuid);
  const retryWith = <T>(what: string, fn: () => Promise<T>, o: { attempts?: number } = {}) =>
    retry(fn, { ...retryOpts(ctx, what), ...(o.attempts !== undefined ? { attempts: Math.min(ctx.attempts ?? o.attempts, o.attempts) } : {}) });
  try {
    for (let round = 0; ; round++) {
      if (round > 0) {
        // after a firmware update: the versions the server needs are in fresh facts, never in a claim
        ({ facts, failures, ms } = await collect(round));
        if (facts.system.uuid !== uuid) throw new Error(`the system UUID changed from ${uuid} to ${facts.system.uuid} during this boot`);
      }
      await report('facts-collected', `${facts.nics.length} NICs, ${facts.lldp?.length ?? 0} LLDP neighbours, ${failures.length} probe failures`, {
        ms,
        failedProbes: failures.map((f) => f.probe),
        ...(round ? { round } : {}),
      });

      let reg: RegisterResponse;
      for (;;) {
        reg = await retry(() => client.register({ facts, failures, agentVersion: AGENT_VERSION }), retryOpts(ctx, 'register'));
        await report('registered', `state ${reg.state}, next ${reg.next}${reg.reason ? `: ${reg.reason}` : ''}`, {
          state: reg.state,
          next: reg.next,
          created: reg.created,
          conflicts: reg.conflicts,
        });
        if (reg.next !== 'hold') break;
        // held (maintenance, quarantine, cabling under policy block): ask again later; an operator may release the
        // node, or a technician re-patch a cable: register with fresh facts so the server checks what is there now
        await ctx.sleep((ctx.holdSeconds ?? 60) * 1000);
        ({ facts, failures, ms } = await collect(round + 1));
        if (facts.system.uuid !== uuid) throw new Error(`the system UUID changed from ${uuid} to ${facts.system.uuid} during this boot`);
      }

      // inventory only (issue 16 item 6): registered and checked (firmware came first: the server answers
      // `firmware` until the node complies), now off until someone decides what it is for
      if (reg.next === 'poweroff') {
        await report('poweroff', `powering off: ${reg.reason ?? 'the server asked'}`, { state: reg.state });
        if (ctx.dryRun) ctx.print(`dry-run: ${commandLine('poweroff', ['-f'])}`);
        else await run(ctx.exec, 'poweroff', ['-f'], { timeoutMs: 60_000 });
        return { outcome: 'poweroff', reason: reg.reason ?? 'inventory only' };
      }

      // an operator may have asked for the BMC to be set up in-band; the step never stops the boot
      if (round === 0 && ctx.bmcSetup !== false) {
        await bmcSetupStep({ uuid, client, exec: ctx.exec, report, workDir: ctx.paths.workDir, log: ctx.log, retry: (w, fn) => retryWith(w, fn, { attempts: 3 }) });
      }

      await mkdir(ctx.paths.workDir, { recursive: true });
      const fw = await (ctx.firmware ?? defaultFirmwareStep)({
        register: reg,
        facts,
        client,
        exec: ctx.exec,
        report,
        dryRun: ctx.dryRun,
        server: cfg.server,
        planKey: cfg.planKey,
        fetch: ctx.fetch,
        workDir: ctx.paths.workDir,
        log: ctx.log,
        retry: retryWith,
      });
      if (fw.action === 'reboot') {
        await report('firmware-updated', `rebooting: ${fw.reason}`);
        if (ctx.dryRun) ctx.print(`dry-run: reboot`);
        else await run(ctx.exec, 'reboot', ['-f'], { timeoutMs: 60_000 });
        return { outcome: 'reboot', reason: fw.reason };
      }
      if (fw.action === 'continue') break;
      // register again; the server quarantines after the baseline's maxAttempts, so this ends — the cap only
      // guards against a server that keeps asking without counting
      if (round + 1 >= MAX_FIRMWARE_ROUNDS) throw new Error(`firmware: still asked to update after ${MAX_FIRMWARE_ROUNDS} rounds in one boot (${fw.reason})`);
      if (fw.reason === 'empty firmware plan') await ctx.sleep((ctx.holdSeconds ?? 60) * 1000);
    }

    const profile = await retry(() => client.profile(uuid), retryOpts(ctx, 'profile'));
    const detail = await retry(() => client.detail(uuid), retryOpts(ctx, 'detail'));
    await report('profile-fetched', `${profile.profile}: ${profile.image.name}${profile.image.version ? `@${profile.image.version}` : ''} for ${detail.hostname}`, {
      profile: profile.profile,
      image: profile.image,
      kernel: profile.kernel.sha256,
      initrd: profile.initrd.sha256,
      hostname: detail.hostname,
    });

    await mkdir(ctx.paths.workDir, { recursive: true });
    await writeFile(join(ctx.paths.workDir, 'detail.json'), JSON.stringify(detail, null, 2));
    const kernel = join(ctx.paths.workDir, 'kernel');
    const initrd = join(ctx.paths.workDir, 'initrd');
    const t1 = Date.now();
    const dl = { ...retryOpts(ctx, 'download'), attempts: Math.min(ctx.attempts ?? 5, 5) };
    const k = await retry(() => downloadVerified(ctx.fetch, profile.kernel.url, profile.kernel.sha256, kernel), dl);
    const i = await retry(() => downloadVerified(ctx.fetch, profile.initrd.url, profile.initrd.sha256, initrd), dl);
    await report('image-downloaded', `kernel ${k.bytes} B, initrd ${i.bytes} B, sha256 verified`, { kernelBytes: k.bytes, initrdBytes: i.bytes, ms: Date.now() - t1 });

    // the facts of this boot say whether the running kernel refuses kexec_load (agent/facts/secureboot.ts)
    const lockdown = { secureBoot: facts.firmware?.secureBoot, lockdown: facts.kernel?.lockdown };
    const fileLoad = kexecNeedsSignedLoad(lockdown);
    await report('kexec-started', ctx.dryRun ? 'dry run: printing the kexec commands' : fileLoad ? 'kexec -s -l (kexec_file_load: locked-down kernel); kexec -e' : 'kexec -l; kexec -e', {
      cmdline: redactCmdline(profile.cmdline),
      dryRun: ctx.dryRun,
      fileLoad,
    });
    try {
      await kexecBoot(ctx.exec, { kernel, initrd, cmdline: profile.cmdline, fileLoad }, { dryRun: ctx.dryRun, print: ctx.print, lockdown });
    } catch (err) {
      if (err instanceof KexecRefusedError) {
        await report('kexec-refused', err.message, { ...lockdown, fallback: 'bmc-reboot (not implemented)' }).catch(() => undefined);
      }
      throw err;
    }
    return { outcome: 'kexec', dryRun: ctx.dryRun, profile, detail };
  } catch (err) {
    await report('agent-error', (err as Error).message).catch(() => undefined);
    throw err;
  }
}

async function readOr(path: string): Promise<string | undefined> {
  return readFile(path, 'utf8').then(
    (s) => s.trim(),
    () => undefined,
  );
}

/** 'none' when the profile has no iSCSI target, else whether a session to it exists. */
export async function iscsiState(sessionsDir: string, target: string | undefined): Promise<'up' | 'down' | 'none'> {
  if (!target) return 'none';
  const sessions = await readdir(sessionsDir).catch(() => [] as string[]);
  for (const s of sessions) if ((await readOr(join(sessionsDir, s, 'targetname'))) === target) return 'up';
  return 'down';
}

async function runCompute(ctx: Ctx, cfg: AgentConfig): Promise<FlowResult> {
  const client = createAgentClient({ server: cfg.server, token: cfg.token, fetch: ctx.fetch });
  const reporter = createReporter(client, ctx.now, ctx.log);
  // the profile's cmdline always carries bootfarm.uuid=; the kernel's SMBIOS copy is the fallback
  const uuid = cfg.uuid ?? normalizeUuid(await readOr(ctx.paths.productUuid));
  if (!uuid) throw new Error(`compute mode needs bootfarm.uuid= on the kernel command line (or a readable ${ctx.paths.productUuid})`);
  reporter.setUuid(uuid);
  await reporter.report('compute-started', `bootfarm-agent ${AGENT_VERSION}`, { agentVersion: AGENT_VERSION });

  // the network before installed: "installed" should mean the node is on its networks, and a failure to configure
  // them is reported but never stops the heartbeats (the server's network-mismatch event shows the operator)
  const keep = bootDestinations(cfg);
  const first = await computeNetwork(ctx, client, reporter, uuid, keep);
  /** the detail as last applied: what the heartbeat's read-back is taken against */
  let detail = first.detail;

  const bootId = await readOr(ctx.paths.bootId);
  const digests = { ...(cfg.kernelDigest ? { kernelDigest: cfg.kernelDigest } : {}), ...(cfg.initrdDigest ? { initrdDigest: cfg.initrdDigest } : {}) };
  try {
    await retry(() => client.installed(uuid, { ...digests, ...(bootId ? { bootId: bootId.slice(0, 128) } : {}) }), retryOpts(ctx, 'installed'));
    ctx.log(`installed: reported${bootId ? ` (boot ${bootId})` : ''}`);
  } catch (err) {
    // refused (e.g. 409: the node is no longer provisioning): say so, but keep beating: heartbeats are what the
    // server's health controller watches, and they carry the digests too
    await reporter.report('agent-error', `installed: ${(err as Error).message}`);
  }

  // what this node can host, probed once (KVM by starting QEMU: never on a dry run); guests are listed every beat
  const hv = { exec: ctx.exec, paths: ctx.paths, ...(ctx.qmp ? { qmp: ctx.qmp } : {}), ...(ctx.alive ? { alive: ctx.alive } : {}) };
  const host: HostCapacity = ctx.dryRun
    ? await probeHost({ ...hv, workDir: ctx.paths.workDir, paths: { ...ctx.paths, kvmDevice: '/nonexistent/dry-run' } }).then((h) => ({ ...h, kvm: false, kvmDetail: 'dry run: KVM not probed (that starts QEMU)' }))
    : await probeHost({ ...hv, workDir: ctx.paths.workDir });
  // no event of its own: the first heartbeat carries it, and the server keeps it on the node
  ctx.log(`hypervisor: ${host.cpus} CPUs, ${host.memoryMiB} MiB, kvm ${host.kvm ? 'usable' : `not usable (${host.kvmDetail ?? 'unknown'})`}, ${host.qemu ? `QEMU ${host.qemu.version}` : 'no QEMU'}`);
  const selfTest = runSelfTests(ctx, cfg, reporter, host);

  const every = (cfg.heartbeatSeconds ?? 30) * 1000;
  let beats = 0;
  /** the capacity the server last accepted, and how many beats ago */
  let lastCapacity: string | undefined;
  let sinceCapacity = 0;
  /** the read-back the server last accepted: sent again only when it changes (HeartbeatRequest.network) */
  let lastNetwork: string | undefined;
  const random = ctx.random ?? Math.random;
  let netRetries = 0;
  let netRetryAt = first.inPlace ? Infinity : ctx.now().getTime() + networkRetryDelay(0, every, random);
  for (let sent = 1; ; sent++) {
    if (ctx.now().getTime() >= netRetryAt) {
      const again = await computeNetwork(ctx, client, reporter, uuid, keep, { again: true });
      detail = again.detail ?? detail;
      netRetryAt = again.inPlace ? Infinity : ctx.now().getTime() + networkRetryDelay(++netRetries, every, random);
      if (!again.inPlace) ctx.log(`network: not in place; next try in ${Math.round((netRetryAt - ctx.now().getTime()) / 1000)} s`);
    }
    const uptime = Number((await readOr(ctx.paths.uptime))?.split(/\s+/)[0]);
    const load1 = Number((await readOr(ctx.paths.loadavg))?.split(/\s+/)[0]);
    const network = detail ? await readConfigured(ctx, detail) : undefined;
    const changed = network && JSON.stringify(network) !== lastNetwork ? network : undefined;
    const capacity: HypervisorCapacity = { ...host, guests: await listGuests(hv).catch(() => []) };
    const sendCapacity = JSON.stringify(capacity) !== lastCapacity || sinceCapacity >= HEARTBEAT_CAPACITY_EVERY;
    try {
      const res = await client.heartbeat(uuid, {
        ...(Number.isFinite(uptime) ? { uptimeSeconds: uptime } : {}),
        ...(Number.isFinite(load1) ? { load1 } : {}),
        iscsi: await iscsiState(ctx.paths.iscsiSessions, cfg.iscsiTarget),
        ...digests,
        ...(changed ? { network: changed } : {}),
        ...(sendCapacity ? { hypervisor: capacity } : {}),
      });
      beats++;
      if (changed) lastNetwork = JSON.stringify(changed);
      if (sendCapacity) {
        lastCapacity = JSON.stringify(capacity);
        sinceCapacity = 0;
      } else sinceCapacity++;
      if (res.next === 'reboot') {
        await reporter.report('reboot-requested', `the server asked for a reboot (state ${res.state})`);
        if (ctx.dryRun) ctx.print(`dry-run: ${commandLine('reboot', ['-f'])}`);
        else await run(ctx.exec, 'reboot', ['-f'], { timeoutMs: 60_000 });
        return { outcome: 'reboot', reason: `server: ${res.state}` };
      }
    } catch (err) {
      // a missed beat is the server's business (it counts them); the agent keeps beating
      ctx.log(`heartbeat: ${(err as Error).message}`);
    }
    if (ctx.maxHeartbeats !== undefined && sent >= ctx.maxHeartbeats) {
      await selfTest;
      return { outcome: 'heartbeats-done', beats };
    }
    await ctx.sleep(every);
  }
}

/**
 * The self-tests a profile asked for (bootfarm.selftest=), run beside the heartbeats: a guest booting under TCG takes
 * minutes, and the node is installed and beating meanwhile. Each ends in one event; none ever throws.
 */
async function runSelfTests(ctx: Ctx, cfg: AgentConfig, reporter: ReturnType<typeof createReporter>, host: HostCapacity): Promise<void> {
  for (const name of cfg.selfTests) {
    if (name !== 'hypervisor' && name !== 'hypervisor-linux') {
      await reporter.report('selftest-unknown', `bootfarm.selftest=${name}: this agent knows "hypervisor" and "hypervisor-linux"`, { name });
      continue;
    }
    if (ctx.dryRun) {
      await reporter.report('hypervisor-selftest-skipped', 'dry run: no guest is started');
      continue;
    }
    if (!host.qemu) {
      await reporter.report('hypervisor-selftest-failed', `no QEMU in this image (${host.kvmDetail ?? ''})`);
      continue;
    }
    // the Linux guest proves userspace; without KVM it takes minutes under TCG (inside a TCG VM: agent/README.md), so
    // plain "hypervisor" then boots the Multiboot banner guest instead; "hypervisor-linux" insists on Linux
    const guest = name === 'hypervisor-linux' || host.kvm ? 'linux' : 'multiboot';
    const r = await hypervisorSelfTest({
      exec: ctx.exec,
      paths: ctx.paths,
      ...(ctx.qmp ? { qmp: ctx.qmp } : {}),
      ...(ctx.alive ? { alive: ctx.alive } : {}),
      fetch: ctx.fetch,
      sleep: ctx.sleep,
      now: () => ctx.now().getTime(),
      guest,
      ...(cfg.kernelDigest ? { kernelUrl: `${cfg.server}/images/${cfg.kernelDigest}`, kernelSha256: cfg.kernelDigest } : {}),
      busybox: ctx.paths.busybox,
      workDir: ctx.paths.workDir,
      kvm: host.kvm,
      ...ctx.selfTest,
    }).catch((err: Error) => ({ ok: false as const, guest: 'selftest', kind: guest, accel: host.kvm ? ('kvm' as const) : ('tcg' as const), seconds: 0, error: err.message }));
    const what = r.kind === 'linux' ? 'Linux guest' : 'Multiboot guest';
    if (r.ok) await reporter.report('hypervisor-selftest', `${what} ${r.guest} ${r.kind === 'linux' ? 'reached userspace' : 'printed its banner'} under ${r.accel} in ${r.seconds} s${r.guestUptime !== undefined ? ` (guest uptime ${r.guestUptime} s)` : ''}: ${r.banner}`, { ...r });
    else await reporter.report('hypervisor-selftest-failed', `${what} ${r.guest} under ${r.accel} after ${r.seconds} s: ${r.error}`, { ...r });
  }
}

/** what the kernel has on the detail's devices now; undefined (and logged) when it cannot be read */
async function readConfigured(ctx: Ctx, detail: Detail) {
  try {
    return configuredFrom(await readState(ctx.exec), detail);
  } catch (err) {
    ctx.log(`network read-back: ${(err as Error).message}`);
    return undefined;
  }
}

/** The addresses the compute OS must keep reaching whatever the plan says: the server's and the iSCSI portal's. */
export function bootDestinations(cfg: Pick<AgentConfig, 'server' | 'iscsiPortal'>): string[] {
  const out: string[] = [];
  const host = (h: string) => h.replace(/^\[(.*)\]$/, '$1');
  try {
    out.push(host(new URL(cfg.server).hostname));
  } catch {}
  if (cfg.iscsiPortal) {
    // host, host:port, [v6] or [v6]:port (iscsistart -a/-p; images/rootfs/compute/lib/bootfarm/iscsi.sh)
    const m = /^\[([^\]]+)\](?::\d+)?$/.exec(cfg.iscsiPortal) ?? /^([^:]+)(?::\d+)?$/.exec(cfg.iscsiPortal);
    out.push(m ? m[1]! : cfg.iscsiPortal);
  }
  return [...new Set(out)];
}

interface ComputeNetwork {
  /** the detail as applied (conflicted addresses replaced); absent when the server refused it or could not be reached */
  detail?: Detail;
  /** every change the detail asks for that may be made was made: no reason to fetch it again */
  inPlace: boolean;
}

/**
 * Fetches the detail and applies its network. At bring-up the fetch has the agent's usual patience (the server may
 * be restarting). `again` is a later heartbeat's retry: one request (a server still down costs one request and
 * never holds up the beats), failures logged rather than reported again, and nothing applied when the kernel already
 * has what the detail asks for (pendingChanges). Applying plans against the kernel as it is now, with the boot path
 * protected as at bring-up (applyNetwork's keep): a retry never runs what bring-up refused.
 */
async function computeNetwork(ctx: Ctx, client: AgentClient, reporter: ReturnType<typeof createReporter>, uuid: string, keep: string[], { again = false } = {}): Promise<ComputeNetwork> {
  let detail: Detail;
  try {
    detail = await retry(() => client.detail(uuid), { ...retryOpts(ctx, 'detail'), ...(again ? { attempts: 1 } : {}) });
  } catch (err) {
    // e.g. 409 network_missing: the profile names a network IPAM does not have; the node stays on its boot lease
    if (again) ctx.log(`network retry: detail: ${(err as Error).message}`);
    else await reporter.report('network-failed', `detail: ${(err as Error).message}`);
    return { inPlace: false };
  }
  if (again) {
    let pending: string[] | undefined;
    try {
      pending = await pendingChanges(detail, { exec: ctx.exec, keep, resolvConf: ctx.paths.resolvConf });
    } catch (err) {
      ctx.log(`network retry: ${(err as Error).message}`);
    }
    if (pending?.length === 0) {
      ctx.log('network retry: the detail\'s network is in place; nothing to apply');
      return { detail, inPlace: true };
    }
  }
  let r: ApplyResult;
  try {
    r = await applyNetwork(detail, {
      ...ctx.network,
      keep,
      exec: ctx.exec,
      sleep: ctx.sleep,
      resolvConf: ctx.paths.resolvConf,
      dryRun: ctx.dryRun,
      print: ctx.print,
      onConflict: async (c) => {
        const res = await retry(
          () => client.addressConflict(uuid, { address: c.address.split('/')[0]!, how: c.how, ...(c.network ? { network: c.network } : {}), ...(c.detail ? { detail: c.detail } : {}) }),
          { ...retryOpts(ctx, 'address conflict'), attempts: Math.min(ctx.attempts ?? 5, 5) },
        );
        await reporter.report('address-conflict', `${c.address} on ${c.device} is in use by another host (${c.how}${c.detail ? `: ${c.detail}` : ''}); the server replaced it with ${res.replacement.address}`, {
          address: c.address,
          device: c.device,
          how: c.how,
          ...(c.network ? { network: c.network } : {}),
          replacement: res.replacement.address,
        });
        return res.replacement;
      },
    });
  } catch (err) {
    // applyNetwork accumulates its failures; this is for the unforeseen, which must not stop the heartbeats either
    await reporter.report('network-failed', `network: ${(err as Error).message}`);
    return { detail, inPlace: false };
  }
  // only once some of the detail's addresses are really on the node: a network that could not be applied at all
  // leaves the node on its boot lease, which udhcpc must keep renewing
  if (!ctx.dryRun && r.configured?.addresses.length) {
    await writeFile(ctx.paths.networkApplied, `${JSON.stringify({ at: ctx.now().toISOString(), addresses: r.detail.addresses.map((a) => `${a.address} ${a.device}`) })}\n`).catch((err: Error) =>
      ctx.log(`network: ${ctx.paths.networkApplied}: ${err.message} (a DHCP renew on the boot NIC may undo the addresses)`),
    );
  }
  const data = { ran: r.ran, ...(r.configured ? { configured: r.configured } : {}), ...(r.conflicts.length ? { conflicts: r.conflicts } : {}) };
  if (r.failures.length) {
    await reporter.report('network-failed', r.failures.map((f) => `${f.command}: ${f.error}`).join('; '), { ...data, failures: r.failures });
  } else {
    const addrs = r.detail.addresses.map((a) => `${a.address} on ${a.device}`).join(', ') || 'no addresses';
    await reporter.report(ctx.dryRun ? 'network-planned' : 'network-configured', `${r.ran.length} command(s)${ctx.dryRun ? ' printed' : ''}; ${addrs}`, data);
  }
  return { detail: r.detail, inPlace: r.failures.length === 0 };
}
