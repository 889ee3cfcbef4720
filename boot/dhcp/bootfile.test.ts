import { describe, expect, it } from 'vitest';
import { chooseBootfile, defaultBootUrls } from './bootfile.ts';
import { classify } from './classify.ts';
import { fixturePacket } from '../../test/support/dhcp/fakes.ts';

const urls = defaultBootUrls('http://10.0.0.1:8080/');

describe('chooseBootfile', () => {
  const cases: [string, Parameters<typeof chooseBootfile>[0], ReturnType<typeof chooseBootfile>][] = [
    ['iPXE wins over its own PXEClient/arch 0 (breaks the chain loop)', { isIpxe: true, isPxe: true, isHttpClient: false, arch: 0 }, { file: 'http://10.0.0.1:8080/boot.ipxe', via: 'http' }],
    ['iPXE under UEFI also gets the script', { isIpxe: true, isPxe: true, isHttpClient: false, arch: 7 }, { file: 'http://10.0.0.1:8080/boot.ipxe', via: 'http' }],
    ['UEFI HTTP boot gets ipxe.efi by URL and option 60 HTTPClient', { isIpxe: false, isPxe: false, isHttpClient: true, arch: 16 }, { file: 'http://10.0.0.1:8080/ipxe.efi', via: 'http', vendorClass: 'HTTPClient' }],
    ['ia32 UEFI HTTP boot (arch 15) is not served: there is no ia32 iPXE to give it', { isIpxe: false, isPxe: false, isHttpClient: true, arch: 15 }, null],
    ['an HTTP boot client of another arch (19, arm64) is not served', { isIpxe: false, isPxe: false, isHttpClient: true, arch: 19 }, null],
    ['iPXE started by HTTP boot gets the script, not ipxe.efi again', { isIpxe: true, isPxe: true, isHttpClient: false, arch: 7 }, { file: 'http://10.0.0.1:8080/boot.ipxe', via: 'http' }],
    ['x64 UEFI PXE (arch 7) gets snponly.efi over TFTP', { isIpxe: false, isPxe: true, isHttpClient: false, arch: 7 }, { file: 'snponly.efi', via: 'tftp' }],
    ['x64 UEFI PXE (arch 9) gets snponly.efi over TFTP', { isIpxe: false, isPxe: true, isHttpClient: false, arch: 9 }, { file: 'snponly.efi', via: 'tftp' }],
    ['BIOS PXE (arch 0) gets undionly.kpxe', { isIpxe: false, isPxe: true, isHttpClient: false, arch: 0 }, { file: 'undionly.kpxe', via: 'tftp' }],
    ['a PXE ROM without option 93 is BIOS', { isIpxe: false, isPxe: true, isHttpClient: false, arch: undefined }, { file: 'undionly.kpxe', via: 'tftp' }],
    ['ia32 UEFI is not served', { isIpxe: false, isPxe: true, isHttpClient: false, arch: 6 }, null],
    ['an OS DHCP client gets no bootfile', { isIpxe: false, isPxe: false, isHttpClient: false, arch: undefined }, null],
  ];
  it.each(cases)('%s', (_name, client, want) => {
    expect(chooseBootfile(client, urls)).toEqual(want);
  });

  // issue 19 item 1: a node whose profile says bootloader: shim-grub
  const shimCases: [string, Parameters<typeof chooseBootfile>[0], ReturnType<typeof chooseBootfile>][] = [
    ['x64 UEFI PXE (arch 7) gets the signed shim over TFTP', { isIpxe: false, isPxe: true, isHttpClient: false, arch: 7 }, { file: 'shimx64.efi', via: 'tftp' }],
    ['x64 UEFI PXE (arch 9) gets the signed shim over TFTP', { isIpxe: false, isPxe: true, isHttpClient: false, arch: 9 }, { file: 'shimx64.efi', via: 'tftp' }],
    ['UEFI HTTP boot gets the shim by URL and option 60 HTTPClient', { isIpxe: false, isPxe: false, isHttpClient: true, arch: 16 }, { file: 'http://10.0.0.1:8080/shimx64.efi', via: 'http', vendorClass: 'HTTPClient' }],
    ['BIOS has no Secure Boot: still undionly.kpxe', { isIpxe: false, isPxe: true, isHttpClient: false, arch: 0 }, { file: 'undionly.kpxe', via: 'tftp' }],
    ['iPXE (e.g. the node was booted by hand into iPXE) still gets the script', { isIpxe: true, isPxe: true, isHttpClient: false, arch: 7 }, { file: 'http://10.0.0.1:8080/boot.ipxe', via: 'http' }],
    ['ia32 UEFI is still not served', { isIpxe: false, isPxe: true, isHttpClient: false, arch: 6 }, null],
  ];
  it.each(shimCases)('shim-grub: %s', (_name, client, want) => {
    expect(chooseBootfile(client, urls, 'shim-grub')).toEqual(want);
  });

  it('ipxe (the default) is exactly today\'s choice for every case', () => {
    for (const [, client, want] of [...cases, ...shimCases.slice(3)]) expect(chooseBootfile(client, urls, 'ipxe')).toEqual(want);
    expect(chooseBootfile(classify(fixturePacket('ovmf-pxe-discover.hex')), urls, 'shim-grub')?.file).toBe('shimx64.efi');
  });

  it('uses the configured UEFI binary', () => {
    expect(chooseBootfile({ isIpxe: false, isPxe: true, isHttpClient: false, arch: 7 }, { ...urls, uefi: 'ipxe.efi' })?.file).toBe('ipxe.efi');
  });

  it('real captures: QEMU ROM iPXE (BIOS and EFI) → script, OVMF PXE → snponly.efi', () => {
    expect(chooseBootfile(classify(fixturePacket('ipxe-rom-bios-discover.hex')), urls)?.file).toBe('http://10.0.0.1:8080/boot.ipxe');
    expect(chooseBootfile(classify(fixturePacket('ipxe-rom-efi-discover.hex')), urls)?.file).toBe('http://10.0.0.1:8080/boot.ipxe');
    expect(chooseBootfile(classify(fixturePacket('ovmf-pxe-discover.hex')), urls)?.file).toBe('snponly.efi');
    expect(chooseBootfile(classify(fixturePacket('udhcpc-discover.hex')), urls)).toBeNull();
  });

  it('real capture: OVMF HTTP boot (HTTPClient, arch 16) → ipxe.efi by URL, option 60 HTTPClient', () => {
    expect(chooseBootfile(classify(fixturePacket('ovmf-http-discover.hex')), urls)).toEqual({ file: 'http://10.0.0.1:8080/ipxe.efi', via: 'http', vendorClass: 'HTTPClient' });
    expect(chooseBootfile(classify(fixturePacket('ovmf-http-request.hex')), urls)?.file).toBe('http://10.0.0.1:8080/ipxe.efi');
  });

  it('an HTTP boot client without option 93 is judged by the arch in its option 60', () => {
    const p = fixturePacket('ovmf-http-discover.hex');
    p.options.delete(93);
    expect(classify(p).arch).toBe(16);
    expect(chooseBootfile(classify(p), urls)?.file).toBe('http://10.0.0.1:8080/ipxe.efi');
    p.options.set(60, Buffer.from('HTTPClient:Arch:00015:UNDI:003000'));
    expect(chooseBootfile(classify(p), urls)).toBeNull();
  });
});
