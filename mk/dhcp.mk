# DHCP server (issue 3, DHCP part). Its tests run under plain `npx vitest run` (as root: they create
# network namespaces; udhcpc, dhclient and dhcrelay come from deps/dhcp.txt), so nothing is added to
# test-extra. `make bench-dhcp` compares completed DORA exchanges per second with dnsmasq and kea.
.PHONY: test-dhcp bench-dhcp

test-dhcp: deps
	npx vitest run boot/dhcp server/store/leases.test.ts

# DHCP_BENCH_ARGS e.g. "--count 50000 --window 128 --rounds 5" or "--only bootfarm,kea"
bench-dhcp: deps
	node --import tsx bench/dhcp/bench.ts $(DHCP_BENCH_ARGS)

bench: bench-dhcp
