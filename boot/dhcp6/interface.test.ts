// interfaceState (boot/dhcp6/server.ts): what the DHCPv6 server checks of its interface before it starts, with the
// interface list and sysfs handed in. A link without carrier is served (its MAC from sysfs), not refused; the real
// kernel case is in server.netns.test.ts.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type os from 'node:os';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { interfaceState } from './server.ts';

const sysfs = mkdtempSync(join(tmpdir(), 'bf6-sysfs-'));
mkdirSync(join(sysfs, 'eth9'));
writeFileSync(join(sysfs, 'eth9', 'address'), '52:54:00:AA:BB:CC\n');
mkdirSync(join(sysfs, 'tun0'));
writeFileSync(join(sysfs, 'tun0', 'address'), '\n');
afterAll(() => rmSync(sysfs, { recursive: true, force: true }));

const v6 = (address: string, mac = '52:54:00:aa:bb:cc'): os.NetworkInterfaceInfo => ({ address, netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac, internal: false, cidr: `${address}/64`, scopeid: 0 });
const listing = (m: Record<string, os.NetworkInterfaceInfo[]>) => (() => m) as typeof os.networkInterfaces;

describe('the DHCPv6 server’s interface check', () => {
  it('an interface that is up with the server address: its MAC', () => {
    expect(interfaceState('eth9', 'fd00:77::1', { sysfs, list: listing({ eth9: [v6('fd00:77::1')] }) })).toEqual({ mac: '52:54:00:aa:bb:cc' });
  });
  it('up without the server address: the problem names what it holds', () => {
    expect(interfaceState('eth9', 'fd00:77::1', { sysfs, list: listing({ eth9: [v6('fd00:78::1')] }) })).toEqual({ problem: 'interface eth9 does not hold fd00:77::1 (it has fd00:78::1)' });
  });
  it('present but without carrier (left out of the list): served, its MAC read from sysfs in lower case', () => {
    expect(interfaceState('eth9', 'fd00:77::1', { sysfs, list: listing({}) })).toEqual({ mac: '52:54:00:aa:bb:cc', noCarrier: true });
  });
  it('absent: there is no interface; a name that is not an interface name is never looked up as a path', () => {
    expect(interfaceState('eth7', 'fd00:77::1', { sysfs, list: listing({}) })).toEqual({ problem: 'there is no interface eth7' });
    expect(interfaceState('../eth9', 'fd00:77::1', { sysfs, list: listing({}) })).toEqual({ problem: 'there is no interface ../eth9' });
  });
  it('without carrier and without an Ethernet address (a tunnel): refused, naming the file', () => {
    expect(interfaceState('tun0', 'fd00:77::1', { sysfs, list: listing({}) })).toEqual({ problem: `interface tun0 has no carrier and no Ethernet address in ${join(sysfs, 'tun0', 'address')}` });
  });
});
