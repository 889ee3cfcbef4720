// SMBIOS facts from the full text output of `dmidecode` (DMTF DSP0134). We parse dmidecode's text rather than
// the raw table because dmidecode already knows every SMBIOS version's quirks (UUID byte order since 2.6,
// size encodings of type 17) and its text layout has been stable for 15 years:
//   Handle 0x0100, DMI type 1, 27 bytes      ← record header
//   System Information                       ← record title
//   \tKey: Value                             ← one property
//   \tKey:                                   ← a list property, followed by
//   \t\tItem                                 ←   its items
import type { Exec } from '../exec.ts';
import { run } from '../exec.ts';

export interface DmiRecord {
  handle: string;
  type: number;
  title: string;
  props: Record<string, string>;
  lists: Record<string, string[]>;
}

export class DmidecodeParseError extends Error {
  override name = 'DmidecodeParseError';
}

const HEADER = /^Handle (0x[0-9A-Fa-f]+), DMI type (\d+), \d+ bytes$/;

export function parseDmiRecords(text: string): DmiRecord[] {
  const records: DmiRecord[] = [];
  let cur: DmiRecord | undefined;
  let expectTitle = false;
  let listKey: string | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/\s+$/, '');
    const h = HEADER.exec(line);
    if (h) {
      cur = { handle: h[1]!.toLowerCase(), type: Number(h[2]), title: '', props: {}, lists: {} };
      records.push(cur);
      expectTitle = true;
      listKey = undefined;
      continue;
    }
    if (!cur) continue; // preamble: "# dmidecode 3.4", "SMBIOS 2.8 present." …
    if (line === '') {
      listKey = undefined;
      continue;
    }
    if (expectTitle) {
      cur.title = line.trim();
      expectTitle = false;
      continue;
    }
    if (line.startsWith('\t\t')) {
      if (listKey) (cur.lists[listKey] ??= []).push(line.trim());
      continue;
    }
    if (line.startsWith('\t')) {
      const body = line.slice(1);
      const i = body.indexOf(':');
      if (i < 0) {
        // "Header and Data:" style dumps (dmidecode -u) or OEM strings without a colon: keep as a flag
        cur.props[body.trim()] = '';
        listKey = undefined;
        continue;
      }
      const key = body.slice(0, i).trim();
      const value = body.slice(i + 1).trim();
      if (value === '') {
        listKey = key;
        cur.lists[key] ??= [];
      } else {
        cur.props[key] = value;
        listKey = undefined;
      }
    }
  }
  return records;
}

// Values firmware writes when a field is not filled in; none of them identifies anything.
const PLACEHOLDERS = new Set(
  [
    'not specified',
    'not settable',
    'not present',
    'not provided',
    'not available',
    'unknown',
    'none',
    'n/a',
    'to be filled by o.e.m.',
    'default string',
    'system serial number',
    'system product name',
    'system manufacturer',
    'chassis serial number',
    'base board serial number',
    '0123456789',
    '',
  ].map((s) => s.toLowerCase()),
);

/** A real value, or undefined for the placeholders above. */
export function dmiValue(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const t = v.trim();
  if (PLACEHOLDERS.has(t.toLowerCase())) return undefined;
  return t;
}

const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
// All-zero and all-F UUIDs mean "not set" in SMBIOS (DSP0134 7.2.1).
const NULL_UUIDS = new Set(['00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff']);

export function normalizeUuid(v: string | undefined): string | undefined {
  const t = v?.trim().toLowerCase();
  if (!t || !UUID_RE.test(t) || NULL_UUIDS.has(t)) return undefined;
  return t;
}

const UNITS: Record<string, number> = { bytes: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3, tb: 1024 ** 4 };

/** "16 GB", "16384 MB", "No Module Installed" → bytes or undefined. */
export function parseDmiSize(v: string | undefined): number | undefined {
  const m = /^(\d+)\s*(bytes|kB|MB|GB|TB)$/i.exec(v?.trim() ?? '');
  if (!m) return undefined;
  return Number(m[1]) * (UNITS[m[2]!.toLowerCase()] ?? 1);
}

function num(v: string | undefined): number | undefined {
  const m = /^(\d+)/.exec(v?.trim() ?? '');
  return m ? Number(m[1]) : undefined;
}

/** Drops undefined members so the facts document stays small and zod-friendly. */
function compact<T extends Record<string, unknown>>(o: T): Partial<T> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out as Partial<T>;
}

export interface DmiFacts {
  system: { uuid?: string; serial?: string; manufacturer?: string; product?: string; sku?: string; family?: string; version?: string; wakeUpType?: string };
  bios?: { vendor?: string; version?: string; releaseDate?: string; revision?: string };
  baseboard?: { manufacturer?: string; product?: string; version?: string; serial?: string; assetTag?: string };
  chassis?: { manufacturer?: string; type?: string; version?: string; serial?: string; assetTag?: string; sku?: string };
  processors: Array<Record<string, unknown>>;
  memoryDevices: Array<Record<string, unknown>>;
  /** SMBIOS type 38, IPMI Device Information: present when the board has a BMC */
  bmc?: { interfaceType?: string; specVersion?: string; baseAddress?: string; i2cAddress?: string };
}

export function parseDmidecode(text: string): DmiFacts {
  const records = parseDmiRecords(text);
  if (records.length === 0) throw new DmidecodeParseError('dmidecode printed no SMBIOS records (no "Handle 0x…, DMI type N" lines)');
  const first = (type: number) => records.find((r) => r.type === type);
  const all = (type: number) => records.filter((r) => r.type === type);

  const sys = first(1);
  const out: DmiFacts = {
    system: compact({
      uuid: normalizeUuid(sys?.props['UUID']),
      serial: dmiValue(sys?.props['Serial Number']),
      manufacturer: dmiValue(sys?.props['Manufacturer']),
      product: dmiValue(sys?.props['Product Name']),
      sku: dmiValue(sys?.props['SKU Number']),
      family: dmiValue(sys?.props['Family']),
      version: dmiValue(sys?.props['Version']),
      wakeUpType: dmiValue(sys?.props['Wake-up Type']),
    }),
    processors: [],
    memoryDevices: [],
  };
  const bios = first(0);
  if (bios)
    out.bios = compact({
      vendor: dmiValue(bios.props['Vendor']),
      version: dmiValue(bios.props['Version']),
      releaseDate: dmiValue(bios.props['Release Date']),
      revision: dmiValue(bios.props['BIOS Revision']),
    });
  const board = first(2);
  if (board)
    out.baseboard = compact({
      manufacturer: dmiValue(board.props['Manufacturer']),
      product: dmiValue(board.props['Product Name']),
      version: dmiValue(board.props['Version']),
      serial: dmiValue(board.props['Serial Number']),
      assetTag: dmiValue(board.props['Asset Tag']),
    });
  const chassis = first(3);
  if (chassis)
    out.chassis = compact({
      manufacturer: dmiValue(chassis.props['Manufacturer']),
      type: dmiValue(chassis.props['Type']),
      version: dmiValue(chassis.props['Version']),
      serial: dmiValue(chassis.props['Serial Number']),
      assetTag: dmiValue(chassis.props['Asset Tag']),
      sku: dmiValue(chassis.props['SKU Number']),
    });
  out.processors = all(4)
    // an empty socket is "Status: Unpopulated"; it is not a processor
    .filter((p) => !/unpopulated/i.test(p.props['Status'] ?? ''))
    .map((p) =>
      compact({
        socket: dmiValue(p.props['Socket Designation']),
        manufacturer: dmiValue(p.props['Manufacturer']),
        version: dmiValue(p.props['Version']),
        family: dmiValue(p.props['Family']),
        id: dmiValue(p.props['ID']),
        maxSpeedMhz: num(p.props['Max Speed']),
        currentSpeedMhz: num(p.props['Current Speed']),
        coreCount: num(p.props['Core Count']),
        coreEnabled: num(p.props['Core Enabled']),
        threadCount: num(p.props['Thread Count']),
        serial: dmiValue(p.props['Serial Number']),
        partNumber: dmiValue(p.props['Part Number']),
        status: dmiValue(p.props['Status']),
      }),
    );
  out.memoryDevices = all(17)
    .map((m) =>
      compact({
        locator: dmiValue(m.props['Locator']),
        bankLocator: dmiValue(m.props['Bank Locator']),
        sizeBytes: parseDmiSize(m.props['Size']),
        type: dmiValue(m.props['Type']),
        formFactor: dmiValue(m.props['Form Factor']),
        speedMts: num(m.props['Speed']),
        configuredSpeedMts: num(m.props['Configured Memory Speed']),
        manufacturer: dmiValue(m.props['Manufacturer']),
        serial: dmiValue(m.props['Serial Number']),
        partNumber: dmiValue(m.props['Part Number']),
        rank: num(m.props['Rank']),
      }),
    )
    // an empty slot has "Size: No Module Installed": no bytes, nothing to report
    .filter((m) => m.sizeBytes !== undefined);
  const ipmi = first(38);
  if (ipmi)
    out.bmc = compact({
      interfaceType: dmiValue(ipmi.props['Interface Type']),
      specVersion: dmiValue(ipmi.props['Specification Version']),
      baseAddress: dmiValue(ipmi.props['Base Address']),
      i2cAddress: dmiValue(ipmi.props['I2C Slave Address']),
    });
  return out;
}

export async function collectDmidecode(exec: Exec): Promise<DmiFacts> {
  return parseDmidecode(await run(exec, 'dmidecode', [], { timeoutMs: 20_000 }));
}
