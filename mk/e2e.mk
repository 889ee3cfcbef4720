# The e2e test rack (issue 8): QEMU nodes in a network namespace against the real server. Runs under its own
# vitest config (vitest.e2e.config.ts) because the default `vitest run` excludes test/e2e/**.
#   make e2e                 plumbing proof, every rack scenario and the OS image boot test (images/boot.e2e.test.ts);
#                            a missing piece (Debian package, build/images) fails its suite, naming it — never a skip
#   make e2e-plumbing        the plumbing proof only (~40 s)
#   make bench-e2e           boot timings: with/without the router advertisement (BENCHMARKS.md)
# BFE2E_KEEP=1 keeps the rack's temp dir (serial logs, server log, configs) for a look after a failure.
.PHONY: e2e e2e-plumbing bench-e2e

# the scenarios boot build/images (and the Secure Boot node Debian's signed loaders, build/secureboot): build them
# first (a no-op when the inputs did not change)
e2e: deps images secureboot
	npx vitest run -c vitest.e2e.config.ts $(VITEST_ARGS)

e2e-plumbing: deps images
	npx vitest run -c vitest.e2e.config.ts test/e2e/plumbing.e2e.test.ts

bench-e2e: deps
	node --import tsx test/e2e/bench.ts

test-extra: e2e
