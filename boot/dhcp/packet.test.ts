import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { classify } from './classify.ts';
import { MIN_PACKET, MessageType, Opt, decodePacket, encodePacket, macOf } from './packet.ts';
import { fixturePacket, readHexFixture, request } from '../../test/support/dhcp/fakes.ts';

const fixtures = ['udhcpc-discover.hex', 'dhclient-discover.hex', 'ipxe-rom-bios-discover.hex', 'ipxe-rom-efi-discover.hex', 'ovmf-pxe-discover.hex', 'ovmf-http-discover.hex', 'ovmf-http-request.hex'];

describe('decoding packets captured from real clients', () => {
  it('busybox udhcpc: hostname, vendor class, client id, max size', () => {
    const c = classify(fixturePacket('udhcpc-discover.hex'));
    expect(c).toMatchObject({ messageType: MessageType.DISCOVER, mac: '52:54:00:12:34:56', hostname: 'node1', vendorClass: 'bootfarm-test', maxSize: 576, isPxe: false, isIpxe: false });
    expect(c.clientId?.toString('hex')).toBe('01525400123456');
  });

  it('ISC dhclient: hostname and parameter list, no client id', () => {
    const c = classify(fixturePacket('dhclient-discover.hex'));
    expect(c).toMatchObject({ messageType: MessageType.DISCOVER, hostname: 'node1', paramList: [1, 28, 3, 6, 12], clientId: undefined });
  });

  it("QEMU's BIOS iPXE ROM: PXEClient, arch 0, user class iPXE, NDI, UUID, option 175", () => {
    const p = fixturePacket('ipxe-rom-bios-discover.hex');
    const c = classify(p);
    expect(c).toMatchObject({ mac: '52:54:00:aa:bb:01', vendorClass: 'PXEClient:Arch:00000:UNDI:002001', userClass: ['iPXE'], arch: 0, ndi: [1, 2, 1], isPxe: true, isIpxe: true, maxSize: 1472 });
    expect(c.uuid).toBe('00000000-0000-0000-0000-000000000000');
    expect(p.options.get(Opt.IPXE)?.length).toBeGreaterThan(0);
  });

  it("OVMF's UEFI PXE: arch 7 without user class", () => {
    const c = classify(fixturePacket('ovmf-pxe-discover.hex'));
    expect(c).toMatchObject({ arch: 7, isPxe: true, isIpxe: false, userClass: [] });
  });

  it("OVMF's UEFI HTTP boot: HTTPClient, arch 16, NDI 1.3.0, no user class", () => {
    const c = classify(fixturePacket('ovmf-http-discover.hex'));
    expect(c).toMatchObject({ messageType: MessageType.DISCOVER, mac: '52:54:00:bf:00:17', vendorClass: 'HTTPClient:Arch:00016:UNDI:003000', arch: 16, ndi: [1, 3, 0], isHttpClient: true, isPxe: false, isIpxe: false, userClass: [], maxSize: 1472 });
    expect(c.paramList).toContain(67); // it asks for the boot file name option: the URL
    expect(classify(fixturePacket('ovmf-http-request.hex'))).toMatchObject({ messageType: MessageType.REQUEST, serverId: '10.69.0.1', requestedIp: '10.69.0.100', isHttpClient: true });
  });

  it.each(fixtures)('%s survives decode → encode → decode unchanged', (name) => {
    const p = fixturePacket(name);
    const again = decodePacket(encodePacket(p, 1500));
    expect(again.ok).toBe(true);
    if (again.ok) expect(again.packet).toEqual(p);
  });
});

describe('codec corner cases', () => {
  it('reads options from file and sname when option 52 says they are overloaded (RFC 2132 §9.3)', () => {
    const buf = encodePacket(request({ type: MessageType.DISCOVER, mac: '02:00:00:00:00:01' }));
    buf.fill(0, 44, 236);
    // option area: 52=3 (both), end
    const opts = Buffer.from([53, 1, 1, 52, 1, 3, 255]);
    opts.copy(buf, MIN_PACKET);
    Buffer.from([60, 9, ...Buffer.from('PXEClient'), 255]).copy(buf, 108); // file
    Buffer.from([12, 2, 0x68, 0x69, 255]).copy(buf, 44); // sname
    const r = decodePacket(buf);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.packet.options.get(Opt.VENDOR_CLASS)?.toString()).toBe('PXEClient');
    expect(r.packet.options.get(Opt.HOSTNAME)?.toString()).toBe('hi');
    expect(r.packet.file).toBe('');
    expect(r.packet.sname).toBe('');
  });

  it('concatenates repeated instances of one option (RFC 3396) and splits long ones on encode', () => {
    const p = request({ type: MessageType.OFFER, mac: '02:00:00:00:00:02' });
    const long = Buffer.alloc(600, 0x41);
    p.options.set(Opt.VENDOR_SPECIFIC, long);
    const buf = encodePacket(p, 1500);
    // three instances of option 43: 255 + 255 + 90
    let count = 0;
    for (let i = MIN_PACKET; i < buf.length && buf[i] !== 255; i += 2 + buf[i + 1]!) if (buf[i] === 43) count++;
    expect(count).toBe(3);
    const r = decodePacket(buf);
    expect(r.ok && r.packet.options.get(Opt.VENDOR_SPECIFIC)?.equals(long)).toBe(true);
  });

  it('keeps unknown options and pads replies to the 300-byte BOOTP minimum', () => {
    const p = request({ type: MessageType.DISCOVER, mac: '02:00:00:00:00:03', extra: [[224, Buffer.from('private')]] });
    const buf = encodePacket(p);
    expect(buf.length).toBe(300);
    const r = decodePacket(buf);
    expect(r.ok && r.packet.options.get(224)?.toString()).toBe('private');
  });

  it('drops options that do not fit the client maximum message size instead of sending an oversize packet', () => {
    const p = request({ type: MessageType.OFFER, mac: '02:00:00:00:00:04', extra: [[224, Buffer.alloc(400)]] });
    expect(encodePacket(p, 576).length).toBeLessThanOrEqual(576 - 28);
    expect(encodePacket(p, 1500).length).toBeGreaterThan(576);
  });

  it('rejects with a reason: short packets, missing cookie, bad op, overrunning option lengths', () => {
    const good = readHexFixture('udhcpc-discover.hex');
    expect(decodePacket(good.subarray(0, 100))).toMatchObject({ ok: false, error: expect.stringMatching(/shorter/) });
    const noCookie = Buffer.from(good);
    noCookie.writeUInt32BE(0, 236);
    expect(decodePacket(noCookie)).toMatchObject({ ok: false, error: expect.stringMatching(/cookie/) });
    const badOp = Buffer.from(good);
    badOp[0] = 9;
    expect(decodePacket(badOp)).toMatchObject({ ok: false, error: expect.stringMatching(/op/) });
    const overrun = Buffer.from(good.subarray(0, MIN_PACKET + 3));
    overrun[MIN_PACKET] = 60;
    overrun[MIN_PACKET + 1] = 200;
    expect(decodePacket(overrun)).toMatchObject({ ok: false, error: expect.stringMatching(/overruns/) });
  });

  it('formats chaddr as a lower-case MAC', () => {
    expect(macOf(request({ type: 1, mac: '52:54:00:AB:CD:EF' }))).toBe('52:54:00:ab:cd:ef');
  });
});

describe('fuzzing the decoder: no exception escapes, no hang', () => {
  const seeds = fixtures.map(readHexFixture);
  const check = (buf: Buffer) => {
    const r = decodePacket(buf);
    if (r.ok) {
      classify(r.packet); // classification of whatever decoded must not throw either
      encodePacket(r.packet, 1500);
    } else expect(typeof r.error).toBe('string');
  };

  it('random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 0, maxLength: 1500 }), (a) => check(Buffer.from(a))), { numRuns: 2000 });
  });

  it('truncated real packets', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: seeds.length - 1 }), fc.nat(), (i, n) => {
        const s = seeds[i]!;
        check(s.subarray(0, n % (s.length + 1)));
      }),
      { numRuns: 2000 },
    );
  });

  it('real packets with corrupted bytes in the option area (bad lengths, overload values, option overflow)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: seeds.length - 1 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 12 }),
        (i, edits) => {
          const s = Buffer.from(seeds[i]!);
          for (const [pos, val] of edits) s[MIN_PACKET + (pos % (s.length - MIN_PACKET))] = val;
          check(s);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('valid header followed by random options, including 52 overload into random file/sname bytes', () => {
    const head = seeds[0]!.subarray(0, MIN_PACKET);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), fc.uint8Array({ minLength: 192, maxLength: 192 }), fc.integer({ min: 0, max: 4 }), (opts, fields, ov) => {
        const buf = Buffer.concat([head, Buffer.from([52, 1, ov]), Buffer.from(opts)]);
        Buffer.from(fields).copy(buf, 44);
        check(buf);
      }),
      { numRuns: 2000 },
    );
  });
});
