import { describe, expect, it } from 'vitest';
import { LldpNeighbor } from '../../server/contract/facts.ts';
import { fixture, lldpFrames } from '../../test/support/agent/fixtures.ts';
import { parseLldpcliJson0 } from './lldp.ts';
import { decodeLldpFrame, decodeLldpdu, frameToNeighbor, hexToBytes, LldpDecodeError, parseTcpdumpHex } from './lldp-tlv.ts';

describe('parseLldpcliJson0 (real lldpd 1.0.16 peers in network namespaces)', () => {
  it('reads two neighbours on two interfaces', () => {
    const n = parseLldpcliJson0(fixture('lldpcli-json0-two-neighbors.json'));
    expect(n).toHaveLength(2);
    expect(n[0]).toEqual({
      interface: 'bfag-b0',
      via: 'LLDP',
      chassisId: '52:54:00:aa:00:01',
      chassisIdSubtype: 'mac',
      systemName: 'leaf-sw01.rack12.example',
      systemDescription: 'BootFarm test switch A (lldpd in netns)',
      portId: 'bfag-a0',
      portIdSubtype: 'interface-name',
      portDescription: 'Ethernet1/7 to node R740-Test',
      ttl: 20,
      managementAddresses: ['192.0.2.1', 'fe80::5054:ff:feaa:1'],
      capabilities: [
        { type: 'Bridge', enabled: true },
        { type: 'Router', enabled: true },
        { type: 'Wlan', enabled: false },
        { type: 'Station', enabled: false },
      ],
      unknownTlvs: [{ oui: '00:90:69', subtype: 1, value: '414243' }],
    });
    expect(n[1]).toMatchObject({ interface: 'bfag-b1', systemName: 'leaf-sw02.rack12.example', portId: 'Eth1/8', portIdSubtype: 'local' });
    for (const x of n) expect(LldpNeighbor.safeParse(x).success).toBe(true);
  });

  it('reads one neighbour in the same always-array shape', () => {
    const n = parseLldpcliJson0(fixture('lldpcli-json0-one-neighbor.json'));
    expect(n.map((x) => [x.interface, x.systemName, x.portIdSubtype])).toEqual([['bfag-a0', 'node-r740.example', 'mac']]);
  });

  it('returns no neighbours for a lone lldpd', () => {
    expect(parseLldpcliJson0(fixture('lldpcli-json0-no-neighbors.json'))).toEqual([]);
  });

  it('refuses the shape-changing -f json format and non-JSON with a clear error', () => {
    expect(() => parseLldpcliJson0(fixture('lldpcli-json-two-neighbors-unstable.json'))).toThrow(/-f json0/);
    expect(() => parseLldpcliJson0('lldpcli: unable to connect')).toThrow(/not JSON/);
  });
});

describe('decodeLldpFrame on frames captured off veths with tcpdump', () => {
  const frames = lldpFrames();

  it('decodes switch A: ifname port ID, description, capabilities, management addresses, 802.3 and custom TLVs', () => {
    const f = decodeLldpFrame(hexToBytes(frames.get('switch-a')!));
    expect(f.destination).toBe('01:80:c2:00:00:0e'); // nearest-bridge group address, 802.1AB Table 7-1
    expect(f.source).toBe('52:54:00:aa:00:01');
    expect(f.chassisId).toEqual({ subtype: 4, subtypeName: 'mac', value: '52:54:00:aa:00:01' });
    expect(f.portId).toEqual({ subtype: 5, subtypeName: 'interface-name', value: 'bfag-a0' });
    expect(f.ttl).toBe(20);
    expect(f.systemName).toBe('leaf-sw01.rack12.example');
    expect(f.systemDescription).toBe('BootFarm test switch A (lldpd in netns)');
    expect(f.portDescription).toBe('Ethernet1/7 to node R740-Test');
    expect(f.capabilities).toEqual({ system: ['bridge', 'wlan-ap', 'router', 'station'], enabled: ['bridge', 'router'] });
    expect(f.managementAddresses).toEqual([
      { addressSubtype: 1, address: '192.0.2.1', interfaceSubtype: 2, interfaceNumber: 8 },
      { addressSubtype: 2, address: 'fe80::5054:ff:feaa:1', interfaceSubtype: 2, interfaceNumber: 8 },
    ]);
    expect(f.org.map((o) => o.decoded?.['name'] ?? `${o.oui}/${o.subtype}:${o.hex}`)).toEqual(['link-aggregation', 'mac-phy', 'power-via-mdi', '00:90:69/1:414243']);
    expect(f.org.find((o) => o.decoded?.['name'] === 'power-via-mdi')?.decoded).toMatchObject({ pseSupported: true, pseEnabled: true, powerPair: 2, powerClass: 3 });
    expect(f.unknown).toEqual([]);
  });

  it('agrees with what lldpd itself decoded from the same peers', () => {
    const fromWire = frameToNeighbor('bfag-b0', decodeLldpFrame(hexToBytes(frames.get('switch-a')!)));
    const fromLldpd = parseLldpcliJson0(fixture('lldpcli-json0-two-neighbors.json'))[0]!;
    for (const k of ['interface', 'chassisId', 'chassisIdSubtype', 'systemName', 'systemDescription', 'portId', 'portIdSubtype', 'portDescription', 'ttl', 'managementAddresses'] as const) {
      expect(fromWire[k], k).toEqual(fromLldpd[k]);
    }
    const c = frameToNeighbor('bfag-b1', decodeLldpFrame(hexToBytes(frames.get('switch-c')!)));
    expect([c.portId, c.portIdSubtype]).toEqual(['Eth1/8', 'local']);
    const b = decodeLldpFrame(hexToBytes(frames.get('node-b')!));
    expect(b.portId).toEqual({ subtype: 3, subtypeName: 'mac', value: '52:54:00:bb:00:01' });
  });
});

describe('decodeLldpdu on hand-built TLVs', () => {
  const tlv = (type: number, ...bytes: number[]) => [(type << 1) | (bytes.length >> 8), bytes.length & 0xff, ...bytes];
  const mandatory = [...tlv(1, 7, ...Buffer.from('sw1')), ...tlv(2, 7, ...Buffer.from('p1')), ...tlv(3, 0, 120)];

  it('decodes 802.1 port VLAN ID and VLAN name, and keeps unknown types as hex', () => {
    const pdu = Uint8Array.from([
      ...mandatory,
      ...tlv(127, 0x00, 0x80, 0xc2, 1, 0x00, 0x64),
      ...tlv(127, 0x00, 0x80, 0xc2, 3, 0x00, 0x64, 4, ...Buffer.from('prod')),
      ...tlv(127, 0x00, 0x12, 0x0f, 4, 0x23, 0x28),
      ...tlv(42, 0xde, 0xad),
      ...tlv(0),
    ]);
    const f = decodeLldpdu(pdu);
    expect(f.org.map((o) => o.decoded)).toEqual([
      { name: 'port-vlan-id', pvid: 100 },
      { name: 'vlan-name', vid: 100, vlanName: 'prod' },
      { name: 'max-frame-size', bytes: 9000 },
    ]);
    expect(f.unknown).toEqual([{ type: 42, hex: 'dead' }]);
    expect(frameToNeighbor('eth0', f).vlan).toBe(100);
  });

  it('decodes an 802.1Q-tagged frame', () => {
    const frame = Uint8Array.from([...hexToBytes('0180c200000e525400aa0001'), 0x81, 0x00, 0x00, 0x0a, 0x88, 0xcc, ...mandatory, ...tlv(0)]);
    expect(decodeLldpFrame(frame).vlanTag).toBe(10);
  });

  const bad: Array<[string, Uint8Array, RegExp, 'frame' | 'pdu']> = [
    ['a runt frame', Uint8Array.of(1, 2, 3), /shorter than an Ethernet header/, 'frame'],
    ['a non-LLDP ethertype', hexToBytes('0180c200000e525400aa00010800'), /not LLDP/, 'frame'],
    ['a TLV longer than the frame', Uint8Array.from([...tlv(1, 7, 1).slice(0, 2), 0xff]), /claims/, 'pdu'],
    ['no End TLV', Uint8Array.from(mandatory), /End of LLDPDU/, 'pdu'],
    ['Port ID before Chassis ID', Uint8Array.from([...tlv(2, 7, 1), ...tlv(1, 7, 1), ...tlv(3, 0, 1), ...tlv(0)]), /must start with Chassis ID/, 'pdu'],
    ['a 1-byte TTL', Uint8Array.from([...tlv(1, 7, 1), ...tlv(2, 7, 1), ...tlv(3, 1), ...tlv(0)]), /TTL TLV is 1 bytes/, 'pdu'],
    ['a short org TLV', Uint8Array.from([...mandatory, ...tlv(127, 0, 0x80), ...tlv(0)]), /shorter than OUI/, 'pdu'],
    ['a management address with a too-long OID', Uint8Array.from([...mandatory, ...tlv(8, 5, 1, 10, 0, 0, 1, 2, 0, 0, 0, 1, 9), ...tlv(0)]), /OID runs past/, 'pdu'],
  ];
  it.each(bad)('rejects %s with LldpDecodeError', (_, bytes, msg, kind) => {
    const decode = () => (kind === 'frame' ? decodeLldpFrame(bytes) : decodeLldpdu(bytes));
    expect(decode).toThrow(LldpDecodeError);
    expect(decode).toThrow(msg);
  });
});

describe('decodeLldpFrame on arbitrary bytes', () => {
  it('either decodes or throws LldpDecodeError, never anything else', async () => {
    const fc = await import('fast-check');
    const real = hexToBytes(lldpFrames().get('switch-a')!);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(real.length), (noise, cut) => {
        // random bytes, and the real frame with its tail replaced by random bytes
        for (const input of [noise, Uint8Array.from([...real.subarray(0, cut), ...noise])]) {
          try {
            decodeLldpFrame(input);
          } catch (e) {
            if (!(e instanceof LldpDecodeError)) throw e;
          }
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('parseTcpdumpHex', () => {
  it('reads the frame tcpdump -xx printed and it decodes', () => {
    const frames = parseTcpdumpHex(fixture('tcpdump-xx-lldp.txt'));
    expect(frames).toHaveLength(1);
    expect(frames[0]!.length).toBe(203 + 14); // tcpdump's "length 203" counts the LLDPDU only
    const f = decodeLldpFrame(frames[0]!);
    expect(f.systemName).toBe('leaf-sw01.rack12.example');
    expect(f.source).toBe(f.chassisId.value);
  });
  it('finds nothing in text without hex lines', () => {
    expect(parseTcpdumpHex('tcpdump: listening on eth0\n0 packets captured\n')).toEqual([]);
  });
});
