// UEFI HTTP boot for real (issue 19 item 2): OVMF (Debian's, with its PXE switched off so the "UEFI HTTPv4"
// boot entry runs) against our DHCP server, in full mode and in proxy mode beside dnsmasq. The firmware must
// take our offer (option 60 HTTPClient + the URL), fetch ipxe.efi over HTTP, and the iPXE it starts must reach
// /boot.ipxe. TFTP runs on the same address and must see no request at all: the binary came over HTTP.
// test/support/dhcp/ovmf.ts builds the namespaces; QEMU runs under TCG (no KVM here, FACTS.md).
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { requireCommand, requireFiles } from '../../test/harness/require.ts';
import { type OvmfBoot, startOvmfBoot } from '../../test/support/dhcp/ovmf.ts';

let vm: OvmfBoot | undefined;
afterEach(async () => {
  await vm?.cleanup();
  vm = undefined;
});

function explain(v: OvmfBoot) {
  return (err: Error): never => {
    let serial = '';
    try {
      serial = readFileSync(v.serialLog, 'latin1').replace(/\x1b\[[0-9;=]*[A-Za-z]/g, '').slice(-1500);
    } catch {}
    throw new Error(`${err.message}\nfiles:\n${v.files.lines.join('\n')}\ndhcp:\n${v.dhcp.lines.slice(-20).join('\n')}\nserial:\n${serial}`);
  };
}

describe('OVMF UEFI HTTP boot against the server', () => {
  const before = () => {
    requireCommand('qemu-system-x86_64', 'qemu-system-x86');
    requireFiles('apt-get install ovmf ipxe (deps/dhcp.txt)', '/usr/share/ovmf/OVMF.fd', '/usr/lib/ipxe/ipxe.efi');
  };

  it('full mode: address + URL from us, ipxe.efi over HTTP (HEAD then GET, no TFTP), iPXE reaches /boot.ipxe', { timeout: 240_000 }, async () => {
    before();
    const v = (vm = await startOvmfBoot({ mode: 'full', boot: 'http' }));
    const t = await v.timings(200_000).catch(explain(v));
    expect(v.files.lines).toContain('HEAD /ipxe.efi');
    expect(v.files.lines.some((l) => /^SENT \/ipxe\.efi \d+ /.test(l))).toBe(true);
    expect(v.files.lines.filter((l) => /^TFTP (start|done) /.test(l))).toEqual([]);
    expect(v.files.lines.indexOf('GET /boot.ipxe')).toBeGreaterThan(v.files.lines.indexOf('GET /ipxe.efi'));
    // the firmware bound the address we offered; then iPXE (a new DHCP client) came back for the script
    expect(v.dhcp.lines.some((l) => l.includes('"lease bound"') && l.includes('52:54:00:bf:00:19'))).toBe(true);
    expect(t.firstOffer).toBeLessThan(t.binaryFetched);
    expect(t.binaryFetched).toBeLessThan(t.bootScript);
    console.log(`OVMF HTTP boot, full mode: offer ${t.firstOffer} ms, ipxe.efi fetched ${t.binaryFetched} ms, /boot.ipxe ${t.bootScript} ms after power-on`);
  });

  // Proxy mode is proven up to the firmware's download: OVMF combines dnsmasq's address with our proxy offer's URL
  // and fetches ipxe.efi over HTTP. The chained iPXE 1.0.0 (Debian's, 2019) then retries its proxyDHCP request to
  // port 4011 without taking our unicast ACK (seen in this test; the same happens after PXE, so it is not part of
  // HTTP boot) — followed up separately, hence no /boot.ipxe assertion here.
  it('proxy mode beside dnsmasq: dnsmasq gives the address, our proxy offer the URL; ipxe.efi over HTTP, no TFTP', { timeout: 240_000 }, async () => {
    before();
    requireCommand('dnsmasq', 'dnsmasq-base');
    const v = (vm = await startOvmfBoot({ mode: 'proxy', boot: 'http' }));
    const t = await v.timings(200_000, 'binary').catch(explain(v));
    expect(v.dhcp.lines.some((l) => l.includes('"proxy DHCPOFFER"') && l.includes('"file":"http://10.71.0.1:8080/ipxe.efi"'))).toBe(true);
    // the firmware's REQUEST went to dnsmasq, not to us
    expect(v.dhcp.lines.some((l) => l.includes('"request for another server"'))).toBe(true);
    expect(v.dnsmasq!.lines.some((l) => /DHCPACK\(\S+\) 10\.71\.0\.1\d\d 52:54:00:bf:00:19/.test(l))).toBe(true);
    expect(v.files.lines).toContain('HEAD /ipxe.efi');
    expect(v.files.lines.some((l) => /^SENT \/ipxe\.efi \d+ /.test(l))).toBe(true);
    expect(v.files.lines.filter((l) => /^TFTP (start|done) /.test(l))).toEqual([]);
    console.log(`OVMF HTTP boot, proxy mode: offer ${t.firstOffer} ms, ipxe.efi fetched ${t.binaryFetched} ms after power-on`);
  });
});
