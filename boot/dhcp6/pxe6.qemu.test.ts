// UEFI PXE over IPv6 for real (issue 19 item 3): Debian's OVMF (2022.11, 4M code/vars) boots from the whole
// bootfarm server (`server/cli.ts serve` with dhcp6 enabled on the bridge and TFTP on fd5b:0:0:6::1) in a network
// namespace, under TCG:
//   power-on → "UEFI PXEv6" boot entry (IPv4 PXE switched off through fw_cfg; test/support/dhcp/pxe6.ts says why)
//   → DHCPv6 Solicit with option 61 = 7 (EFI x64) → our Advertise/Reply with option 59 tftp://[fd5b:0:0:6::1]/snponly.efi
//   → TFTP over IPv6 from bootfarm's server (a tsize probe, then the whole file) → iPXE's banner on the serial console.
// The DHCPv6 exchange and the TFTP bytes are read from a capture on the bridge (tcpdump), not from the server's word.
// Without a router advertisement on the link the firmware boots anyway (after EDK2's 10 s wait for a gateway);
// Debian's 2019 iPXE then stops (it waits for an RA before it asks DHCPv6). With radvd (Managed flag, a default
// router) the firmware goes straight on, and iPXE asks again as "iPXE" and fetches /boot.ipxe and /ipxe/<uuid> over
// IPv6 from the same server. Times are printed; README "Firmware and boot paths" and docs/FACTS.md keep them.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { requireCommand, requireFiles } from '../../test/harness/require.ts';
import { tftpFile } from '../../test/support/dhcp/pcap.ts';
import { OVMF_CODE, OVMF_VARS, type Pxe6Boot, SNPONLY, startPxe6Boot } from '../../test/support/dhcp/pxe6.ts';
import { Opt6Extra, rawOption, userClasses } from './bootfile.ts';
import { type Dhcp6ClientMessage, MsgType, decodeDhcp6, findOption } from './packet.ts';

let vm: Pxe6Boot | undefined;
afterEach(async () => {
  await vm?.cleanup();
  vm = undefined;
});

const BANNER = /iPXE \d+\.\d+\.\d+\S* -- Open Source Network Boot Firmware/;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function explain(v: Pxe6Boot) {
  return (err: Error): never => {
    const dhcp6 = v.serverLog().filter((l) => l['component'] === 'dhcp6' || l['component'] === 'tftp' || l['msg'] === 'request');
    const exchange = dhcp6Messages(v).map((m) => `${m.at} ms ${m.src} → ${m.dst} type ${m.msg.type}`);
    throw new Error(
      `${err.message}\nserver (dhcp6, tftp, http):\n${dhcp6.slice(-25).map((l) => JSON.stringify(l)).join('\n')}\nserver (last lines):\n${v.server.lines.slice(-8).join('\n')}\n` +
        `DHCPv6 on the bridge:\n${exchange.join('\n')}\nradvd:\n${v.radvd?.lines.slice(-5).join('\n') ?? '(not run)'}\nserial:\n${v.serial().slice(-1500)}`,
    );
  };
}

/** DHCPv6 client messages seen on the bridge (ports 546/547), decoded, with ms after power-on */
function dhcp6Messages(v: Pxe6Boot): { at: number; src: string; dst: string; msg: Dhcp6ClientMessage }[] {
  return v.packets().flatMap((p) => {
    if (![546, 547].includes(p.dport)) return [];
    const d = decodeDhcp6(p.payload);
    return d.ok && !('hopCount' in d.message) ? [{ at: Math.round(p.at - v.poweredOn), src: p.src, dst: p.dst, msg: d.message }] : [];
  });
}

/** option 15 (RFC 8415 §21.15): iPXE sends "iPXE", the firmware nothing */
const classes = (m: Dhcp6ClientMessage) => userClasses(rawOption(m, Opt6Extra.USER_CLASS));

const VM_LINK_LOCAL = 'fe80::5054:ff:febf:607'; // EUI-64 of 52:54:00:bf:06:07 (RFC 4291 appendix A)

/**
 * The firmware's part, the same in both tests: a Solicit from the VM with arch 7 that asks for option 59; our answers
 * to it name snponly.efi over TFTP on the server's IPv6 address; the whole file went to the VM's leased address over
 * TFTP (rebuilt from the capture, byte for byte Debian's), and bootfarm counted that transfer as completed.
 */
async function firmwarePart(v: Pxe6Boot) {
  const url = `tftp://[${v.net.server}]/snponly.efi`;
  const done = await v.waitServer((l) => l['msg'] === 'tftp: transfer complete' && l['file'] === 'snponly.efi', 150_000);
  const banner = await v.waitSerial(BANNER, 60_000);

  const msgs = dhcp6Messages(v);
  // with an RA's Managed flag, OVMF's IPv6 driver also asks DHCPv6 for its own address: PXE's Solicit is the one
  // naming an architecture
  const solicit = msgs.find((m) => m.msg.type === MsgType.SOLICIT && m.src === VM_LINK_LOCAL && findOption(m.msg.options, 'clientArch'));
  expect(solicit, 'a Solicit from the VM with option 61').toBeDefined();
  expect(findOption(solicit!.msg.options, 'clientArch')?.arches).toEqual([7]);
  expect(findOption(solicit!.msg.options, 'oro')?.codes).toContain(59);
  // the firmware is not iPXE: no user class
  expect(classes(solicit!.msg)).toEqual([]);
  const answers = msgs.filter((m) => m.msg.transactionId === solicit!.msg.transactionId && m.dst === VM_LINK_LOCAL);
  expect(answers.map((m) => m.msg.type)).toEqual([MsgType.ADVERTISE]);
  expect(findOption(answers[0]!.msg.options, 'bootfileUrl')?.url).toBe(url);
  // then its Request for the same IA, bound with the same URL
  const iaid = findOption(solicit!.msg.options, 'iaNa')?.iaid;
  const request = msgs.find((m) => m.msg.type === MsgType.REQUEST && m.src === VM_LINK_LOCAL && findOption(m.msg.options, 'iaNa')?.iaid === iaid);
  const reply = msgs.find((m) => m.msg.type === MsgType.REPLY && m.msg.transactionId === request?.msg.transactionId);
  expect(findOption(reply!.msg.options, 'bootfileUrl')?.url).toBe(url);
  const leased = findOption(findOption(reply!.msg.options, 'iaNa')!.options, 'iaAddr')!.address;
  expect(leased).toMatch(/^fd5b:0:0:6::1[0-9a-f]{2}$/);

  // TFTP: the completed transfer went to the leased address; the bytes on the wire are the file on disk
  const peer = /^\[(.+)\]:(\d+)$/.exec(String(done.line['peer']))!;
  expect(peer[1]).toBe(leased);
  const disk = readFileSync(SNPONLY);
  expect(done.line['bytes']).toBe(disk.length);
  const wire = tftpFile(v.packets(), v.net.server, { address: peer[1]!, port: Number(peer[2]) });
  expect(wire.length).toBe(disk.length);
  expect(sha256(wire)).toBe(sha256(disk));
  const metrics = v.get('/metrics');
  expect(metrics).toMatch(/^bootfarm_tftp_transfers_completed_total\{[^}]*\} 1$/m);
  // what the firmware printed: the address we leased and the file we named
  expect(v.serial()).toContain('NBP filename is snponly.efi');
  expect(v.serial()).toContain(`NBP filesize is ${disk.length} Bytes`);
  expect(v.serial()).toMatch(/Station IP address is FD5B:0:0:6:0:0:0:1[0-9A-F]{2}/);
  expect(v.serial()).toContain('UEFI PXEv6 (MAC:525400BF0607)');

  expect(solicit!.at).toBeLessThan(done.ms);
  expect(done.ms).toBeLessThan(banner);
  return { solicit: solicit!.at, tftpDone: done.ms, banner };
}

describe('OVMF UEFI PXE over IPv6 against the bootfarm server', () => {
  const before = () => {
    requireCommand('qemu-system-x86_64', 'qemu-system-x86');
    requireCommand('tcpdump', 'tcpdump');
    requireCommand('curl', 'curl');
    requireFiles('apt-get install ovmf ipxe (deps/dhcp.txt)', OVMF_CODE, OVMF_VARS, SNPONLY);
  };

  it('no router on the link: DHCPv6 (arch 7 → option 59 tftp://) and TFTP over IPv6 load snponly.efi; iPXE starts, then waits for an RA in vain', { timeout: 200_000 }, async () => {
    before();
    const v = (vm = await startPxe6Boot({ ra: false }));
    const t = await firmwarePart(v).catch(explain(v));
    // no gateway to find: EDK2 sat out its 10 s route-table wait between the Reply and TFTP
    expect(t.tftpDone - t.solicit).toBeGreaterThan(9_000);
    // Debian's iPXE (2019) does IPv6 configuration only after a router advertisement: it sends no Solicit of its own
    await v.waitSerial(/No configuration methods succeeded/, 60_000).catch(explain(v));
    expect(dhcp6Messages(v).filter((m) => m.msg.type === MsgType.SOLICIT && classes(m.msg).includes('iPXE'))).toEqual([]);
    console.log(`OVMF PXE over IPv6, no RA: Solicit ${t.solicit} ms, snponly.efi served ${t.tftpDone} ms, iPXE banner ${t.banner} ms after power-on`);
  });

  it('with radvd (Managed flag): the same firmware path, then iPXE asks DHCPv6 as "iPXE" and fetches /boot.ipxe and /ipxe/<uuid> over IPv6', { timeout: 200_000 }, async () => {
    before();
    requireCommand('radvd', 'radvd');
    const v = (vm = await startPxe6Boot({ ra: true }));
    const t = await firmwarePart(v).catch(explain(v));
    // the RA named a default router: no 10 s wait (measured ~1.3 s from Solicit to the whole file)
    expect(t.tftpDone - t.solicit).toBeLessThan(8_000);
    const script = await v.waitServer((l) => l['msg'] === 'request' && l['path'] === '/boot.ipxe', 90_000).catch(explain(v));
    await v.waitServer((l) => l['msg'] === 'request' && l['path'] === `/ipxe/${v.uuid}`, 30_000).catch(explain(v));
    expect(script.line['status']).toBe(200);
    // iPXE's own Solicit: user class "iPXE", answered with the script's URL (bootfile.ts: iPXE first, no chain loop)
    const ipxe = dhcp6Messages(v).find((m) => m.msg.type === MsgType.SOLICIT && classes(m.msg).includes('iPXE'));
    expect(ipxe, "iPXE's Solicit").toBeDefined();
    const urls = dhcp6Messages(v).filter((m) => m.msg.transactionId === ipxe!.msg.transactionId && m.dst === ipxe!.src).map((m) => findOption(m.msg.options, 'bootfileUrl')?.url);
    expect(urls).toContain(`http://[${v.net.server}]:8080/boot.ipxe`);
    expect(v.serial()).toContain(`http://[${v.net.server}]:8080/boot.ipxe... ok`);
    console.log(`OVMF PXE over IPv6 with RA: Solicit ${t.solicit} ms, snponly.efi served ${t.tftpDone} ms, iPXE banner ${t.banner} ms, /boot.ipxe ${script.ms} ms after power-on`);
  });
});
