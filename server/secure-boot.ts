// The Secure Boot path's files (issue 19 item 1, docs/secure-boot.md): UEFI firmware that enforces Secure Boot runs
// only Microsoft-signed binaries, so a `bootloader: shim-grub` node is handed Debian's signed shim, shim loads the
// signed network GRUB, and GRUB fetches its config from us. Both binaries come from Debian packages that may be
// missing; the names served, the packages that provide them, and what to say when they are absent live here.
import { existsSync } from 'node:fs';
import { Readable } from 'node:stream';
import type { OpenFn } from '../boot/tftp/index.ts';
import { normalisePath } from '../boot/tftp/negotiate.ts';
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

/** How the TFTP edge asks the HTTP app in-process: a Request plus the Node bindings (`incoming.socket`) that the
 * app's client-address and trust checks read (server/api/trusted.ts), carrying the TFTP client's address. */
export type AppFetch = (req: Request, env: { incoming: { socket: { remoteAddress: string; remotePort: number; remoteFamily: string } } }) => Response | Promise<Response>;

/** the names GRUB asks for over TFTP that are HTTP routes: its configs and the image blobs they boot */
const GRUB_ROUTE = /^(?:grub\/[^/]+\.cfg|images\/[^/]+)$/;

/**
 * GRUB loaded by UEFI PXE reads everything from `(tftp,SERVER)`: Debian's signed grubnetx64 has no http module (measured,
 * docs/secure-boot.md), so its configs (`/grub/grub.cfg`, `/grub/<uuid>.cfg`) and the kernel and initrd they name
 * (`/images/<digest>`) must come over TFTP. Those names are answered by the HTTP app itself, in-process, as if the
 * TFTP client had asked over HTTP: one per-node decision, one trust check, rate limit and boot budget, one boot
 * attempt and its token — the TFTP path adds no second copy of any rule. A non-200 answer is "not found" (GRUB then
 * runs the rest of its config, e.g. the retry); everything else comes from `open` (files, shim and grub binaries).
 */
export function withGrubOverTftp(open: OpenFn, { fetch, baseUrl }: { fetch: AppFetch; baseUrl: string | undefined }): OpenFn {
  if (!baseUrl) return open;
  const base = baseUrl.replace(/\/+$/, '');
  return async function openGrubOverTftp(requested, client) {
    const n = normalisePath(requested);
    if (!n.ok || !GRUB_ROUTE.test(n.path)) return open(requested, client);
    const address = client?.address ?? '0.0.0.0';
    const res = await fetch(new Request(`${base}/${n.path}`), { incoming: { socket: { remoteAddress: address, remotePort: client?.port ?? 0, remoteFamily: address.includes(':') ? 'IPv6' : 'IPv4' } } });
    if (res.status !== 200 || !res.body) {
      await res.body?.cancel();
      return null;
    }
    // Number(null) is 0: a missing header must not announce an empty file (GRUB then sources nothing, measured)
    const header = res.headers.get('content-length');
    const length = header === null ? NaN : Number(header);
    if (Number.isSafeInteger(length) && length >= 0) return { size: length, stream: Readable.fromWeb(res.body as import('node:stream/web').ReadableStream) };
    // a config has no content-length (a rendered string): it is small, read it whole for the size TFTP announces
    const body = Buffer.from(await res.arrayBuffer());
    return { size: body.length, read: async (off, len) => body.subarray(off, off + len) };
  };
}
