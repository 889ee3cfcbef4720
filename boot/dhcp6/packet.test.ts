// DHCPv6 codec (issue 19 item 4): real captures decode to what the peers logged and re-encode byte for byte,
// fast-check properties (random bytes never throw; generated messages round-trip; decodable bytes re-encode
// unchanged), and a clear error for each kind of malformed packet.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Dhcp6Message, type Duid, type Option6, MAX_RELAY_DEPTH, MsgType, decodeDhcp6, encodeDhcp6, findOption, innermost, ip6ToBuffer, ip6ToString, isRelay } from './packet.ts';

const fixture = (name: string): Buffer =>
  Buffer.from(
    readFileSync(new URL(`fixtures/${name}`, import.meta.url), 'utf8')
      .split('\n')
      .filter((l) => l.trim() && !l.startsWith('#'))
      .join(''),
    'hex',
  );
const decoded = (name: string): Dhcp6Message => {
  const r = decodeDhcp6(fixture(name));
  if (!r.ok) throw new Error(`${name}: ${r.error}`);
  return r.message;
};
const fixtures = ['dhclient-solicit.hex', 'dnsmasq-advertise.hex', 'dhclient-request.hex', 'dnsmasq-reply.hex', 'dhcrelay-relay-forw-solicit.hex', 'dnsmasq-relay-repl-advertise.hex'];

describe('real captures (capture.sh: dhclient -6, dhcrelay -6, dnsmasq)', () => {
  it.each(fixtures)('%s: decode → encode gives the captured bytes back', (name) => {
    expect(encodeDhcp6(decoded(name)).equals(fixture(name))).toBe(true);
  });

  it("dhclient's SOLICIT: DUID-LLT over Ethernet, ORO, elapsed time, an IA_NA with no address", () => {
    const m = decoded('dhclient-solicit.hex');
    expect(m.type).toBe(MsgType.SOLICIT);
    const duid = findOption(m.options, 'clientId')!.duid as Extract<Duid, { type: 1 }>;
    expect(duid).toMatchObject({ type: 1, hwType: 1 });
    expect(duid.linkLayer.length).toBe(6);
    expect(findOption(m.options, 'oro')!.codes).toEqual([23, 24, 39, 31]);
    expect(findOption(m.options, 'elapsedTime')!.centiseconds).toBe(0);
    expect(findOption(m.options, 'iaNa')).toMatchObject({ t1: 3600, t2: 5400, options: [] });
  });

  it("dnsmasq's ADVERTISE and REPLY: the address in IA_NA > IAADDR, status success, DNS, boot-file URL and parameters", () => {
    for (const name of ['dnsmasq-advertise.hex', 'dnsmasq-reply.hex']) {
      const m = decoded(name);
      expect(m.type).toBe(name.includes('reply') ? MsgType.REPLY : MsgType.ADVERTISE);
      const ia = findOption(m.options, 'iaNa')!;
      expect(ia).toMatchObject({ t1: 1800, t2: 3150 });
      expect(findOption(ia.options, 'iaAddr')).toMatchObject({ preferred: 3600, valid: 3600 });
      expect(findOption(ia.options, 'iaAddr')!.address).toMatch(/^fd00::1[0-9a-f]{2}$/);
      expect(findOption(m.options, 'dnsServers')!.servers).toEqual(['fd01::2']);
      expect(findOption(m.options, 'bootfileUrl')!.url).toBe('http://[fd01::2]:8080/ipxe.efi');
      expect(findOption(m.options, 'bootfileParams')!.params).toEqual(['ipxe']);
      expect(findOption(m.options, 'serverId')!.duid.type).toBe(1);
    }
  });

  it("dhclient's REQUEST names dnsmasq's server id and the same client id as its SOLICIT", () => {
    const sol = decoded('dhclient-solicit.hex');
    const req = decoded('dhclient-request.hex');
    const adv = decoded('dnsmasq-advertise.hex');
    expect(req.type).toBe(MsgType.REQUEST);
    expect(findOption(req.options, 'clientId')).toEqual(findOption(sol.options, 'clientId'));
    expect(findOption(req.options, 'serverId')).toEqual(findOption(adv.options, 'serverId'));
  });

  it("dhcrelay's RELAY-FORW and dnsmasq's RELAY-REPL: hop count, link and peer address, the message inside", () => {
    const fw = decoded('dhcrelay-relay-forw-solicit.hex');
    expect(isRelay(fw) && fw).toMatchObject({ type: MsgType.RELAY_FORW, hopCount: 0, linkAddress: 'fd00::1' });
    if (!isRelay(fw)) throw new Error('not a relay message');
    expect(fw.peerAddress).toMatch(/^fe80::/);
    expect(innermost(fw)).toEqual(decoded('dhclient-solicit.hex'));
    const rp = decoded('dnsmasq-relay-repl-advertise.hex');
    expect(rp.type).toBe(MsgType.RELAY_REPL);
    expect(innermost(rp)?.type).toBe(MsgType.ADVERTISE);
  });
});

describe('encoding a reply with a boot-file URL (RFC 5970)', () => {
  it('an ADVERTISE built from values decodes to the same values and carries option 59 as UTF-8', () => {
    const msg: Dhcp6Message = {
      type: MsgType.ADVERTISE,
      transactionId: 0xabcdef,
      options: [
        { kind: 'serverId', duid: { type: 3, hwType: 1, linkLayer: Buffer.from('525400bf0001', 'hex') } },
        { kind: 'clientId', duid: { type: 4, uuid: Buffer.alloc(16, 7) } },
        { kind: 'iaNa', iaid: 1, t1: 1800, t2: 2880, options: [{ kind: 'iaAddr', address: '2001:db8::42', preferred: 3600, valid: 7200, options: [] }] },
        { kind: 'bootfileUrl', url: 'http://[2001:db8::1]:8080/ipxe.efi' },
        { kind: 'clientArch', arches: [16] },
        { kind: 'nii', type: 1, major: 3, minor: 16 },
        { kind: 'vendorClass', enterprise: 343, data: [Buffer.from('HTTPClient')] },
        { kind: 'statusCode', status: 0, message: 'alles gut ✓' },
        { kind: 'raw', code: 999, data: Buffer.from([1, 2, 3]) },
      ],
    };
    const bytes = encodeDhcp6(msg);
    expect(bytes.subarray(0, 4).toString('hex')).toBe('02abcdef');
    expect(bytes.includes(Buffer.concat([Buffer.from([0, 59, 0, 34]), Buffer.from('http://[2001:db8::1]:8080/ipxe.efi')]))).toBe(true);
    expect(decodeDhcp6(bytes)).toEqual({ ok: true, message: msg });
  });

  it('refuses values that do not fit their fields, naming the option', () => {
    expect(() => encodeDhcp6({ type: MsgType.REPLY, transactionId: 1, options: [{ kind: 'raw', code: 77, data: Buffer.alloc(70_000) }] })).toThrow('option 77 of 70000 bytes does not fit its 16-bit length');
    expect(() => encodeDhcp6({ type: MsgType.REPLY, transactionId: 1, options: [{ kind: 'dnsServers', servers: ['10.0.0.1'] }] })).toThrow('not an IPv6 address: 10.0.0.1');
  });
});

describe('malformed packets: a clear error, never a throw', () => {
  const sol = () => Buffer.from(fixture('dhclient-solicit.hex'));
  const cases: [string, () => Buffer, string][] = [
    ['empty', () => Buffer.alloc(0), 'message of 0 bytes is shorter than 4'],
    ['reserved type 0', () => Buffer.from([0, 1, 2, 3]), 'message type 0 is reserved'],
    ['relay header cut short', () => Buffer.from([12, 0, 1, 2, 3]), 'relay message of 5 bytes is shorter than its 34-byte header'],
    ['an option overrunning the message', () => Buffer.concat([Buffer.from('01000001', 'hex'), Buffer.from('00080010', 'hex'), Buffer.alloc(4)]), 'option 8 (elapsed time) of length 16 overruns the message by 12 bytes'],
    ['stray bytes after the last option', () => Buffer.concat([sol(), Buffer.from([0, 1])]), '2 stray bytes after the last option'],
    ['elapsed time of 3 bytes', () => Buffer.from('0100000100080003000000', 'hex'), 'option 8 (elapsed time): length 3, must be 2'],
    ['odd ORO', () => Buffer.from('010000010006000100', 'hex'), 'option 6 (ORO): requested option list has odd length 1'],
    ['DNS servers not a multiple of 16', () => Buffer.from('0700000100170004fd000000', 'hex'), 'option 23 (DNS servers): length 4 is not a multiple of 16'],
    ['IAADDR inside IA_NA too short', () => Buffer.from(`0700000100030010${'00'.repeat(12)}00050000`, 'hex'), 'option 3 (IA_NA) > option 5 (IAADDR): length 0, needs at least 24'],
    ['DUID without a type', () => Buffer.from('01000001000100010a', 'hex'), 'option 1 (client id): DUID of 1 bytes has no type'],
    ['DUID-UUID of the wrong size', () => Buffer.from('01000001000100040004aabb', 'hex'), 'option 1 (client id): DUID-UUID of 4 bytes, must be 18 (RFC 6355)'],
    ['status message not UTF-8', () => Buffer.from('07000001000d00040000c328', 'hex'), 'option 13 (status code): status message is not valid UTF-8'],
    ['boot-file parameter overrunning', () => Buffer.from('07000001003c00030005aa', 'hex'), 'option 60 (boot-file parameters): boot-file parameters: item of 5 bytes at byte 0 overruns the option'],
    ['NII of 2 bytes', () => Buffer.from('01000001003e00020103', 'hex'), 'option 62 (NII): length 2, must be 3'],
    ['relay message inside a relay, cut short', () => Buffer.concat([Buffer.from([12, 0]), Buffer.alloc(32), Buffer.from('000900020100', 'hex')]), 'option 9 (relay message): message of 2 bytes is shorter than 4'],
  ];
  it.each(cases)('%s', (_name, bytes, error) => {
    expect(decodeDhcp6(bytes())).toEqual({ ok: false, error });
  });

  it(`relay headers nested deeper than ${MAX_RELAY_DEPTH} are refused, not recursed into`, () => {
    let inner = fixture('dhclient-solicit.hex');
    const wrap = (m: Buffer) => Buffer.concat([Buffer.from([12, 0]), Buffer.alloc(32), Buffer.from([0, 9, m.length >> 8, m.length & 255]), m]);
    for (let i = 0; i < MAX_RELAY_DEPTH; i++) inner = wrap(inner);
    expect(decodeDhcp6(inner).ok).toBe(true); // 32 relay headers around the SOLICIT: still decoded
    const r = decodeDhcp6(wrap(inner));
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toMatch(/^(option 9 \(relay message\) > )+option 9 \(relay message\): relay messages nested deeper than 32$/);
  });

  it('not a buffer', () => {
    expect(decodeDhcp6('x' as unknown as Buffer)).toEqual({ ok: false, error: 'not a buffer' });
  });
});

describe('IPv6 text form (RFC 5952)', () => {
  it.each([
    ['fd00::1', 'fd00::1'],
    ['0:0:0:0:0:0:0:0', '::'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['FE80::5054:FF:FEBF:17', 'fe80::5054:ff:febf:17'],
  ])('%s → %s', (input, want) => {
    expect(ip6ToString(ip6ToBuffer(input))).toBe(want);
  });
  it.each(['', '1::2::3', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', '12345::', 'g::1', '10.0.0.1'])('refuses %j', (bad) => {
    expect(() => ip6ToBuffer(bad)).toThrow('not an IPv6 address');
  });
});

// ---- properties ----

const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a));
const ip6 = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((a) => ip6ToString(Buffer.from(a)));
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const text = fc.string({ maxLength: 40, unit: 'grapheme' });
const duid: fc.Arbitrary<Duid> = fc.oneof(
  fc.record({ type: fc.constant(1), hwType: u16, time: u32, linkLayer: bytes(16) }),
  fc.record({ type: fc.constant(2), enterprise: u32, id: bytes(16) }),
  fc.record({ type: fc.constant(3), hwType: u16, linkLayer: bytes(16) }),
  fc.record({ type: fc.constant(4), uuid: fc.uint8Array({ minLength: 16, maxLength: 16 }).map((a) => Buffer.from(a)) }),
  fc.record({ type: fc.integer({ min: 5, max: 0xffff }), raw: bytes(16) }),
) as fc.Arbitrary<Duid>;
const KNOWN = new Set([1, 2, 3, 5, 6, 8, 9, 13, 16, 23, 59, 60, 61, 62]);
const leaf: fc.Arbitrary<Option6> = fc.oneof(
  fc.record({ kind: fc.constant('clientId' as const), duid }),
  fc.record({ kind: fc.constant('serverId' as const), duid }),
  fc.record({ kind: fc.constant('oro' as const), codes: fc.array(u16, { maxLength: 8 }) }),
  fc.record({ kind: fc.constant('elapsedTime' as const), centiseconds: u16 }),
  fc.record({ kind: fc.constant('statusCode' as const), status: u16, message: text }),
  fc.record({ kind: fc.constant('vendorClass' as const), enterprise: u32, data: fc.array(bytes(12), { maxLength: 3 }) }),
  fc.record({ kind: fc.constant('dnsServers' as const), servers: fc.array(ip6, { maxLength: 3 }) }),
  fc.record({ kind: fc.constant('bootfileUrl' as const), url: text }),
  fc.record({ kind: fc.constant('bootfileParams' as const), params: fc.array(text, { maxLength: 3 }) }),
  fc.record({ kind: fc.constant('clientArch' as const), arches: fc.array(u16, { minLength: 1, maxLength: 4 }) }),
  fc.record({ kind: fc.constant('nii' as const), type: fc.integer({ min: 0, max: 255 }), major: fc.integer({ min: 0, max: 255 }), minor: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('raw' as const), code: u16.filter((c) => !KNOWN.has(c)), data: bytes(20) }),
);
const { message } = fc.letrec<{ message: Dhcp6Message; option: Option6 }>((tie) => ({
  option: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.record({ kind: fc.constant('iaNa' as const), iaid: u32, t1: u32, t2: u32, options: fc.array(tie('option'), { maxLength: 3 }) }),
    fc.record({ kind: fc.constant('iaAddr' as const), address: ip6, preferred: u32, valid: u32, options: fc.array(tie('option'), { maxLength: 2 }) }),
    fc.record({ kind: fc.constant('relayMessage' as const), message: tie('message') }),
  ),
  message: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.record({ type: fc.integer({ min: 1, max: 255 }).filter((t) => t !== 12 && t !== 13), transactionId: fc.integer({ min: 0, max: 0xffffff }), options: fc.array(tie('option'), { maxLength: 5 }) }),
    fc.record({ type: fc.constantFrom(12 as const, 13 as const), hopCount: fc.integer({ min: 0, max: 255 }), linkAddress: ip6, peerAddress: ip6, options: fc.array(tie('option'), { maxLength: 3 }) }),
  ),
}));

describe('properties (fast-check)', () => {
  it('random bytes never throw: a message or an error string', () => {
    fc.assert(
      fc.property(bytes(600), (b) => {
        const r = decodeDhcp6(b);
        return r.ok ? typeof r.message.type === 'number' : typeof r.error === 'string' && r.error.length > 0;
      }),
      { numRuns: 5000 },
    );
  });

  it('bytes that decode re-encode unchanged (mutated captures, so most mutations hit real options)', () => {
    const seeds = fixtures.map(fixture);
    fc.assert(
      fc.property(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.nat(400), (seed, flips, cut) => {
        const b = Buffer.from(seed.subarray(0, Math.max(4, seed.length - (cut % 40))));
        for (const [at, v] of flips) b[at % b.length] = v;
        const r = decodeDhcp6(b);
        if (r.ok) expect(encodeDhcp6(r.message).equals(b)).toBe(true);
        else expect(r.error.length).toBeGreaterThan(0);
      }),
      { numRuns: 3000 },
    );
  });

  it('generated messages (nested IA_NA, IAADDR and relays) round-trip through encode → decode', () => {
    fc.assert(
      fc.property(message, (m) => {
        const b = encodeDhcp6(m);
        expect(decodeDhcp6(b)).toEqual({ ok: true, message: m });
        expect(encodeDhcp6((decodeDhcp6(b) as { message: Dhcp6Message }).message).equals(b)).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });
});
