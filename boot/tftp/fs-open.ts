// The edge's `open(path)` for the TFTP core: a directory root plus a map of configured files.
// The core has already normalised the path (negotiate.ts normalisePath); this opener confines it
// again on its own, after resolving symlinks, so a link inside the root cannot point outside it.
//
// Which file a name means, most specific first (README "TFTP"):
//   1. `files`: a name the operator mapped explicitly in the config;
//   2. the TFTP root: a file the operator put there (e.g. an iPXE built with an embedded script as
//      undionly.kpxe) — it must win over Debian's binary of the same name, or the operator's file is
//      silently never served;
//   3. the built-in Debian iPXE names (DEFAULT_IPXE_FILES), only when the root has no such file.
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
  /** more built-in names, like the iPXE ones: a file in the root of the same name wins (e.g. the Secure Boot
   * path's shimx64.efi and grubx64.efi, server/secure-boot.ts) */
  defaults?: Readonly<Record<string, string>>;
}

/** Read-ahead per stream: four windows of 16 × 1468-byte blocks, in one syscall. */
const READ_AHEAD = 128 * 1024;

export function createFsOpener({ root, files = {}, ipxeDefaults = true, defaults = {} }: FsOpenerOptions = {}): OpenFn {
  const named = (entries: Readonly<Record<string, string>>): Map<string, string> => {
    const map = new Map<string, string>();
    for (const [name, file] of Object.entries(entries)) {
      const n = normalisePath(name);
      if (n.ok) map.set(n.path, file);
    }
    return map;
  };
  const configured = named(files);
  const builtIn = named({ ...(ipxeDefaults ? DEFAULT_IPXE_FILES : {}), ...defaults });
  const rootReal = root === undefined ? undefined : realpath(root).catch(() => path.resolve(root));

  /** the real path of a name under the root, or null when it is missing or would leave the root */
  const inRoot = async (rel: string): Promise<string | null> => {
    if (rootReal === undefined) return null;
    const base = await rootReal;
    const real = await realpath(path.join(base, rel)).catch(() => null);
    if (real === null || !real.startsWith(base + path.sep)) return null;
    return real;
  };

  return async function fsOpen(requested) {
    const n = normalisePath(requested);
    if (!n.ok) return null;
    const file = configured.get(n.path) ?? (await inRoot(n.path)) ?? builtIn.get(n.path);
    if (file === undefined) return null;
    const st = await stat(file).catch(() => null);
    if (st === null || !st.isFile()) return null;
    return { size: st.size, stream: createReadStream(file, { highWaterMark: READ_AHEAD }) };
  };
}
