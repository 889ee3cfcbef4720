import { describe, expect, it } from 'vitest';
import { testConfig } from '../test/fakes/app.ts';
import { secureBootWarnings } from './secure-boot.ts';

describe('secureBootWarnings', () => {
  it('says nothing while no profile boots by shim-grub, whatever is installed', () => {
    expect(secureBootWarnings(testConfig(), () => false)).toEqual([]);
  });

  it('names the profile, the missing file and its package', () => {
    const config = testConfig({ profiles: { default: {}, sb: { bootloader: 'shim-grub' } } });
    expect(secureBootWarnings(config, (p) => p.includes('shim'))).toEqual([
      'profile(s) sb boot by shim-grub, but /usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed (served as grubx64.efi) is missing: install the Debian package grub-efi-amd64-signed or set boot.secureBoot.grub; those nodes will not boot',
    ]);
    expect(secureBootWarnings(config, () => true)).toEqual([]);
  });
});
