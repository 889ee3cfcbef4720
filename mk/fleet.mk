# BMC control and fleet health / automatic rebuild (issue 6). Everything runs under plain `npx vitest run`
# (ipmi_sim, ipmitool and PostgreSQL come from deps/fleet.txt), so nothing is added to test-extra.
.PHONY: test-fleet

test-fleet: deps
	npx vitest run server/bmc server/fleet
