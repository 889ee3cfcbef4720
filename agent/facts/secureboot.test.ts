import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Facts } from '../../server/contract/facts.ts';
import { EFI_GLOBAL_VARIABLE, kexecNeedsSignedLoad, parseLockdown, readLockdown, readSecureBoot } from './secureboot.ts';

// efivarfs files are a little-endian attribute word then the data. 0x06 = BOOTSERVICE_ACCESS|RUNTIME_ACCESS,
// the attributes Linux shows for SecureBoot and SetupMode (`xxd` of the real file: "0600 0000 01").
const efiVar = (value: number) => Uint8Array.of(0x06, 0, 0, 0, value);

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bootfarm-sb-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

async function efi(vars: Record<string, Uint8Array>): Promise<string> {
  const efiDir = join(dir, 'efi');
  await mkdir(join(efiDir, 'efivars'), { recursive: true });
  for (const [name, bytes] of Object.entries(vars)) await writeFile(join(efiDir, 'efivars', `${name}-${EFI_GLOBAL_VARIABLE}`), bytes);
  return efiDir;
}

describe('readSecureBoot', () => {
  const cases: Array<[string, Record<string, Uint8Array>, string]> = [
    ['SecureBoot=1, user mode: enabled', { SecureBoot: efiVar(1), SetupMode: efiVar(0) }, 'enabled'],
    ['SecureBoot=0: disabled', { SecureBoot: efiVar(0), SetupMode: efiVar(0) }, 'disabled'],
    ['SetupMode=1 (no Platform Key enrolled): setup-mode', { SecureBoot: efiVar(0), SetupMode: efiVar(1) }, 'setup-mode'],
    ['no SecureBoot variable among others (firmware without Secure Boot): disabled', { BootOrder: Uint8Array.of(7, 0, 0, 0, 1, 0) }, 'disabled'],
    ['an empty efivars directory (efivarfs not mounted on sysfs): unknown', {}, 'unknown'],
    ['a truncated SecureBoot file (attributes only): unknown', { SecureBoot: Uint8Array.of(0x06, 0, 0, 0) }, 'unknown'],
    ['an empty SecureBoot file: unknown', { SecureBoot: new Uint8Array(0) }, 'unknown'],
    ['a value that is neither 0 nor 1: unknown', { SecureBoot: efiVar(7) }, 'unknown'],
  ];
  it.each(cases)('%s', async (_name, vars, want) => {
    expect(await readSecureBoot(await efi(vars))).toBe(want);
  });

  it('says not-uefi when /sys/firmware/efi is absent (legacy BIOS boot)', async () => {
    expect(await readSecureBoot(join(dir, 'no-efi'))).toBe('not-uefi');
  });

  it('says unknown when the firmware is UEFI but efivarfs is not mounted', async () => {
    await mkdir(join(dir, 'efi'));
    expect(await readSecureBoot(join(dir, 'efi'))).toBe('unknown');
  });

  it('says unknown, without throwing, when the variable is a directory (EISDIR)', async () => {
    const efiDir = await efi({ BootOrder: Uint8Array.of(7, 0, 0, 0, 1, 0) });
    await mkdir(join(efiDir, 'efivars', `SecureBoot-${EFI_GLOBAL_VARIABLE}`));
    expect(await readSecureBoot(efiDir)).toBe('unknown');
  });
});

describe('lockdown', () => {
  it('reads the bracketed mode', () => {
    expect(parseLockdown('[none] integrity confidentiality\n')).toBe('none');
    expect(parseLockdown('none [integrity] confidentiality\n')).toBe('integrity');
    expect(parseLockdown('none integrity [confidentiality]\n')).toBe('confidentiality');
    expect(parseLockdown('none integrity confidentiality\n')).toBeUndefined();
  });

  it('is undefined, not "none", when the kernel has no lockdown file', async () => {
    expect(await readLockdown(join(dir, 'absent'))).toBeUndefined();
    await writeFile(join(dir, 'lockdown'), 'none [integrity] confidentiality\n');
    expect(await readLockdown(join(dir, 'lockdown'))).toBe('integrity');
  });

  it('asks for kexec_file_load under Secure Boot or an integrity/confidentiality lockdown only', () => {
    expect(kexecNeedsSignedLoad({ secureBoot: 'enabled' })).toBe(true);
    expect(kexecNeedsSignedLoad({ secureBoot: 'disabled', lockdown: 'integrity' })).toBe(true);
    expect(kexecNeedsSignedLoad({ lockdown: 'confidentiality' })).toBe(true);
    expect(kexecNeedsSignedLoad({ secureBoot: 'disabled', lockdown: 'none' })).toBe(false);
    expect(kexecNeedsSignedLoad({ secureBoot: 'setup-mode' })).toBe(false);
    expect(kexecNeedsSignedLoad({})).toBe(false);
  });

  it('the contract accepts the facts and refuses a Secure Boot state it does not know', () => {
    const system = { uuid: '4c4c4544-0042-3510-8052-b4c04f4e4d32' };
    expect(Facts.safeParse({ system, firmware: { secureBoot: 'enabled' }, kernel: { lockdown: 'integrity' } }).success).toBe(true);
    expect(Facts.safeParse({ system, firmware: { secureBoot: 'on' } }).success).toBe(false);
  });
});
