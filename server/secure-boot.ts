// The Secure Boot path's files (issue 19 item 1, docs/secure-boot.md): UEFI firmware that enforces Secure Boot runs
// only Microsoft-signed binaries, so a `bootloader: shim-grub` node is handed Debian's signed shim, shim loads the
// signed network GRUB, and GRUB fetches its config from us. Both binaries come from Debian packages that may be
// missing; the names served, the packages that provide them, and what to say when they are absent live here.
import { existsSync } from 'node:fs';
import type { OpenFn } from '../boot/tftp/index.ts';
import { normalisePath } from '../boot/tftp/negotiate.ts';
import { renderGrubTopConfig } from '../boot/grub/script.ts';
import type { Config } from './config.ts';

/** served name → which config key holds its path, and the Debian package that installs it. `grubx64.efi` is the
 * name shim loads from its own directory (shim's default second stage), so grubnetx64.efi.signed is served as it. */
export const SECURE_BOOT_FILES = {
  'shimx64.efi': { key: 'shim', pkg: 'shim-signed' },
  'grubx64.efi': { key: 'grub', pkg: 'grub-efi-amd64-signed' },
} as const;

/** the opener's built-in names for boot.secureBoot (a file of the same name in the TFTP root wins) */
export function secureBootDefaults(config: Pick<Config, 'boot'>): Record<string, string> {
  return Object.fromEntries(Object.entries(SECURE_BOOT_FILES).map(([name, f]) => [name, config.boot.secureBoot[f.key]]));
}

/** what a 404 for one of these names says: which package is missing, or which setting points elsewhere */
export function missingSecureBootFile(config: Pick<Config, 'boot'>, name: string): string | null {
  const f = SECURE_BOOT_FILES[name as keyof typeof SECURE_BOOT_FILES];
  if (!f) return null;
  return `no boot file named ${name}: ${config.boot.secureBoot[f.key]} is missing; install the Debian package ${f.pkg} or set boot.secureBoot.${f.key}`;
}

/** start-up warnings: a profile boots by shim-grub but a binary is absent (nodes of it would fail to boot) */
export function secureBootWarnings(config: Pick<Config, 'boot' | 'profiles'>, exists: (path: string) => boolean = existsSync): string[] {
  const users = Object.entries(config.profiles)
    .filter(([, p]) => p.bootloader === 'shim-grub')
    .map(([name]) => name);
  if (users.length === 0) return [];
  return Object.entries(SECURE_BOOT_FILES)
    .filter(([, f]) => !exists(config.boot.secureBoot[f.key]))
    .map(([name, f]) => `profile(s) ${users.join(', ')} boot by shim-grub, but ${config.boot.secureBoot[f.key]} (served as ${name}) is missing: install the Debian package ${f.pkg} or set boot.secureBoot.${f.key}; those nodes will not boot`);
}

/** GRUB loaded over TFTP asks the TFTP server for grub/grub.cfg (its prefix); answer it with the top-level config
 * that chains to /grub/<uuid>.cfg on the HTTP server, and everything else from `open`. */
export function withGrubConfig(open: OpenFn, baseUrl: string | undefined): OpenFn {
  if (!baseUrl) return open;
  const body = Buffer.from(renderGrubTopConfig({ baseUrl }));
  return async function openWithGrubConfig(requested) {
    const n = normalisePath(requested);
    if (n.ok && n.path === 'grub/grub.cfg') return { size: body.length, read: async (off, len) => body.subarray(off, off + len) };
    return open(requested);
  };
}
