// LLDP neighbours as lldpd sees them, from `lldpcli -f json0 show neighbors details`.
// json0 is lldpd's stable format: every container is an array even with one member. The plain `json` format
// turns one-member arrays into objects keyed by name, so its shape changes with the neighbour count
// (see test/fixtures/agent/lldpcli-json-*-unstable.json); we never parse it.
import type { LldpNeighbor } from '../../server/contract/facts.ts';
import type { Exec } from '../exec.ts';
import { run } from '../exec.ts';

export class LldpcliParseError extends Error {
  override name = 'LldpcliParseError';
}

type J = Record<string, unknown>;

// lldpd's names for the ID subtypes → the 802.1AB-2016 names (Tables 8-2, 8-3) that lldp-tlv.ts also uses,
// so the server sees one vocabulary whichever way a neighbour was learned.
const SUBTYPE_NAMES: Record<string, string> = { mac: 'mac', ifname: 'interface-name', ifalias: 'interface-alias', ip: 'network-address', local: 'local' };
const subtypeName = (s: string | undefined) => (s === undefined ? undefined : (SUBTYPE_NAMES[s] ?? s));
const arr = (v: unknown): J[] => (Array.isArray(v) ? (v.filter((x) => x && typeof x === 'object') as J[]) : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined);
/** json0 wraps scalars as [{"value": "x"}] */
const val = (v: unknown): string | undefined => str(arr(v)[0]?.['value']);
const vals = (v: unknown): string[] => arr(v).map((x) => str(x['value'])).filter((x): x is string => x !== undefined);

export interface LldpcliNeighbor extends LldpNeighbor {
  capabilities?: Array<{ type: string; enabled: boolean }>;
  via?: string;
  unknownTlvs?: Array<{ oui: string; subtype: number; value: string }>;
}

export function parseLldpcliJson0(text: string): LldpcliNeighbor[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new LldpcliParseError(`lldpcli output is not JSON: ${(e as Error).message}`);
  }
  if (!doc || typeof doc !== 'object' || !Array.isArray((doc as J)['lldp'])) {
    throw new LldpcliParseError('lldpcli output has no "lldp" array: was it run with -f json0?');
  }
  const out: LldpcliNeighbor[] = [];
  for (const l of arr((doc as J)['lldp'])) {
    for (const iface of arr(l['interface'])) {
      const name = str(iface['name']);
      if (!name) continue;
      const chassis = arr(iface['chassis'])[0] ?? {};
      const port = arr(iface['port'])[0] ?? {};
      const chassisId = arr(chassis['id'])[0];
      const portId = arr(port['id'])[0];
      const n: LldpcliNeighbor = { interface: name };
      const set = <K extends keyof LldpcliNeighbor>(k: K, v: LldpcliNeighbor[K] | undefined) => {
        if (v !== undefined) n[k] = v;
      };
      set('via', str(iface['via']));
      set('chassisId', str(chassisId?.['value']));
      set('chassisIdSubtype', subtypeName(str(chassisId?.['type'])));
      set('systemName', val(chassis['name']));
      set('systemDescription', val(chassis['descr']));
      set('portId', str(portId?.['value']));
      set('portIdSubtype', subtypeName(str(portId?.['type'])));
      set('portDescription', val(port['descr']));
      const ttl = Number(val(port['ttl']) ?? val(iface['ttl']));
      if (Number.isInteger(ttl)) n.ttl = ttl;
      const mgmt = vals(chassis['mgmt-ip']);
      if (mgmt.length) n.managementAddresses = mgmt;
      const caps = arr(chassis['capability']).map((c) => ({ type: str(c['type']) ?? '', enabled: c['enabled'] === true }));
      if (caps.length) n.capabilities = caps;
      // IEEE 802.1 Port VLAN ID: lldpd lists VLANs with a "pvid": true flag on the native one
      const vlans = arr(iface['vlan']);
      const pvid = vlans.find((v) => v['pvid'] === true) ?? vlans[0];
      const vid = Number(str(pvid?.['vlan-id']));
      if (Number.isInteger(vid) && vid > 0) n.vlan = vid;
      const unknown = arr(iface['unknown-tlvs']).flatMap((u) => arr(u['unknown-tlv']));
      if (unknown.length)
        n.unknownTlvs = unknown.map((u) => ({
          oui: (str(u['oui']) ?? '').replaceAll(',', ':').toLowerCase(),
          subtype: Number(str(u['subtype'])),
          value: (str(u['value']) ?? '').replaceAll(',', '').toLowerCase(),
        }));
      out.push(n);
    }
  }
  return out;
}

export async function collectLldp(exec: Exec, { socket }: { socket?: string } = {}): Promise<LldpcliNeighbor[]> {
  const args = [...(socket ? ['-u', socket] : []), '-f', 'json0', 'show', 'neighbors', 'details'];
  return parseLldpcliJson0(await run(exec, 'lldpcli', args, { timeoutMs: 10_000 }));
}
