import { describe, expect, it } from 'vitest';
import { testConfig } from '../test/fakes/app.ts';
import { createFsOpener } from '../boot/tftp/index.ts';
import { secureBootDefaults, secureBootWarnings, withGrubConfig } from './secure-boot.ts';

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

describe('withGrubConfig (TFTP)', () => {
  it('answers grub/grub.cfg with the top-level config and passes other names on', async () => {
    const open = withGrubConfig(createFsOpener({ ipxeDefaults: false, defaults: secureBootDefaults(testConfig()) }), 'http://10.0.0.1');
    const f = await open('grub/grub.cfg'); // the TFTP core hands the opener a normalised, relative name
    const text = (await f!.read!(0, f!.size)).toString();
    expect(text).toContain(`configfile "(http,10.0.0.1)/grub/\${bf_uuid}.cfg"`);
    expect(await open('grub/other.cfg')).toBeNull();
  });
});
