// The facts report: every probe runs, each failure is recorded in `failures` and the report goes on
// (STYLE.md §11, after ironic-python-agent's AccumulatedFailures). Only a missing system UUID is fatal:
// the server keys every node by it.
import { access, readFile } from 'node:fs/promises';
import type { Facts, ProbeFailure } from '../../server/contract/facts.ts';
import { ExecError, type Exec } from '../exec.ts';
import { collectDmidecode, normalizeUuid, type DmiFacts } from './dmidecode.ts';
import { collectBmcInfo, collectBmcLan } from './ipmitool.ts';
import { collectLldp } from './lldp.ts';
import { captureLldp } from './lldp-capture.ts';
import { collectDisks } from './lsblk.ts';
import { collectNics } from './nics.ts';
import { collectCpu, collectMeminfo } from './proc.ts';
import { readLockdown, readSecureBoot } from './secureboot.ts';

export interface FactPaths {
  sysNet: string;
  cpuinfo: string;
  meminfo: string;
  /** the in-band IPMI device; the BMC probes run only when it exists */
  ipmiDevice: string;
  /** the kernel's copy of the SMBIOS UUID, used when dmidecode fails */
  productUuid: string;
  /** UEFI firmware directory (efivars under it); absent on a legacy BIOS boot */
  efi: string;
  /** securityfs lockdown file */
  lockdown: string;
}

export const DEFAULT_FACT_PATHS: FactPaths = {
  sysNet: '/sys/class/net',
  cpuinfo: '/proc/cpuinfo',
  meminfo: '/proc/meminfo',
  ipmiDevice: '/dev/ipmi0',
  productUuid: '/sys/class/dmi/id/product_uuid',
  efi: '/sys/firmware/efi',
  lockdown: '/sys/kernel/security/lockdown',
};

export interface CollectOptions {
  exec: Exec;
  paths?: Partial<FactPaths>;
  /** bootfarm.uuid= from the kernel command line: the last resort when SMBIOS has no UUID */
  uuidHint?: string | undefined;
  /** BOOTIF MAC: marks the NIC the node netbooted from */
  bootMac?: string | undefined;
  /** lldpd control socket (tests run one lldpd per namespace) */
  lldpSocket?: string | undefined;
  /** when lldpcli fails (no lldpd in the image), listen this long for LLDPDUs with tcpdump; 0 = do not */
  lldpCaptureSeconds?: number | undefined;
  /**
   * Wait up to this long for a neighbour on the boot NIC (or any linked NIC without BOOTIF). Our lldpd has only
   * just started: a switch answers on its own tx-interval (30 s by default on most) unless it does 802.1AB-2009
   * fast start, so the first read is often empty. 0 = read once.
   */
  lldpWaitSeconds?: number | undefined;
  sleep?: ((ms: number) => Promise<void>) | undefined;
}

/** How long, after the boot NIC's neighbour, the other linked NICs' neighbours are waited for: switches send on each
 * port on their own timer, and a NIC whose switch sends no LLDP should not cost more than this at every boot. */
export const LLDP_OTHER_NICS_WAIT_SECONDS = 3;

/**
 * Reads LLDP neighbours again, once a second for up to `seconds`, until one of `watched` interfaces has one (`every`:
 * until each of them has one). A failed read keeps what the last good one saw.
 */
export async function waitForNeighbour<N extends { interface: string }>(first: N[], read: () => Promise<N[] | undefined>, watched: string[], seconds: number, sleep: (ms: number) => Promise<void>, { every = false }: { every?: boolean } = {}): Promise<N[]> {
  let seen = first;
  const has = (i: string) => seen.some((n) => n.interface === i);
  for (let waited = 0; watched.length && waited < seconds && !(every ? watched.every(has) : watched.some(has)); waited++) {
    await sleep(1000);
    seen = (await read()) ?? seen;
  }
  return seen;
}

export class NoUuidError extends Error {
  override name = 'NoUuidError';
}

export function probeFailure(probe: string, err: unknown): ProbeFailure {
  const f: ProbeFailure = { probe, message: (err instanceof Error ? err.message : String(err)).slice(0, 4096) };
  if (err instanceof ExecError) {
    f.command = err.result.command.slice(0, 1024);
    f.stderr = err.result.stderr.slice(-16384);
    f.exitCode = err.result.exitCode;
  }
  return f;
}

export async function collectFacts({ exec, paths: p = {}, uuidHint, bootMac, lldpSocket, lldpCaptureSeconds = 0, lldpWaitSeconds = 0, sleep = (ms) => new Promise((r) => setTimeout(r, ms)) }: CollectOptions): Promise<{ facts: Facts; failures: ProbeFailure[] }> {
  const paths = { ...DEFAULT_FACT_PATHS, ...p };
  const failures: ProbeFailure[] = [];
  async function probe<T>(name: string, fn: () => Promise<T>): Promise<T | undefined> {
    try {
      return await fn();
    } catch (err) {
      failures.push(probeFailure(name, err));
      return undefined;
    }
  }

  const dmi: DmiFacts | undefined = await probe('dmidecode', () => collectDmidecode(exec));
  let uuid = dmi?.system.uuid;
  if (!uuid) uuid = normalizeUuid(await readFile(paths.productUuid, 'utf8').catch(() => undefined));
  if (!uuid) uuid = normalizeUuid(uuidHint);
  if (!uuid) {
    throw new NoUuidError(
      `no system UUID: dmidecode gave none${failures[0] ? ` (${failures[0].message})` : ''}, ${paths.productUuid} is unreadable, and the kernel command line has no bootfarm.uuid=`,
    );
  }

  const facts: Facts = { system: { ...(dmi?.system ?? {}), uuid }, nics: [] };
  if (dmi?.bios) facts.bios = dmi.bios;
  if (dmi?.baseboard) facts.baseboard = dmi.baseboard;
  if (dmi?.chassis) facts.chassis = dmi.chassis;
  if (dmi?.processors.length) facts.processors = dmi.processors;

  const nicResult = await probe('nics', () => collectNics(exec, { sysNet: paths.sysNet, bootMac }));
  if (nicResult) {
    facts.nics = nicResult.nics;
    for (const f of nicResult.failures) failures.push(probeFailure(`ethtool:${f.iface}`, f.error));
  }

  const cpu = await probe('cpuinfo', () => collectCpu(paths.cpuinfo));
  if (cpu) facts.cpu = cpu;
  const mem = await probe('meminfo', () => collectMeminfo(paths.meminfo));
  if (mem || dmi?.memoryDevices.length) {
    facts.memory = { ...(mem ?? {}), ...(dmi?.memoryDevices.length ? { devices: dmi.memoryDevices } : {}) };
  }
  const disks = await probe('lsblk', () => collectDisks(exec));
  if (disks) facts.disks = disks;
  let lldp: Facts['lldp'] = await probe('lldp', () => collectLldp(exec, { socket: lldpSocket }));
  if (lldp) {
    const watched = facts.nics.filter((n) => (facts.nics.some((x) => x.boot) ? n.boot : n.link)).map((n) => n.name);
    const read = () => probe('lldp', () => collectLldp(exec, { socket: lldpSocket }));
    lldp = await waitForNeighbour(lldp, read, watched, lldpWaitSeconds, sleep);
    // then, briefly, the other linked NICs (stage-1's /init brings their links up): the cabling check and the bond's
    // member choice read every NIC's switch port
    const others = facts.nics.filter((n) => n.link && !watched.includes(n.name)).map((n) => n.name);
    if (watched.length && lldp.some((n) => watched.includes(n.interface))) lldp = await waitForNeighbour(lldp, read, others, Math.min(LLDP_OTHER_NICS_WAIT_SECONDS, lldpWaitSeconds), sleep, { every: true });
  }
  if (!lldp && lldpCaptureSeconds > 0) {
    const up = facts.nics.filter((n) => n.link).map((n) => n.name);
    const cap = await probe('lldp-capture', () => captureLldp(exec, up, { seconds: lldpCaptureSeconds }));
    if (cap) {
      lldp = cap.neighbors;
      for (const f of cap.failures) failures.push(probeFailure(`lldp-capture:${f.iface}`, f.error));
    }
  }
  if (lldp) facts.lldp = lldp;

  const bmc: Record<string, unknown> = { ...(dmi?.bmc ?? {}) };
  const hasIpmi = await access(paths.ipmiDevice).then(
    () => true,
    () => false,
  );
  if (hasIpmi) {
    const lan = await probe('ipmitool-lan', () => collectBmcLan(exec));
    if (lan) Object.assign(bmc, lan);
    const mc = await probe('ipmitool-mc', () => collectBmcInfo(exec));
    if (mc) Object.assign(bmc, mc);
  }
  if (Object.keys(bmc).length) facts.bmc = bmc;

  // neither reader throws: a doubt is 'unknown' (Secure Boot) or an absent field (lockdown)
  facts.firmware = { secureBoot: await readSecureBoot(paths.efi) };
  const lockdown = await readLockdown(paths.lockdown);
  if (lockdown) facts.kernel = { lockdown };
  return { facts, failures };
}
