// Bulk enrollment from an inventory file, and the rule for deleting a node (issue 17 item 6). Pure: no HTTP, no
// storage, no clock. The route parses the body, this module turns a CSV or YAML inventory into rows or into
// every problem it has (with the row it is on), the store checks the rows against the database and writes them.
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { LabelKey, Mac, SmbiosUuid } from '../contract/common.ts';
import type { NodeState } from '../contract/lifecycle.ts';

/** The most rows one enrollment takes (one transaction). */
export const MAX_INVENTORY_ROWS = 5000;

export const InventoryBmc = z.strictObject({
  driver: z.enum(['ipmi', 'redfish']).default('ipmi'),
  address: z.string().trim().min(1).max(253),
  port: z.coerce.number().int().min(1).max(65535).optional(),
  username: z.string().min(1).max(64),
  password: z.string().min(1).max(256),
});

export const InventoryRow = z.strictObject({
  uuid: SmbiosUuid,
  serial: z.string().trim().min(1).max(128).optional(),
  hostname: z.string().trim().min(1).max(253).optional(),
  macs: z.array(Mac).max(64).default([]),
  bmc: InventoryBmc.optional(),
  labels: z.record(LabelKey, z.string().max(256)).default({}),
  profile: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'profile names are lower-case words joined by "-"').optional(),
});
export type InventoryRow = z.infer<typeof InventoryRow>;

export interface RowError {
  /** CSV: the line the record starts on (the header is line 1); YAML: the entry's position in the list, from 1 */
  row: number;
  /** the column or key, when the problem is in one */
  field?: string;
  message: string;
}

export interface ParsedInventory {
  rows: { row: number; node: InventoryRow }[];
  errors: RowError[];
}

/** RFC 4180 records: quoted fields with "" escapes and line breaks, CRLF or LF; each with the line it starts on. */
export function parseCsv(text: string): { line: number; fields: string[] }[] {
  const out: { line: number; fields: string[] }[] = [];
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  let start = 1;
  let any = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else {
        if (ch === '\n') line++;
        field += ch;
      }
      continue;
    }
    if (ch === '"' && field === '') {
      quoted = true;
      any = true;
    } else if (ch === ',') {
      fields.push(field);
      field = '';
      any = true;
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      fields.push(field);
      if (any || field !== '') out.push({ line: start, fields });
      fields = [];
      field = '';
      any = false;
      line++;
      start = line;
    } else {
      field += ch;
      any = true;
    }
  }
  if (quoted) throw new InventoryFormatError(`line ${start}: a quoted field is not closed`);
  fields.push(field);
  if (any || field !== '') out.push({ line: start, fields });
  return out;
}

export class InventoryFormatError extends Error {
  override name = 'InventoryFormatError';
}

const splitList = (s: string) => s.split(/[;\s]+/).filter(Boolean);

/** CSV columns: uuid, serial, hostname, macs ("a;b" or space separated), bmc_driver, bmc_address, bmc_port,
 * bmc_username, bmc_password, labels ("k=v;k=v"), label.KEY (one column per label), profile. */
function csvRecord(header: string[], fields: string[], row: number, errors: RowError[]): Record<string, unknown> | null {
  if (fields.length !== header.length) {
    errors.push({ row, message: `has ${fields.length} fields, the header has ${header.length}` });
    return null;
  }
  const rec: Record<string, unknown> = {};
  const bmc: Record<string, unknown> = {};
  const labels: Record<string, string> = {};
  header.forEach((col, i) => {
    const v = fields[i]!.trim();
    if (v === '') return;
    if (col === 'macs' || col === 'mac') rec.macs = splitList(v);
    else if (col.startsWith('bmc_')) bmc[col.slice(4)] = v;
    else if (col.startsWith('label.')) labels[col.slice(6)] = v;
    else if (col === 'labels') {
      for (const pair of v.split(';').map((p) => p.trim()).filter(Boolean)) {
        const at = pair.indexOf('=');
        if (at < 1) errors.push({ row, field: 'labels', message: `label "${pair}" must be key=value` });
        else labels[pair.slice(0, at)] = pair.slice(at + 1);
      }
    } else rec[col] = v;
  });
  if (Object.keys(bmc).length) rec.bmc = bmc;
  if (Object.keys(labels).length) rec.labels = labels;
  return rec;
}

const CSV_COLUMNS = new Set(['uuid', 'serial', 'hostname', 'mac', 'macs', 'labels', 'profile', 'bmc_driver', 'bmc_address', 'bmc_port', 'bmc_username', 'bmc_password']);

/**
 * Every row of a CSV or YAML inventory, validated one by one and against each other (a UUID, MAC or BMC address
 * twice in the file). Problems accumulate: the caller gets all of them, each with its row, not just the first.
 * A file that cannot be read at all (not CSV/YAML, no header, too many rows) throws InventoryFormatError.
 */
export function parseInventory(format: 'csv' | 'yaml', content: string): ParsedInventory {
  const errors: RowError[] = [];
  const raw: { row: number; rec: unknown }[] = [];
  if (format === 'csv') {
    const records = parseCsv(content.replace(/^\uFEFF/, ''));
    const head = records.shift();
    if (!head) throw new InventoryFormatError('the inventory is empty: expected a header line (uuid,serial,macs,bmc_address,…) and one line per node');
    const header = head.fields.map((h) => h.trim().toLowerCase());
    const unknown = header.filter((h) => !CSV_COLUMNS.has(h) && !/^label\.[a-z0-9]([a-z0-9._/-]{0,61}[a-z0-9])?$/i.test(h));
    if (unknown.length) throw new InventoryFormatError(`line 1: unknown column${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => JSON.stringify(u)).join(', ')}; known: ${[...CSV_COLUMNS].join(', ')}, label.KEY`);
    if (!header.includes('uuid')) throw new InventoryFormatError('line 1: the header has no "uuid" column (the SMBIOS UUID is a node\'s identity)');
    const seen = new Set<string>();
    for (const h of header) {
      if (seen.has(h)) throw new InventoryFormatError(`line 1: column "${h}" appears twice`);
      seen.add(h);
    }
    for (const r of records) {
      const rec = csvRecord(header, r.fields, r.line, errors);
      if (rec) raw.push({ row: r.line, rec });
    }
  } else {
    let doc: unknown;
    try {
      doc = parseYaml(content, { maxAliasCount: 100 });
    } catch (e) {
      throw new InventoryFormatError(`not valid YAML: ${(e as Error).message.split('\n')[0]}`);
    }
    const list = Array.isArray(doc) ? doc : doc && typeof doc === 'object' && Array.isArray((doc as { nodes?: unknown }).nodes) ? (doc as { nodes: unknown[] }).nodes : null;
    if (!list) throw new InventoryFormatError('the YAML inventory must be a list of nodes, or a map with a "nodes" list');
    list.forEach((rec, i) => raw.push({ row: i + 1, rec }));
  }
  if (raw.length + errors.length === 0) throw new InventoryFormatError('the inventory lists no nodes');
  if (raw.length > MAX_INVENTORY_ROWS) throw new InventoryFormatError(`the inventory has ${raw.length} nodes; one enrollment takes at most ${MAX_INVENTORY_ROWS}`);

  const rows: ParsedInventory['rows'] = [];
  for (const { row, rec } of raw) {
    const r = InventoryRow.safeParse(rec);
    if (r.success) rows.push({ row, node: r.data });
    else for (const issue of r.error.issues) errors.push({ row, ...(issue.path.length ? { field: issue.path.join('.') } : {}), message: issue.message });
  }
  // the same node, NIC or BMC twice in one file
  const firstSeen = (what: string, pick: (n: InventoryRow) => string[], field: string) => {
    const at = new Map<string, number>();
    for (const { row, node } of rows)
      for (const v of pick(node)) {
        const prev = at.get(v);
        if (prev !== undefined) errors.push({ row, field, message: `${what} ${v} is also on row ${prev}` });
        else at.set(v, row);
      }
  };
  firstSeen('UUID', (n) => [n.uuid], 'uuid');
  firstSeen('MAC', (n) => n.macs, 'macs');
  firstSeen('BMC address', (n) => (n.bmc ? [n.bmc.port ? `${n.bmc.address}:${n.bmc.port}` : n.bmc.address] : []), 'bmc.address');
  errors.sort((a, b) => a.row - b.row);
  return { rows, errors };
}

/**
 * Deleting a node forgets it: interfaces, leases, boot attempts, credentials, facts, events, BMC. A machine we
 * forget while it runs our OS or is in the middle of being booted keeps running or booting with nothing on our
 * side (and re-appears as `discovered` at its next boot request), so without force only nodes that carry no
 * workload and have no boot in flight may go: retired, discovered, ready, failed, quarantined. Active,
 * provisioning, rebuilding, inspecting, firmware-updating and maintenance (held, usually with a workload
 * drained for work on it) need `force`. Returns why it is refused, or null.
 */
export function deleteRefusal(state: NodeState, force: boolean): string | null {
  const free: NodeState[] = ['retired', 'discovered', 'ready', 'failed', 'quarantined'];
  if (force || free.includes(state)) return null;
  return `node is ${state}: deleting it would orphan a machine that runs or is booting; retire it first, or delete with force=true`;
}
