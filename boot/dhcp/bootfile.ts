// Which file a booting machine is told to load (after tinkerbell/smee internal/dhcp/dhcp.go Bootfile).
import { Arch, type ClientInfo } from './classify.ts';

export interface BootUrls {
  /** base of the boot HTTP server, e.g. http://10.0.0.1:8080 (no trailing slash) */
  httpBase: string;
  /** TFTP name of the BIOS iPXE (PXE ROM → UNDI driver) */
  bios: string;
  /** TFTP name of the x64 UEFI iPXE; snponly.efi uses the firmware's NIC driver, ipxe.efi its own */
  uefi: string;
  /** file served over HTTP to UEFI HTTP boot clients */
  uefiHttp: string;
  /** path of the iPXE script on the HTTP server */
  script: string;
  /** the signed shim (shim-signed's shimx64.efi.signed) for UEFI nodes whose profile says `bootloader: shim-grub`,
   * over TFTP or HTTP; shim then loads grubx64.efi from the same place (docs/secure-boot.md) */
  secureBoot: string;
}

export const defaultBootUrls = (httpBase: string): BootUrls => ({
  httpBase: httpBase.replace(/\/+$/, ''),
  bios: 'undionly.kpxe',
  uefi: 'snponly.efi',
  uefiHttp: 'ipxe.efi',
  script: 'boot.ipxe',
  secureBoot: 'shimx64.efi',
});

export interface Bootfile {
  /** goes in the `file` field (and option 67 when asked for) */
  file: string;
  /** 'tftp': next-server (siaddr) is needed; 'http': file is a URL */
  via: 'tftp' | 'http';
  /** UEFI HTTP boot only accepts an offer that echoes option 60 "HTTPClient" (UEFI 2.5+ §24.7) */
  vendorClass?: 'HTTPClient';
}

/** Which of the boot files (the keys of BootUrls) a client gets, and how; the URL or TFTP name is the protocol's. */
export interface BootDecision {
  file: 'script' | 'bios' | 'uefi' | 'uefiHttp' | 'secureBoot';
  via: 'tftp' | 'http';
  /** UEFI HTTP boot only accepts an offer that carries vendor class "HTTPClient" (UEFI 2.5+ §24.7) */
  vendorClass?: 'HTTPClient';
}

/** What decideBootfile needs to know of a client; DHCPv6 (boot/dhcp6/bootfile.ts) says it from option 61 alone. */
export type BootClient = Pick<ClientInfo, 'isIpxe' | 'isHttpClient' | 'isPxe' | 'arch'>;

/**
 * The decision DHCPv4 (chooseBootfile) and DHCPv6 (boot/dhcp6 chooseBootUrl6) share, so that neither can hand
 * a shim-grub node iPXE, nor iPXE its own binary, where the other does not. The order of these cases is the whole point:
 * 1. iPXE first. QEMU's ROM iPXE and an undionly.kpxe we chained send identical DHCP requests, and both
 *    also say PXEClient and arch 0. Were the arch checked first, iPXE would be handed undionly.kpxe
 *    again and chain-load itself forever; the user class "iPXE" is what breaks the loop.
 * 2. UEFI HTTP boot before plain UEFI: such firmware sends HTTPClient and cannot use TFTP; it accepts only an
 *    offer that says HTTPClient back and carries a URL (UEFI 2.5+ §24.7.2). x64 (arch 16) gets the x64 iPXE by
 *    URL; an HTTP client of another arch (15 = ia32, 19 = arm64, …) gets nothing, as PXE arch 6 does: we ship
 *    only x64 iPXE, and the wrong binary would fail on the node where nobody sees why.
 * 3. x64 UEFI PXE (arch 7, 9) → the EFI iPXE over TFTP.
 * 4. BIOS PXE (arch 0) → undionly.kpxe over TFTP.
 * Anything else (ia32 EFI, ARM, non-PXE clients) gets no bootfile. The per-node decision (known, allowed to
 * boot) is the responder's and the same for every kind of client.
 * `loader` is the node's profile's boot loader: `shim-grub` swaps the x64 UEFI iPXE (cases 2 and 3) for the signed
 * shim, which Secure Boot firmware will run; BIOS has no Secure Boot, and an unknown node (no profile yet) gets iPXE.
 */
export function decideBootfile(client: BootClient, loader: 'ipxe' | 'shim-grub' = 'ipxe'): BootDecision | null {
  const shim = loader === 'shim-grub';
  switch (true) {
    case client.isIpxe:
      return { file: 'script', via: 'http' };
    case client.isHttpClient && client.arch === Arch.EFI_X64_HTTP:
      return { file: shim ? 'secureBoot' : 'uefiHttp', via: 'http', vendorClass: 'HTTPClient' };
    case client.isHttpClient:
      return null;
    case client.isPxe && (client.arch === Arch.EFI_X64 || client.arch === Arch.EFI_BC):
      return { file: shim ? 'secureBoot' : 'uefi', via: 'tftp' };
    case client.isPxe && (client.arch === Arch.BIOS || client.arch === undefined):
      // PXE 2.1 ROMs predating RFC 4578 send no option 93: they are BIOS
      return { file: 'bios', via: 'tftp' };
    default:
      return null;
  }
}

/** DHCPv4: the decision as the `file` field wants it, a URL for HTTP and a bare TFTP name (next-server says where). */
export function chooseBootfile(client: BootClient, urls: BootUrls, loader: 'ipxe' | 'shim-grub' = 'ipxe'): Bootfile | null {
  const d = decideBootfile(client, loader);
  if (!d) return null;
  return { file: d.via === 'http' ? `${urls.httpBase}/${urls[d.file]}` : urls[d.file], via: d.via, ...(d.vendorClass ? { vendorClass: d.vendorClass } : {}) };
}
