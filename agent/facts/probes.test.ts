import { describe, expect, it } from 'vitest';
import { fixture } from '../../test/support/agent/fixtures.ts';
import { parseIpmitoolLanPrint, parseIpmitoolMcInfo } from './ipmitool.ts';
import { parseLsblk } from './lsblk.ts';
import { parseBootif, parseEthtoolDriverInfo } from './nics.ts';
import { parseCpuinfo, parseMeminfo } from './proc.ts';

describe('parseEthtoolDriverInfo', () => {
  it('reads virtio_net on this machine', () => {
    expect(parseEthtoolDriverInfo(fixture('ethtool-i-virtio_net.txt'))).toEqual({ driver: 'virtio_net', version: '1.0.0', busInfo: '0000:00:03.0' });
  });
  it('reads a veth (no bus, no firmware)', () => {
    expect(parseEthtoolDriverInfo(fixture('ethtool-i-veth.txt'))).toEqual({ driver: 'veth', version: '1.0' });
  });
  it('keeps a firmware version when the driver reports one', () => {
    const i40e = 'driver: i40e\nversion: 6.1.0-13-amd64\nfirmware-version: 8.70 0x8000c40f 1.3179.0\nexpansion-rom-version: \nbus-info: 0000:3b:00.0\n';
    expect(parseEthtoolDriverInfo(i40e).firmwareVersion).toBe('8.70 0x8000c40f 1.3179.0');
  });
  it('refuses the error text of `ethtool -i lo`', () => {
    expect(() => parseEthtoolDriverInfo(fixture('ethtool-i-lo.stderr'))).toThrow(/driver/);
  });
});

describe('parseBootif', () => {
  it.each([
    ['01-52-54-00-12-34-56', '52:54:00:12:34:56'],
    ['52:54:00:AB:CD:EF', '52:54:00:ab:cd:ef'],
    ['garbage', undefined],
    [undefined, undefined],
  ])('%s → %s', (v, want) => expect(parseBootif(v)).toBe(want));
});

describe('parseCpuinfo', () => {
  it('counts the QEMU guest (-smp 2): 1 socket, 2 cores, 2 threads', () => {
    const c = parseCpuinfo(fixture('cpuinfo-qemu-tcg.txt'));
    expect(c).toMatchObject({ sockets: 1, cores: 2, threads: 2 });
    expect(c.model).toMatch(/QEMU|Virtual/);
    expect(c.flags).toContain('fpu');
  });
  it('counts this machine', () => {
    const c = parseCpuinfo(fixture('cpuinfo-host.txt'));
    expect(c.threads).toBe(2);
    expect(c.flags.length).toBeGreaterThan(10);
  });
  it('refuses text without processors', () => {
    expect(() => parseCpuinfo('nothing here')).toThrow(/processor/);
  });
});

describe('parseMeminfo', () => {
  it('reads MemTotal in bytes (256 MiB guest, minus what the kernel keeps)', () => {
    const m = parseMeminfo(fixture('meminfo-qemu-tcg.txt'));
    expect(m.totalBytes).toBeGreaterThan(150 * 1024 ** 2);
    expect(m.totalBytes).toBeLessThanOrEqual(256 * 1024 ** 2);
    expect(m.totalBytes % 1024).toBe(0);
  });
  it('refuses text without MemTotal', () => {
    expect(() => parseMeminfo('MemFree: 1 kB')).toThrow(/MemTotal/);
  });
});

describe('parseLsblk', () => {
  it('keeps real disks and drops zram', () => {
    expect(parseLsblk(fixture('lsblk-host-columns.json'))).toEqual([{ name: 'vda', sizeBytes: 274877906944, rotational: true, vendor: '0x1af4' }]);
    expect(parseLsblk(fixture('lsblk-host.json')).map((d) => d.name)).toEqual(['vda']);
  });
  it('accepts the string numbers of old util-linux', () => {
    expect(parseLsblk('{"blockdevices":[{"name":"sda","size":"1000","type":"disk","rota":"1"}]}')).toEqual([{ name: 'sda', sizeBytes: 1000, rotational: true }]);
  });
  it('refuses non-JSON', () => {
    expect(() => parseLsblk('lsblk: unknown column')).toThrow(/not JSON/);
  });
});

describe('ipmitool (ipmi_sim)', () => {
  it('reads lan print: an unconfigured BMC has no address, only its IP source', () => {
    expect(parseIpmitoolLanPrint(fixture('ipmitool-lan-print-ipmisim.txt'))).toEqual({ ipSource: 'Unspecified' });
  });
  it('reads a configured BMC', () => {
    const t = 'IP Address Source       : DHCP Address\nIP Address              : 10.20.0.17\nSubnet Mask             : 255.255.255.0\nMAC Address             : 3C:EC:EF:01:02:03\nDefault Gateway IP      : 10.20.0.1\n802.1q VLAN ID          : 20\n';
    expect(parseIpmitoolLanPrint(t)).toEqual({ ipSource: 'DHCP Address', ipAddress: '10.20.0.17', netmask: '255.255.255.0', macAddress: '3c:ec:ef:01:02:03', gateway: '10.20.0.1', vlan: 20 });
  });
  it('reads mc info', () => {
    expect(parseIpmitoolMcInfo(fixture('ipmitool-mc-info-ipmisim.txt'))).toEqual({ firmwareVersion: '9.08', ipmiVersion: '2.0', manufacturer: 'MontaVista Software, Inc.' });
  });
  it('refuses unrelated text', () => {
    expect(() => parseIpmitoolLanPrint('Could not open device at /dev/ipmi0')).toThrow(/IP Address/);
  });
});
