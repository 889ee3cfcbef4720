// Cross-checks between boot protocols that main starts separately: each module validates its own section, but only
// here are both known. Warnings, not errors: another TFTP server (tftpd-hpa, dnsmasq) may serve that address.
import { listenAddresses, listensOn, parseListenAddress } from '../boot/tftp/index.ts';

interface Dhcp6Side {
  enabled: boolean;
  serverAddress: string;
  tftpBase?: string | undefined;
}

interface TftpSide {
  enabled: boolean;
  address: string | readonly string[];
  port: number;
}

/**
 * UEFI PXE over IPv6 loads by TFTP only: DHCPv6 hands it dhcp6.tftpBase, by default tftp://[serverAddress]. When
 * that URL names this host's serverAddress, our TFTP server should be listening there, or the firmware times out
 * (a minute or more per attempt) with nothing in our logs. A URL naming another host is not ours to check.
 */
export function dhcp6TftpWarning(dhcp6: Dhcp6Side | undefined, tftp: TftpSide | undefined): string | null {
  if (!dhcp6?.enabled) return null;
  const base = dhcp6.tftpBase ?? `tftp://[${dhcp6.serverAddress}]`;
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    return null; // dhcp6's own schema judges the URL
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const ours = parseListenAddress(dhcp6.serverAddress);
  // only a URL naming this host's serverAddress (however written) is ours to check
  if (!ours.ok || !listensOn([ours.value], host)) return null;
  const port = url.port === '' ? 69 : Number(url.port);
  const file = `${base.replace(/\/$/, '')}/…`;
  if (!tftp?.enabled) return `dhcp6 hands UEFI PXE over IPv6 ${file}, but bootfarm's TFTP server is off: enable it with tftp.address including '${host}' (or '::'), or point dhcp6.tftpBase at the TFTP server that serves it`;
  const list = listenAddresses(tftp.address);
  if (!listensOn(list, host)) return `dhcp6 hands UEFI PXE over IPv6 ${file}, but bootfarm's TFTP server listens on ${list.map((a) => a.address).join(', ')} only: add '${host}' (or '::') to tftp.address, or point dhcp6.tftpBase at the TFTP server that serves it`;
  if (port !== tftp.port) return `dhcp6 hands UEFI PXE over IPv6 ${file} (port ${port}), but bootfarm's TFTP server listens on port ${tftp.port}`;
  return null;
}
