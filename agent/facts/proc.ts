// CPU and memory from /proc (proc(5)): the kernel's own view, present on every Linux, no tool needed.
import { readFile } from 'node:fs/promises';

export type CpuInfo = {
  model?: string;
  vendor?: string;
  sockets: number;
  cores: number;
  threads: number;
  flags: string[];
  mhz?: number;
};

/**
 * /proc/cpuinfo is one block per logical CPU separated by blank lines. Sockets are the distinct
 * `physical id`s, cores the distinct (`physical id`, `core id`) pairs; a kernel without topology
 * (some VMs omit both) counts every logical CPU as its own core on one socket.
 */
export function parseCpuinfo(text: string): CpuInfo {
  const blocks = text
    .split(/\n\s*\n/)
    .map((b) => {
      const kv: Record<string, string> = {};
      for (const line of b.split('\n')) {
        const i = line.indexOf(':');
        if (i > 0) kv[line.slice(0, i).trim()] = line.slice(i + 1).trim();
      }
      return kv;
    })
    .filter((kv) => kv['processor'] !== undefined);
  if (blocks.length === 0) throw new Error('/proc/cpuinfo has no "processor" entries');
  const first = blocks[0]!;
  const sockets = new Set(blocks.map((b) => b['physical id'] ?? '0'));
  const cores = new Set(blocks.map((b) => `${b['physical id'] ?? '0'}/${b['core id'] ?? b['processor']}`));
  const out: CpuInfo = { sockets: sockets.size, cores: cores.size, threads: blocks.length, flags: (first['flags'] ?? '').split(/\s+/).filter(Boolean) };
  if (first['model name']) out.model = first['model name'];
  if (first['vendor_id']) out.vendor = first['vendor_id'];
  const mhz = Number(first['cpu MHz']);
  if (Number.isFinite(mhz) && mhz > 0) out.mhz = Math.round(mhz);
  return out;
}

/** /proc/meminfo values are "NNN kB" (kibibytes, despite the unit). */
export function parseMeminfo(text: string): { totalBytes: number; availableBytes?: number } {
  const get = (k: string) => {
    const m = new RegExp(`^${k}:\\s+(\\d+) kB$`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : undefined;
  };
  const total = get('MemTotal');
  if (total === undefined) throw new Error('/proc/meminfo has no MemTotal line');
  const avail = get('MemAvailable');
  return avail === undefined ? { totalBytes: total } : { totalBytes: total, availableBytes: avail };
}

export async function collectCpu(path = '/proc/cpuinfo'): Promise<CpuInfo> {
  return parseCpuinfo(await readFile(path, 'utf8'));
}

export async function collectMeminfo(path = '/proc/meminfo') {
  return parseMeminfo(await readFile(path, 'utf8'));
}
