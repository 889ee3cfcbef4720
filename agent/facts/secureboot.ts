// UEFI Secure Boot and kernel lockdown, read from sysfs: no tool needed, and what stage-1 must know before it
// kexecs (a locked-down kernel refuses kexec_load; see agent/kexec) and what the firmware compliance report shows.
import { readdir, readFile, stat } from 'node:fs/promises';
import type { LockdownMode, SecureBootState } from '../../server/contract/facts.ts';

/**
 * EFI_GLOBAL_VARIABLE (UEFI 2.10 §3.3 "Globally Defined Variables"): the vendor GUID of SecureBoot and SetupMode.
 * efivarfs names each variable `<Name>-<GUID>`.
 */
export const EFI_GLOBAL_VARIABLE = '8be4df61-93ca-11d2-aa0d-00e098032b8c';

export interface SecureBootPaths {
  /** present only when the kernel was started by UEFI firmware */
  efi: string;
  /** securityfs; absent when the kernel has no lockdown LSM or securityfs is not mounted */
  lockdown: string;
}

export const DEFAULT_SECURE_BOOT_PATHS: SecureBootPaths = { efi: '/sys/firmware/efi', lockdown: '/sys/kernel/security/lockdown' };

type Var = { value: number } | 'absent' | 'unreadable';

/**
 * An efivarfs file is the variable's 4-byte attribute word followed by its data; SecureBoot and SetupMode are one
 * UINT8 each. A file shorter than 5 bytes (a truncated read, a broken firmware) tells us nothing.
 */
export function parseEfiU8(buf: Uint8Array): number | undefined {
  return buf.byteLength >= 5 ? buf[4] : undefined;
}

async function readVar(efivars: string, name: string): Promise<Var> {
  try {
    const v = parseEfiU8(await readFile(`${efivars}/${name}-${EFI_GLOBAL_VARIABLE}`));
    return v === undefined ? 'unreadable' : { value: v };
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'absent' : 'unreadable';
  }
}

async function isDir(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

/**
 * The order matters: SetupMode=1 means no Platform Key is enrolled, so nothing is verified whatever SecureBoot
 * says (UEFI §32.3); a UEFI system whose efivars are present but that has no SecureBoot variable is firmware
 * without Secure Boot, which enforces nothing ('disabled'). Every doubt is 'unknown', never an exception:
 * compliance treats 'unknown' as not enabled.
 */
export async function readSecureBoot(efi = DEFAULT_SECURE_BOOT_PATHS.efi): Promise<SecureBootState> {
  if (!(await isDir(efi))) return 'not-uefi';
  const efivars = `${efi}/efivars`;
  // efivarfs not mounted: UEFI, but we cannot tell. An unmounted efivars is an empty directory on sysfs, and a
  // mounted one is never empty on real firmware (BootOrder, Boot####, …): treat empty as not mounted, or every
  // such node would pass as 'disabled' for want of a SecureBoot file.
  if (!(await isDir(efivars)) || (await readdir(efivars)).length === 0) return 'unknown';
  const setup = await readVar(efivars, 'SetupMode');
  if (typeof setup === 'object' && setup.value === 1) return 'setup-mode';
  const sb = await readVar(efivars, 'SecureBoot');
  // efivars has variables but no SecureBoot: firmware without Secure Boot support, which verifies nothing
  if (sb === 'absent') return 'disabled';
  if (sb === 'unreadable') return 'unknown';
  if (sb.value === 1) return 'enabled';
  if (sb.value === 0) return 'disabled';
  return 'unknown';
}

/** security/lockdown lists the modes and brackets the active one: "none [integrity] confidentiality". */
export function parseLockdown(text: string): LockdownMode | undefined {
  const m = /\[(none|integrity|confidentiality)\]/.exec(text);
  return m ? (m[1] as LockdownMode) : undefined;
}

/** undefined when the kernel does not say (no lockdown LSM, no securityfs): unknown, not "none". */
export async function readLockdown(path = DEFAULT_SECURE_BOOT_PATHS.lockdown): Promise<LockdownMode | undefined> {
  const text = await readFile(path, 'utf8').catch(() => undefined);
  return text === undefined ? undefined : parseLockdown(text);
}

/**
 * What the kexec step needs: a kernel locked down (integrity or confidentiality) refuses kexec_load(2) and
 * accepts only kexec_file_load(2) of a kernel whose signature it can verify; Secure Boot on usually means
 * the distribution kernel locked itself down at boot, so it counts as well.
 */
export function kexecNeedsSignedLoad({ secureBoot, lockdown }: { secureBoot?: SecureBootState | undefined; lockdown?: LockdownMode | undefined }): boolean {
  return secureBoot === 'enabled' || lockdown === 'integrity' || lockdown === 'confidentiality';
}
