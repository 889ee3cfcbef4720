// BMC LAN settings and firmware from the in-band IPMI interface (`ipmitool lan print`, `ipmitool mc info`).
// Only tried when /dev/ipmi0 exists: without the ipmi_si driver ipmitool waits for its timeout.
// Output is "Key<padding>: value" lines; continuation lines start with ":" and are ignored.
import type { Exec } from '../exec.ts';
import { run } from '../exec.ts';

function kv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const k = line.slice(0, i).trim();
    if (k && !(k in out)) out[k] = line.slice(i + 1).trim();
  }
  return out;
}

export interface BmcLan {
  ipAddress?: string;
  netmask?: string;
  gateway?: string;
  macAddress?: string;
  ipSource?: string;
  vlan?: number;
}

export function parseIpmitoolLanPrint(text: string): BmcLan {
  const m = kv(text);
  if (m['IP Address'] === undefined && m['MAC Address'] === undefined) throw new Error('ipmitool lan print output has no "IP Address" or "MAC Address" line');
  const out: BmcLan = {};
  // 0.0.0.0 / all-zero MAC: the BMC has no address configured, which is a fact worth keeping as absent
  if (m['IP Address'] && m['IP Address'] !== '0.0.0.0') out.ipAddress = m['IP Address'];
  if (m['Subnet Mask'] && m['Subnet Mask'] !== '0.0.0.0') out.netmask = m['Subnet Mask'];
  if (m['Default Gateway IP'] && m['Default Gateway IP'] !== '0.0.0.0') out.gateway = m['Default Gateway IP'];
  if (m['MAC Address'] && m['MAC Address'] !== '00:00:00:00:00:00') out.macAddress = m['MAC Address'].toLowerCase();
  if (m['IP Address Source']) out.ipSource = m['IP Address Source'];
  const vlan = Number(m['802.1q VLAN ID']);
  if (Number.isInteger(vlan) && vlan > 0) out.vlan = vlan;
  return out;
}

export function parseIpmitoolMcInfo(text: string): { firmwareVersion?: string; ipmiVersion?: string; manufacturer?: string } {
  const m = kv(text);
  if (m['Firmware Revision'] === undefined) throw new Error('ipmitool mc info output has no "Firmware Revision" line');
  const out: { firmwareVersion?: string; ipmiVersion?: string; manufacturer?: string } = { firmwareVersion: m['Firmware Revision'] };
  if (m['IPMI Version']) out.ipmiVersion = m['IPMI Version'];
  if (m['Manufacturer Name']) out.manufacturer = m['Manufacturer Name'];
  return out;
}

export async function collectBmcLan(exec: Exec, channel = 1): Promise<BmcLan> {
  return parseIpmitoolLanPrint(await run(exec, 'ipmitool', ['lan', 'print', String(channel)], { timeoutMs: 20_000 }));
}

export async function collectBmcInfo(exec: Exec) {
  return parseIpmitoolMcInfo(await run(exec, 'ipmitool', ['mc', 'info'], { timeoutMs: 20_000 }));
}
