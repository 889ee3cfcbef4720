# `make bench-uefi-boot` (issue 19 item 2): UEFI PXE (TFTP) against UEFI HTTP boot, the same OVMF VM to bootfarm's
# DHCP and TFTP, timed from power-on to /boot.ipxe (bench/boot/uefi-paths.ts; BENCHMARKS.md "UEFI PXE vs UEFI HTTP
# boot"). Runs as root (network namespaces, a tap). Not part of `make bench`: six TCG boots take longer than the
# ~3 minutes a bench prerequisite may. UEFI_BOOT_BENCH_ARGS e.g. "--runs 5 --ra" (radvd on the link: iPXE skips
# its ~16 s wait for IPv6), "--show-serial".
.PHONY: bench-uefi-boot
bench-uefi-boot: deps
	node --import tsx bench/boot/uefi-paths.ts $(UEFI_BOOT_BENCH_ARGS)
