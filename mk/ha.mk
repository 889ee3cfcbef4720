# The HA rack (issue 14, test/e2e/ha/): three bootfarm replicas behind HAProxy, one PostgreSQL, one Ceph RGW, two
# QEMU nodes and 200 simulated nodes (test/support/sim/), with the leader killed, a replica paused and the new
# leader cut off from PostgreSQL during the boot. ~3 minutes when green on two cores; prints the measured failover times.
# Its own vitest config (vitest.ha.config.ts): `make e2e` does not run it; `make test` does (test-extra), since it
# was green three runs in a row on a still tree (2026-12-03 19:39–19:49, 3 min 19 s each; docs/ha.md, "Status").
# BFE2E_KEEP=1 keeps the rack's temp dir (replica logs, haproxy.log, sim.log).
.PHONY: e2e-ha

e2e-ha: deps images
	npx vitest run -c vitest.ha.config.ts $(VITEST_ARGS)

test-extra: e2e-ha
