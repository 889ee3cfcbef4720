// main's cross-check between dhcp6 and tftp (boot-paths.ts): is the tftp:// URL DHCPv6 hands UEFI PXE served here?
import { describe, expect, it } from 'vitest';
import { dhcp6TftpWarning } from './boot-paths.ts';
import { Dhcp6ConfigSchema } from '../boot/dhcp6/index.ts';
import { tftpConfigSchema } from '../boot/tftp/index.ts';

// sections as main gets them from parseSection: the real schemas, so a renamed field breaks this test
const dhcp6 = (extra: object = {}) => Dhcp6ConfigSchema.parse({ enabled: true, interface: 'eth1', serverAddress: 'fd5b:0:0:20::1', httpBase: 'http://[fd5b:0:0:20::1]:8080', ...extra });
const tftp = (extra: object = {}) => tftpConfigSchema.parse(extra);

describe('dhcp6TftpWarning', () => {
  const quiet: [string, ReturnType<typeof dhcp6> | undefined, ReturnType<typeof tftp> | undefined][] = [
    ['no dhcp6 section', undefined, tftp()],
    ['dhcp6 off', Dhcp6ConfigSchema.parse({ interface: 'eth1', serverAddress: 'fd5b::1', httpBase: 'http://[fd5b::1]' }), undefined],
    ['TFTP on the IPv6 wildcard', dhcp6(), tftp({ address: '::' })],
    ['TFTP on the server address, written another way', dhcp6(), tftp({ address: ['10.20.0.1', 'FD5B:0:0:20:0:0:0:1'] })],
    ['tftpBase naming another host', dhcp6({ tftpBase: 'tftp://[fd5b:0:0:20::9]' }), undefined],
    ['tftpBase naming an IPv4 host', dhcp6({ tftpBase: 'tftp://10.20.0.9' }), tftp()],
    ['tftpBase with the port TFTP serves', dhcp6({ tftpBase: 'tftp://[fd5b:0:0:20::1]:1069' }), tftp({ address: '::', port: 1069 })],
  ];
  for (const [name, d, t] of quiet) it(`is quiet with ${name}`, () => expect(dhcp6TftpWarning(d, t)).toBeNull());

  it('warns when TFTP is off and the URL is our own', () => {
    expect(dhcp6TftpWarning(dhcp6(), undefined)).toBe(
      "dhcp6 hands UEFI PXE over IPv6 tftp://[fd5b:0:0:20::1]/…, but bootfarm's TFTP server is off: enable it with tftp.address including 'fd5b:0:0:20::1' (or '::'), or point dhcp6.tftpBase at the TFTP server that serves it",
    );
  });

  it('warns when TFTP listens on IPv4 only (the default 0.0.0.0)', () => {
    expect(dhcp6TftpWarning(dhcp6(), tftp())).toBe(
      "dhcp6 hands UEFI PXE over IPv6 tftp://[fd5b:0:0:20::1]/…, but bootfarm's TFTP server listens on 0.0.0.0 only: add 'fd5b:0:0:20::1' (or '::') to tftp.address, or point dhcp6.tftpBase at the TFTP server that serves it",
    );
  });

  it('warns when the URL names another port', () => {
    expect(dhcp6TftpWarning(dhcp6({ tftpBase: 'tftp://[fd5b:0:0:20::1]:1069' }), tftp({ address: '::' }))).toBe(
      "dhcp6 hands UEFI PXE over IPv6 tftp://[fd5b:0:0:20::1]:1069/… (port 1069), but bootfarm's TFTP server listens on port 69",
    );
  });
});
