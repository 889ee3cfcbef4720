# The HA rack (issue 14, test/e2e/ha/): three bootfarm replicas behind HAProxy, one PostgreSQL, one Ceph RGW, two
# QEMU nodes and 200 simulated nodes (test/support/sim/), with the leader killed, a replica paused and the new
# leader cut off from PostgreSQL during the boot. ~10 minutes on two cores; prints the measured failover times.
# Its own vitest config (vitest.ha.config.ts): `make e2e` does not run it.
# Not yet a prerequisite of test-extra: the last run (2026-12-02) brought all 202 nodes to active with none failed but
# lost a replica to the postgres.js crash now patched at install (packaging/patches/apply.cjs); it has not run since
# (docs/ha.md, "Status").
# Add `test-extra: e2e-ha` here once it is green three runs in a row.
# BFE2E_KEEP=1 keeps the rack's temp dir (replica logs, haproxy.log, sim.log).
.PHONY: e2e-ha

e2e-ha: deps images
	npx vitest run -c vitest.ha.config.ts $(VITEST_ARGS)

