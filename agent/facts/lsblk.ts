// Disks from `lsblk -J -b -o …` (util-linux): JSON, sizes in bytes. Local disks matter even on a diskless
// hypervisor: the server flags nodes with unexpected disks and uses them for scratch.
import type { Exec } from '../exec.ts';
import { run } from '../exec.ts';

export const LSBLK_COLUMNS = 'NAME,SIZE,TYPE,MODEL,SERIAL,ROTA,TRAN,WWN,VENDOR';

export type Disk = {
  name: string;
  sizeBytes?: number;
  model?: string;
  serial?: string;
  rotational?: boolean;
  transport?: string;
  wwn?: string;
  vendor?: string;
};

// RAM-backed and loop devices are not hardware
const NOT_HARDWARE = /^(zram|ram|loop|nbd)\d/;

export function parseLsblk(text: string): Disk[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new Error(`lsblk output is not JSON: ${(e as Error).message}`);
  }
  const devs = (doc as { blockdevices?: unknown })?.blockdevices;
  if (!Array.isArray(devs)) throw new Error('lsblk output has no "blockdevices" array');
  const s = (v: unknown) => (typeof v === 'string' && v.trim() ? v.trim() : undefined);
  const out: Disk[] = [];
  for (const d of devs as Array<Record<string, unknown>>) {
    const name = s(d['name']);
    if (!name || d['type'] !== 'disk' || NOT_HARDWARE.test(name)) continue;
    const disk: Disk = { name };
    // util-linux < 2.33 prints numbers as strings, newer as numbers
    const size = Number(d['size']);
    if (Number.isSafeInteger(size) && size >= 0) disk.sizeBytes = size;
    const rota = d['rota'];
    if (typeof rota === 'boolean') disk.rotational = rota;
    else if (rota === '1' || rota === '0') disk.rotational = rota === '1';
    for (const [k, col] of [['model', 'model'], ['serial', 'serial'], ['transport', 'tran'], ['wwn', 'wwn'], ['vendor', 'vendor']] as const) {
      const v = s(d[col]);
      if (v) disk[k] = v;
    }
    out.push(disk);
  }
  return out;
}

export async function collectDisks(exec: Exec): Promise<Disk[]> {
  return parseLsblk(await run(exec, 'lsblk', ['-J', '-b', '-d', '-o', LSBLK_COLUMNS], { timeoutMs: 10_000 }));
}
