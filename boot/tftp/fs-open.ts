// The edge's `open(path)` for the TFTP core: a directory root plus a map of configured files.
// The core has already normalised the path (negotiate.ts normalisePath); this opener confines it
// again on its own, after resolving symlinks, so a link inside the root cannot point outside it.
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { normalisePath } from './negotiate.ts';
import type { OpenFn } from './source.ts';

/** Debian's `ipxe` package: BIOS (UNDI chain-load), UEFI (full drivers), UEFI (SNP only). */
export const DEFAULT_IPXE_FILES: Readonly<Record<string, string>> = {
  'undionly.kpxe': '/usr/lib/ipxe/undionly.kpxe',
  'ipxe.efi': '/usr/lib/ipxe/ipxe.efi',
  'snponly.efi': '/usr/lib/ipxe/snponly.efi',
};

export interface FsOpenerOptions {
  root?: string | undefined;
  files?: Readonly<Record<string, string>>;
  ipxeDefaults?: boolean;
}

/** Read-ahead per stream: four windows of 16 × 1468-byte blocks, in one syscall. */
const READ_AHEAD = 128 * 1024;

export function createFsOpener({ root, files = {}, ipxeDefaults = true }: FsOpenerOptions = {}): OpenFn {
  const map = new Map<string, string>();
  for (const [name, file] of Object.entries(ipxeDefaults ? { ...DEFAULT_IPXE_FILES, ...files } : files)) {
    const n = normalisePath(name);
    if (n.ok) map.set(n.path, file);
  }
  const rootReal = root === undefined ? undefined : realpath(root).catch(() => path.resolve(root));

  return async function fsOpen(requested) {
    const n = normalisePath(requested);
    if (!n.ok) return null;
    let file = map.get(n.path);
    if (file === undefined) {
      if (rootReal === undefined) return null;
      const base = await rootReal;
      const real = await realpath(path.join(base, n.path)).catch(() => null);
      if (real === null || !real.startsWith(base + path.sep)) return null;
      file = real;
    }
    const st = await stat(file).catch(() => null);
    if (st === null || !st.isFile()) return null;
    return { size: st.size, stream: createReadStream(file, { highWaterMark: READ_AHEAD }) };
  };
}
