// Network interfaces: identity and link from sysfs (/sys/class/net/IFACE/*), driver and NIC firmware from
// `ethtool -i IFACE` (the only place the firmware version shows, and firmware compliance needs it).
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { NicFacts } from '../../server/contract/facts.ts';
import type { Exec } from '../exec.ts';
import { ExecError } from '../exec.ts';

export interface EthtoolDriverInfo {
  driver?: string;
  version?: string;
  firmwareVersion?: string;
  expansionRomVersion?: string;
  busInfo?: string;
}

export function parseEthtoolDriverInfo(text: string): EthtoolDriverInfo {
  const kv: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) kv[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  if (kv['driver'] === undefined) throw new Error('ethtool -i output has no "driver:" line');
  const out: EthtoolDriverInfo = {};
  // ethtool prints empty values (firmware-version: ) for drivers that have none: leave them out
  const set = (k: keyof EthtoolDriverInfo, v: string | undefined) => {
    if (v) out[k] = v;
  };
  set('driver', kv['driver']);
  set('version', kv['version']);
  set('firmwareVersion', kv['firmware-version']);
  set('expansionRomVersion', kv['expansion-rom-version']);
  set('busInfo', kv['bus-info']);
  return out;
}

/** BOOTIF=01-52-54-00-12-34-56 (pxelinux/iPXE style: ARP hardware type 1, then the MAC) → "52:54:00:12:34:56". */
export function parseBootif(v: string | undefined): string | undefined {
  const m = /^(?:01-)?([0-9a-fA-F]{2}(?:[-:][0-9a-fA-F]{2}){5})$/.exec(v?.trim() ?? '');
  return m ? m[1]!.toLowerCase().replaceAll('-', ':') : undefined;
}

export interface NicProbeFailure {
  iface: string;
  error: unknown;
}

const readTrim = (p: string) => readFile(p, 'utf8').then((s) => s.trim(), () => undefined);

/**
 * Every Ethernet interface (sysfs `type` 1, ARPHRD_ETHER) but loopback. A failing `ethtool -i` on one NIC
 * keeps that NIC (without driver fields) and is returned in `failures`.
 */
export async function collectNics(
  exec: Exec,
  { sysNet = '/sys/class/net', bootMac }: { sysNet?: string; bootMac?: string | undefined } = {},
): Promise<{ nics: NicFacts[]; failures: NicProbeFailure[] }> {
  const names = (await readdir(sysNet)).sort();
  const nics: NicFacts[] = [];
  const failures: NicProbeFailure[] = [];
  for (const name of names) {
    const dir = join(sysNet, name);
    if ((await readTrim(join(dir, 'type'))) !== '1') continue;
    const mac = (await readTrim(join(dir, 'address')))?.toLowerCase();
    if (!mac || mac === '00:00:00:00:00:00') continue;
    const nic: NicFacts = { name, mac };
    const operstate = await readTrim(join(dir, 'operstate'));
    const carrier = await readTrim(join(dir, 'carrier')); // unreadable while the link is administratively down
    nic.link = carrier === '1' || operstate === 'up';
    const speed = Number(await readTrim(join(dir, 'speed')));
    // the kernel reports -1 (SPEED_UNKNOWN) for virtual NICs and links that are down
    if (Number.isInteger(speed) && speed > 0) nic.speedMbps = speed;
    const vendor = await readTrim(join(dir, 'device', 'vendor'));
    const device = await readTrim(join(dir, 'device', 'device'));
    if (vendor && device) nic.pciId = `${vendor.replace(/^0x/, '')}:${device.replace(/^0x/, '')}`;
    const mtu = Number(await readTrim(join(dir, 'mtu')));
    if (Number.isInteger(mtu)) nic['mtu'] = mtu;
    if (bootMac) nic.boot = mac === bootMac;
    const r = await exec('ethtool', ['-i', name], { timeoutMs: 5_000 });
    if (r.exitCode === 0) {
      try {
        const info = parseEthtoolDriverInfo(r.stdout);
        if (info.driver) nic.driver = info.driver;
        if (info.version) nic.driverVersion = info.version;
        if (info.firmwareVersion) nic.firmwareVersion = info.firmwareVersion;
        if (info.busInfo) nic.busInfo = info.busInfo;
      } catch (error) {
        failures.push({ iface: name, error });
      }
    } else {
      failures.push({ iface: name, error: new ExecError(r) });
    }
    nics.push(nic);
  }
  return { nics, failures };
}
