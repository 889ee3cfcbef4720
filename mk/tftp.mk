# boot/tftp: throughput against tftpd-hpa and dnsmasq (see bench/tftp/bench.ts, BENCHMARKS.md).
# Its tests (boot/tftp/*.test.ts) run under plain `npx vitest run`, so nothing is added to test-extra.
.PHONY: bench-tftp
bench: bench-tftp

bench-tftp: deps
	npx tsx bench/tftp/bench.ts
