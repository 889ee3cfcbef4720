// The one narrow seam between the boot protocols and "who is this machine?" (STYLE.md §1, after
// tinkerbell/smee's BackendReader). boot/ imports nothing from server/; server/ implements this.

/** What the boot server should hand a machine that asks by MAC (DHCP full mode). */
export interface DhcpHost {
  mac: string;
  /** fixed address reservation, if any */
  ipv4?: string;
  /** fixed IPv6 address reservation for DHCPv6 IA_NA, if any (RFC 5952 text) */
  ipv6?: string;
  hostname?: string;
  /** false: stay silent (e.g. retired / explicitly ignored machines) */
  allowBoot: boolean;
  /** the profile's boot loader (issue 19 item 1): a UEFI `shim-grub` node is handed shim, not iPXE; absent: ipxe */
  bootloader?: 'ipxe' | 'shim-grub';
}

export interface BootBackend {
  /** DHCP: reservation and boot permission for a MAC; null for a machine we do not know (an outcome, not an error). */
  dhcpHost(mac: string): Promise<DhcpHost | null>;
}

/** A backend that knows nobody: useful in tests and for proxy-only sites. */
export const EmptyBackend: BootBackend = {
  dhcpHost: async () => null,
};
