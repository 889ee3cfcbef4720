// Listen and client addresses for IPv4 and IPv6 (address.ts), and the errors `tftp.address` gives for bad ones.
import { describe, expect, it } from 'vitest';
import { clientAddress, listenListProblems, listensOn, parseListenAddress, peerLabel, type ListenAddress } from './address.ts';
import { tftpConfigSchema } from './config.ts';

const parsed = (text: string): ListenAddress => {
  const r = parseListenAddress(text);
  if (!r.ok) throw new Error(r.reason);
  return r.value;
};

describe('parseListenAddress', () => {
  const good: [string, string, ListenAddress][] = [
    ['the IPv4 wildcard (the default)', '0.0.0.0', { address: '0.0.0.0', family: 4, wildcard: true }],
    ['an IPv4 address', '10.20.0.1', { address: '10.20.0.1', family: 4, wildcard: false }],
    ['the IPv6 wildcard', '::', { address: '::', family: 6, wildcard: true }],
    ['the IPv6 wildcard written out', '0:0:0:0:0:0:0:0', { address: '::', family: 6, wildcard: true }],
    ['IPv6 loopback', '::1', { address: '::1', family: 6, wildcard: false }],
    ['a ULA, upper case and uncompressed, made canonical (RFC 5952)', 'FD5B:0:0:20:0:0:0:1', { address: 'fd5b:0:0:20::1', family: 6, wildcard: false }],
  ];
  for (const [name, text, want] of good) it(`takes ${name}: ${text}`, () => expect(parseListenAddress(text)).toEqual({ ok: true, value: want }));

  const bad: [string, string, RegExp][] = [
    ['a zone id', 'fe80::1%eth0', /zone id: not supported/],
    ['a zone id on a global address', 'fd5b::1%eth1', /zone id/],
    ['a link-local address without a zone (the kernel answers EINVAL)', 'fe80::1', /link-local \(fe80::\/10\), which needs a zone id/],
    ['a v4-mapped address', '::ffff:10.20.0.1', /IPv4 address mapped into IPv6: write the IPv4 address itself/],
    ['a multicast address', 'ff02::1:2', /multicast/],
    ['brackets', '[fd5b::1]', /not an IPv4 or IPv6 address \(write it without brackets\)/],
    ['a prefix', 'fd5b::1/64', /an address, not a prefix/],
    ['a hostname (its family is unknown)', 'localhost', /"localhost" is not an IPv4 or IPv6 address/],
    ['an IPv4 octet over 255', '10.0.0.256', /not an IPv4 or IPv6 address/],
    ['the empty string', '', /not an IPv4 or IPv6 address/],
  ];
  for (const [name, text, want] of bad) {
    it(`refuses ${name}: ${JSON.stringify(text)}`, () => {
      const r = parseListenAddress(text);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.reason).toMatch(want);
    });
  }
});

describe('listenListProblems', () => {
  const cases: [string, string[], string[]][] = [
    ['dual stack on both wildcards', ['0.0.0.0', '::'], []],
    ['one address of each family', ['10.20.0.1', 'fd5b:0:0:20::1'], []],
    ['two addresses of one family', ['10.20.0.1', '10.30.0.1'], []],
    ['the same address twice, written two ways', ['fd5b::1', 'FD5B:0::1'], ['fd5b::1 is listed twice']],
    ['a wildcard beside an address of its family', ['::', 'fd5b::1'], [':: already covers every IPv6 address: list either it or specific IPv6 addresses, not both']],
    ['a wildcard beside an address of the other family', ['0.0.0.0', 'fd5b::1'], []],
  ];
  for (const [name, list, want] of cases) it(name, () => expect(listenListProblems(list.map(parsed))).toEqual(want));
});

describe('client addresses in logs', () => {
  it('folds a v4-mapped client into plain IPv4, and leaves the rest alone', () => {
    expect(clientAddress('::ffff:10.20.0.7')).toBe('10.20.0.7');
    expect(clientAddress('::FFFF:10.20.0.7')).toBe('10.20.0.7');
    expect(clientAddress('10.20.0.7')).toBe('10.20.0.7');
    expect(clientAddress('fd5b::7')).toBe('fd5b::7');
    expect(clientAddress('::ffff:999.1.1.1')).toBe('::ffff:999.1.1.1'); // not an IPv4 address inside: not folded
  });

  it('writes IPv6 peers in brackets (RFC 5952 §6) and a v4-mapped peer as IPv4', () => {
    expect(peerLabel('10.20.0.7', 2000)).toBe('10.20.0.7:2000');
    expect(peerLabel('::ffff:10.20.0.7', 2000)).toBe('10.20.0.7:2000');
    expect(peerLabel('fd5b::7', 2000)).toBe('[fd5b::7]:2000');
    expect(peerLabel('fe80::7%eth1', 2000)).toBe('[fe80::7%eth1]:2000'); // Node reports a link-local sender with its zone
  });
});

describe('listensOn (main: does our TFTP serve the tftp:// URL DHCPv6 hands out?)', () => {
  const on = (list: string[], host: string) => listensOn(list.map(parsed), host);
  it('a wildcard covers every address of its family only', () => {
    expect(on(['::'], 'fd5b::1')).toBe(true);
    expect(on(['0.0.0.0'], 'fd5b::1')).toBe(false);
  });
  it('a specific address covers itself, however it is written, and nothing else', () => {
    expect(on(['fd5b:0:0:20::1'], 'fd5b:0000:0:20:0::1')).toBe(true);
    expect(on(['fd5b:0:0:20::1'], 'FD5B::20:0:0:1')).toBe(false); // fd5b:0:0:0:20:0:0:1: the zero run is elsewhere
    expect(on(['10.20.0.1', 'fd5b::2'], 'fd5b::1')).toBe(false);
  });
});

describe('tftp.address in the config', () => {
  const problems = (address: unknown) => {
    const r = tftpConfigSchema.safeParse({ address });
    return r.success ? [] : r.error.issues.map((i) => `${['address', ...i.path.slice(1)].join('.')}: ${i.message}`);
  };

  it('defaults to 0.0.0.0 as before (IPv4 only)', () => {
    expect(tftpConfigSchema.parse({}).address).toBe('0.0.0.0');
  });

  it('takes one address of either family, or a list', () => {
    expect(tftpConfigSchema.parse({ address: '10.20.0.1' }).address).toBe('10.20.0.1');
    expect(tftpConfigSchema.parse({ address: 'fd5b::1' }).address).toBe('fd5b::1');
    expect(tftpConfigSchema.parse({ address: ['0.0.0.0', '::'] }).address).toEqual(['0.0.0.0', '::']);
  });

  it('names the bad entry of a list and why, not a bare "Invalid input"', () => {
    expect(problems(['10.20.0.1', 'fe80::1%eth1'])).toEqual([
      `address.1: "fe80::1%eth1" has a zone id: not supported (a link-local address needs one); listen on '::' or on the interface's global or ULA address`,
    ]);
    expect(problems('boot.example')).toEqual(['address: "boot.example" is not an IPv4 or IPv6 address: a listen address must be one, like 10.20.0.1, 0.0.0.0, fd5b::1 or ::']);
    expect(problems([])).toEqual(['address: give at least one address']);
    expect(problems(['::', '::1'])).toEqual(['address: :: already covers every IPv6 address: list either it or specific IPv6 addresses, not both']);
  });
});
