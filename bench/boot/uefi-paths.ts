// make bench-uefi-boot (issue 19 item 2): the same OVMF VM booted N times each way against bootfarm's DHCP server
// and its TFTP server, in alternation (pxe, http, pxe, …) because the machine is shared:
//   pxe:  OVMF's default order, "UEFI PXEv4": DHCPv4 arch 7 → ipxe.efi over bootfarm's TFTP → iPXE → GET /boot.ipxe
//   http: PXE off by fw_cfg, "UEFI HTTPv4": DHCPv4 arch 16 + HTTPClient → ipxe.efi over HTTP → iPXE → GET /boot.ipxe
// Both paths get the same file (ipxe.efi, 850 KB) so only the transport differs (test/support/dhcp/ovmf.ts sets
// bootfiles.uefi = bootfiles.uefiHttp = ipxe.efi; boot/dhcp/bootfile.ts takes any name for either). Same firmware
// (Debian's OVMF.fd), same NIC (virtio-net, no option ROM), same 256 MB, TCG (no KVM here).
// Times are ms from QEMU's start (power-on) to: our DHCP server logging its first DHCPOFFER; the boot file served
// whole (bootfarm's TFTP "transfer complete", or the HTTP server's response 'finish' after the body); the iPXE
// banner on the serial console (polled every 50 ms); the offer to iPXE's own DHCP (the second DHCPOFFER); iPXE's
// GET /boot.ipxe. The measurement stops at the iPXE
// script: no stage-1 kernel could be built (the Debian mirror was down), and what follows the script is the same
// for both paths anyway.
//   node --import tsx bench/boot/uefi-paths.ts [--runs 3] [--show-serial] [--ra]
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { requireCommand, requireFiles } from '../../test/harness/require.ts';
import { type OvmfBoot, startOvmfBoot } from '../../test/support/dhcp/ovmf.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, timeout: { type: 'string', default: '240' }, 'show-serial': { type: 'boolean', default: false }, ra: { type: 'boolean', default: false } } });
const runs = Number(values.runs);
const timeoutMs = Number(values.timeout) * 1000;
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a whole number ≥ 1, got ${values.runs}`);

requireCommand('qemu-system-x86_64', 'qemu-system-x86');
requireFiles('apt-get install ovmf ipxe (deps/dhcp.txt)', '/usr/share/ovmf/OVMF.fd', '/usr/lib/ipxe/ipxe.efi');

const BANNER = /iPXE \d+\.\d+\.\d+\S* -- Open Source Network Boot Firmware/;
const paths = ['pxe', 'http'] as const;
type Path = (typeof paths)[number];
interface Run {
  offer: number;
  served: number;
  banner: number;
  /** iPXE's own DHCP: the second DHCPOFFER (the firmware took the first) */
  ipxeOffer: number;
  script: number;
  /** how the boot file went out, from the serving process's own log */
  how: string;
}

// Ctrl-C or a kill mid-boot: the VM, the servers and the namespace go too
let current: OvmfBoot | undefined;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => void (current?.cleanup() ?? Promise.resolve()).finally(() => process.exit(130)));
}

const load = () => execFileSync('uptime', { encoding: 'utf8' }).trim().replace(/.*load average/, 'load average');

function serialText(v: OvmfBoot): string {
  try {
    return readFileSync(v.serialLog, 'latin1').replace(/\x1b\[[0-9;=?]*[A-Za-z]/g, '');
  } catch {
    return '';
  }
}

async function bootOnce(path: Path): Promise<Run> {
  const v = (current = await startOvmfBoot({ mode: 'full', boot: path, ra: values.ra }));
  const t0 = v.poweredOn;
  let offers = 0;
  const ipxeOffer = v.dhcp.waitFor((l) => l.includes('"DHCPOFFER"') && ++offers === 2, timeoutMs).then(() => Math.round(performance.now() - t0));
  ipxeOffer.catch(() => undefined);
  let banner = Number.NaN;
  const poll = setInterval(() => {
    if (Number.isNaN(banner) && BANNER.test(serialText(v))) banner = Math.round(performance.now() - t0);
  }, 50);
  try {
    const t = await v.timings(timeoutMs).catch((err: Error) => {
      throw new Error(`${path}: ${err.message}\nfiles:\n${v.files.lines.join('\n')}\ndhcp:\n${v.dhcp.lines.slice(-10).join('\n')}\nserial:\n${serialText(v).slice(-1500)}`);
    });
    if (Number.isNaN(banner) && BANNER.test(serialText(v))) banner = Math.round(performance.now() - t0);
    const tftp = v.files.lines.filter((l) => /^TFTP (start|done) /.test(l));
    const sent = v.files.lines.find((l) => l.startsWith('SENT /ipxe.efi'));
    // the two paths must really differ in transport, or the comparison is meaningless
    if (path === 'pxe' && !tftp.includes('TFTP done ipxe.efi')) throw new Error(`pxe run: ipxe.efi did not come over TFTP: ${v.files.lines.join(' | ')}`);
    if (path === 'http' && (tftp.length > 0 || !sent)) throw new Error(`http run: expected ipxe.efi over HTTP and no TFTP: ${v.files.lines.join(' | ')}`);
    if (values['show-serial']) console.log(`--- ${path}: serial console from the iPXE banner on\n${serialText(v).split(BANNER)[1]?.trim().slice(0, 1500)}\n---`);
    const second = await Promise.race([ipxeOffer, Promise.resolve(Number.NaN)]);
    return { offer: t.firstOffer, served: t.binaryFetched, banner, ipxeOffer: second, script: t.bootScript, how: path === 'pxe' ? 'TFTP done ipxe.efi' : sent! };
  } finally {
    clearInterval(poll);
    await v.cleanup();
    current = undefined;
  }
}

const median = (xs: number[]) => {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  return s.length % 2 ? s[(s.length - 1) >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const sec = (ms: number) => (Number.isNaN(ms) ? '   —  ' : `${(ms / 1000).toFixed(2).padStart(6)}`);

console.log(`UEFI PXE (TFTP) vs UEFI HTTP boot, OVMF ${statSync('/usr/share/ovmf/OVMF.fd').size} B, ipxe.efi ${statSync('/usr/lib/ipxe/ipxe.efi').size} B on both paths, ${runs} run(s) each, ${values.ra ? 'radvd on the link (prefix, router lifetime 0)' : 'no router advertisement on the link'}`);
console.log(`before: ${load()}`);
const results: Record<Path, Run[]> = { pxe: [], http: [] };
const failures: string[] = [];
for (let i = 0; i < runs; i++) {
  for (const path of paths) {
    try {
      const r = await bootOnce(path);
      results[path].push(r);
      console.log(`${path.padEnd(4)} run ${i + 1}: offer ${sec(r.offer)} s  file served ${sec(r.served)} s  iPXE banner ${sec(r.banner)} s  iPXE's offer ${sec(r.ipxeOffer)} s  /boot.ipxe ${sec(r.script)} s   (${r.how}; ${load()})`);
    } catch (err) {
      // one failed boot is reported, not fatal: the other runs still say something
      failures.push((err as Error).message);
      console.log(`${path.padEnd(4)} run ${i + 1}: FAILED ${(err as Error).message.split('\n')[0]}`);
    }
  }
}
console.log(`\nmedian (s from power-on)     offer  served  banner  iPXE offer  /boot.ipxe   n`);
for (const path of paths) {
  const rs = results[path];
  const m = (k: keyof Omit<Run, 'how'>) => sec(median(rs.map((r) => r[k])));
  console.log(`${path === 'pxe' ? 'UEFI PXE (TFTP)     ' : 'UEFI HTTP boot      '}        ${m('offer')} ${m('served')} ${m('banner')}     ${m('ipxeOffer')}     ${m('script')}   ${rs.length}`);
}
const ratio = median(results.http.map((r) => r.script)) / median(results.pxe.map((r) => r.script));
console.log(`HTTP/TFTP, time to /boot.ipxe (medians): ${Number.isNaN(ratio) ? '—' : ratio.toFixed(2)}`);
const fileTime = (rs: Run[]) => median(rs.map((r) => r.served - r.offer));
console.log(`offer → file served (medians): TFTP ${sec(fileTime(results.pxe))} s, HTTP ${sec(fileTime(results.http))} s`);
console.log(`after: ${load()}`);
if (failures.length) {
  console.error(`\n${failures.length} run(s) failed:\n${failures.join('\n\n')}`);
  process.exitCode = 1;
}
