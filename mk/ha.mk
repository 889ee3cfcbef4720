# The HA rack (issue 14, test/e2e/ha/): three bootfarm replicas behind HAProxy, one PostgreSQL, one Ceph RGW, two
# QEMU nodes and 200 simulated nodes (test/support/sim/), with the leader killed, a replica paused and the new
# leader cut off from PostgreSQL during the boot. ~10 minutes on two cores; prints the measured failover times.
# Its own vitest config (vitest.ha.config.ts): `make e2e` does not run it.
# Not yet a prerequisite of test-extra: it is red on a product bug it found (docs/ha.md "The HA rack"): two copies
# of one profile request each issue a node credential, the later one wins, and the agent that kept the earlier one
# is refused at `installed`. Add `test-extra: e2e-ha` here once that is fixed.
# BFE2E_KEEP=1 keeps the rack's temp dir (replica logs, haproxy.log, sim.log).
.PHONY: e2e-ha

e2e-ha: deps images
	npx vitest run -c vitest.ha.config.ts $(VITEST_ARGS)

