import { describe, expect, it } from 'vitest';
import { checkVersion, compareVersions, describeRule, tokenizeVersion } from './firmware-version.ts';

// Real-world strings, with where each scheme comes from:
//   Dell PowerEdge BIOS (dmidecode -s bios-version): "1.4.9", "2.10.2"; old Dell BIOS "A12"
//   Supermicro BIOS: "3.4", "2.10"
//   HPE ProLiant system ROM (dmidecode type 0): "U46 v2.58 (03/12/2022)", "P89" (family only, Gen9 DL380)
//   Lenovo ThinkSystem UEFI: "IVE164L-2.50"
//   Mellanox ConnectX (ethtool -i firmware-version): "16.35.2000 (MT_0000000080)"
//   Intel E810/X710 (ethtool -i): "4.40 0x8001c967 1.3429.0", NVM eetrack "0x80001234"
//   iDRAC / BMC: "7.00.00.171", ipmitool mc info "2.87"
describe('compareVersions', () => {
  const cases: Array<[string, string, string, -1 | 0 | 1 | null]> = [
    ['patch level counts', '1.4.9', '1.4.10', -1],
    ['numbers compare as numbers, not text', '2.10', '2.9', 1],
    ['trailing zeros are equal', '2.10', '2.10.0', 0],
    ['a longer non-zero tail is newer', '1.4', '1.4.1', -1],
    ['leading zeros are ignored', '7.00.00.171', '7.0.0.171', 0],
    ['HPE ROM: same family compares the version', 'U46 v2.58', 'U46 v2.60', -1],
    ['HPE ROM with release date after the version', 'U46 v2.58 (03/12/2022)', 'U46 v2.58', 1],
    ['HPE ROM: the v prefix is noise', 'U46 v2.58', 'U46 2.58', 0],
    ['HPE ROM: different families are not comparable', 'U46 v2.58', 'U30 v2.58', null],
    ['family alone is older than family with version', 'P89', 'P89 v1.0', -1],
    ['same family alone equals', 'P89', 'p89', 0],
    ['family letters against a plain number are not comparable', 'P89', '1.4.9', null],
    // a letter-digit word is an identifier: guessing that A12 > A09 could wave through a wrong image
    ['old Dell letter-number BIOS is an identifier, not comparable', 'A12', 'A09', null],
    ['version with a letter suffix is not comparable to another suffix', '1.0a', '1.0b', null],
    ['Mellanox firmware', '16.35.2000', '16.35.1012', 1],
    ['Mellanox firmware with PSID suffix', '16.35.2000 (MT_0000000080)', '16.35.2000', 1],
    ['Mellanox major differs', '16.35.2000', '22.31.1014', -1],
    ['hex eetrack ids compare as numbers', '0x80001234', '0x8000abcd', -1],
    ['hex is case-insensitive', '0x8000ABCD', '0x8000abcd', 0],
    ['Intel NVM + eetrack + combo image', '4.40 0x8001c967 1.3429.0', '4.40 0x8001c967 1.3429.0', 0],
    ['Intel NVM version decides first', '4.40 0x8001c967 1.3429.0', '4.20 0x8001d8b6 1.3429.0', 1],
    ['Lenovo UEFI build', 'IVE164L-2.50', 'IVE164L-2.41', 1],
    ['Lenovo UEFI different build trains are not comparable', 'IVE164L-2.50', 'IVE170L-2.50', null],
    ['empty strings are equal', '', '  ', 0],
    ['empty against a version is not comparable', '', '1.0', null],
  ];
  it.each(cases)('%s: %s vs %s', (_name, a, b, want) => {
    expect(compareVersions(a, b)).toBe(want);
    // antisymmetry: swapping the arguments flips the answer
    const back = compareVersions(b, a);
    expect(back).toBe(want === null ? null : want === 0 ? 0 : -want);
  });

  it('tokenizes hex, numbers and words, dropping separators', () => {
    expect(tokenizeVersion('U46 v2.58 (03/12/2022)').map((t) => t.text)).toEqual(['U46', 'v2', '58', '03', '12', '2022']);
    expect(tokenizeVersion('4.40 0x8001c967').map((t) => t.kind)).toEqual(['num', 'num', 'num']);
    expect(tokenizeVersion('v2.58').map((t) => t.value)).toEqual([2n, 58n]);
  });
});

describe('checkVersion', () => {
  const cases: Array<[string, string | undefined, Parameters<typeof checkVersion>[1], string]> = [
    ['minimum met exactly', '1.4.9', { minimum: '1.4.9' }, 'compliant'],
    ['minimum exceeded', '1.4.10', { minimum: '1.4.9' }, 'compliant'],
    ['below minimum', '1.2.0', { minimum: '1.4.9' }, 'outdated'],
    ['missing fact', undefined, { minimum: '1.4.9' }, 'unknown'],
    ['blank fact', '  ', { exact: '1.0' }, 'unknown'],
    ['incomparable under minimum is unknown, not compliant', 'U30 v2.90', { minimum: 'U46 v2.58' }, 'unknown'],
    ['exact match', '16.35.2000', { exact: '16.35.2000' }, 'compliant'],
    ['exact ignores trailing zeros', '2.10.0', { exact: '2.10' }, 'compliant'],
    ['exact: newer is still wrong', '16.35.2010', { exact: '16.35.2000' }, 'outdated'],
    ['allowed list hit', '0x80001234', { allowed: ['0x80001111', '0x80001234'] }, 'compliant'],
    ['allowed list miss', '0x80001000', { allowed: ['0x80001111', '0x80001234'] }, 'outdated'],
  ];
  it.each(cases)('%s', (_name, current, rule, want) => {
    expect(checkVersion(current, rule)).toBe(want);
  });

  it('describes rules for people', () => {
    expect(describeRule({ minimum: '1.4.9' })).toBe('≥ 1.4.9');
    expect(describeRule({ exact: '2.10' })).toBe('= 2.10');
    expect(describeRule({ allowed: ['a', 'b'] })).toBe('one of a, b');
  });
});
