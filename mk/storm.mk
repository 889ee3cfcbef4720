# Boot storm (issue 15). `make bench-api`: the agent API's hot paths over HTTP — heartbeats written one by one
# against coalesced (fleet.heartbeat.flushSeconds), /ipxe/<uuid> against /boot.ipxe — on PGlite and on a real
# PostgreSQL, in the same run. API_BENCH_ARGS e.g. "--nodes 300 --concurrency 32 --requests 4000 --rounds 3".
.PHONY: bench-api

bench-api: deps
	node --import tsx bench/api/bench.ts $(API_BENCH_ARGS)

bench: bench-api
