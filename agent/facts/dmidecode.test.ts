import { describe, expect, it } from 'vitest';
import { SystemFacts } from '../../server/contract/facts.ts';
import { fixture } from '../../test/support/agent/fixtures.ts';
import { dmiValue, parseDmiRecords, parseDmiSize, parseDmidecode } from './dmidecode.ts';

describe('parseDmidecode on a QEMU guest with -smbios types 0,1,2,3,4,17 and an IPMI KCS device', () => {
  const d = parseDmidecode(fixture('dmidecode-qemu-smbios.txt'));

  it('reads the system identity QEMU was given, UUID lower-case', () => {
    expect(d.system).toEqual({
      uuid: '4c4c4544-0042-3510-8052-b4c04f4e4d32',
      serial: 'BF-SN-000123',
      manufacturer: 'Acme Servers Inc.',
      product: 'R740-Test',
      sku: 'SKU-9000',
      family: 'PowerEdge Test',
      version: 'A01',
      wakeUpType: 'Power Switch',
    });
    expect(SystemFacts.safeParse(d.system).success).toBe(true);
  });

  it('reads BIOS, baseboard and chassis', () => {
    expect(d.bios).toEqual({ vendor: 'BootFarm Test BIOS', version: '2.7.1', releaseDate: '03/14/2025', revision: '2.7' });
    expect(d.baseboard).toEqual({ manufacturer: 'Acme Boards', product: '0X8DXD', version: 'A05', serial: 'CNFCP0012300AB', assetTag: 'BOARD-ASSET' });
    expect(d.chassis).toEqual({ manufacturer: 'Acme Chassis', type: 'Other', version: 'C1', serial: 'CHS-4455', assetTag: 'RACK12-U07', sku: 'CHS-SKU' });
  });

  it('reads processors and populated memory devices', () => {
    expect(d.processors).toEqual([
      {
        socket: 'CPU 0',
        manufacturer: 'GenuineTest',
        version: 'Test Xeon Gold 6230 @ 2.10GHz',
        family: 'Other',
        id: 'B1 0F 06 00 FD FB 8B 07',
        maxSpeedMhz: 3900,
        currentSpeedMhz: 2100,
        coreCount: 2,
        coreEnabled: 2,
        threadCount: 2,
        serial: 'CPU0-SN',
        partNumber: 'CPU0-PN',
        status: 'Populated, Enabled',
      },
    ]);
    expect(d.memoryDevices).toEqual([
      {
        locator: 'DIMM 0',
        bankLocator: 'BANK',
        sizeBytes: 256 * 1024 * 1024,
        type: 'RAM',
        formFactor: 'DIMM',
        speedMts: 2933,
        configuredSpeedMts: 2933,
        manufacturer: 'Micron',
        serial: 'DIMMSN01',
        partNumber: '36ASF4G72PZ-2G9E2',
      },
    ]);
  });

  it('reads the BMC from SMBIOS type 38', () => {
    expect(d.bmc).toEqual({ interfaceType: 'KCS (Keyboard Control Style)', specVersion: '2.0', baseAddress: '0x0000000000000CA2 (I/O)', i2cAddress: '0x10' });
  });

  it('keeps list properties (BIOS characteristics) and record titles', () => {
    const bios = parseDmiRecords(fixture('dmidecode-qemu-smbios.txt')).find((r) => r.type === 0)!;
    expect(bios.title).toBe('BIOS Information');
    expect(bios.lists['Characteristics']).toContain('System is a virtual machine');
  });
});

describe('parseDmidecode on QEMU defaults (q35, no -smbios)', () => {
  const d = parseDmidecode(fixture('dmidecode-qemu-q35-default.txt'));
  it('has no UUID ("Not Settable") and no serial ("Not Specified")', () => {
    expect(d.system.uuid).toBeUndefined();
    expect(d.system.serial).toBeUndefined();
    expect(d.system.manufacturer).toBe('QEMU');
    expect(d.bios?.vendor).toBe('SeaBIOS');
    expect(d.bmc).toBeUndefined();
    expect(d.baseboard).toBeUndefined();
  });
});

describe('dmidecode edge cases', () => {
  it('refuses output without records (dmidecode on a machine without SMBIOS)', () => {
    expect(() => parseDmidecode(fixture('dmidecode-host-nodmi.stdout'))).toThrow(/no SMBIOS records/);
  });
  it('treats OEM placeholders as absent', () => {
    expect(dmiValue('To Be Filled By O.E.M.')).toBeUndefined();
    expect(dmiValue('Default string')).toBeUndefined();
    expect(dmiValue(' R640 ')).toBe('R640');
  });
  it('converts SMBIOS sizes', () => {
    expect(parseDmiSize('16 GB')).toBe(16 * 1024 ** 3);
    expect(parseDmiSize('16384 MB')).toBe(16 * 1024 ** 3);
    expect(parseDmiSize('No Module Installed')).toBeUndefined();
  });
  it('drops all-zero UUIDs and unpopulated sockets, empty DIMM slots', () => {
    const text = [
      'Handle 0x0001, DMI type 1, 27 bytes',
      'System Information',
      '\tUUID: 00000000-0000-0000-0000-000000000000',
      '',
      'Handle 0x0004, DMI type 4, 48 bytes',
      'Processor Information',
      '\tSocket Designation: CPU2',
      '\tStatus: Unpopulated',
      '',
      'Handle 0x0011, DMI type 17, 84 bytes',
      'Memory Device',
      '\tSize: No Module Installed',
      '\tLocator: B2',
      '',
    ].join('\n');
    const d = parseDmidecode(text);
    expect(d.system.uuid).toBeUndefined();
    expect(d.processors).toEqual([]);
    expect(d.memoryDevices).toEqual([]);
  });
});
