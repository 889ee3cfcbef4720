# Boot storm (issue 15).
# `make bench-api`: the agent API's hot paths over HTTP — heartbeats written one by one against coalesced
# (fleet.heartbeat.flushSeconds), /ipxe/<uuid> against /boot.ipxe — on PGlite and on a real PostgreSQL, in the same
# run. API_BENCH_ARGS e.g. "--nodes 300 --concurrency 32 --requests 4000 --rounds 3".
# `make storm N=1000`: N simulated machines from their PXE ROMs through the whole stack (DHCP, TFTP, iPXE scripts,
# stage-1 and compute images, registration, installed, heartbeats) against the server in its own network namespace,
# and the byte bound of this machine measured in the same run (bench/storm/run.ts, BENCHMARKS.md "Boot storm").
# Needs root (network namespaces). STORM_ARGS e.g. "--concurrency 100 --db pg --store s3 --images DIR --publish".
# Not part of `make test` or `make bench`: it moves ~150 MB per node (150 GB for N=1000) twice.
# `make bench-fleet` (issue 15 item 5): 10,000 nodes with interfaces, facts and events; the node list (first, deep,
# filtered, default page) and the dashboard's fleet page over HTTP against /boot.ipxe, p99 against 200 ms, and the
# server's memory per 1,000 nodes, on PGlite and PostgreSQL (bench/api/fleet-list.ts; ~1-2 min).
# FLEET_BENCH_ARGS e.g. "--nodes 10000 --requests 100 --concurrency 1 --only pglite".
.PHONY: bench-api bench-fleet storm
N ?= 1000

bench-api: deps
	node --import tsx bench/api/bench.ts $(API_BENCH_ARGS)

bench-fleet: deps
	node --import tsx bench/api/fleet-list.ts $(FLEET_BENCH_ARGS)

storm: deps
	node --import tsx bench/storm/run.ts --nodes $(N) $(STORM_ARGS)

bench: bench-api bench-fleet
