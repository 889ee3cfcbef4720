# The release build (issue 17 item 1): the server, its CLI and boot/ compiled by tsc (tsconfig.build.json) to
# plain JavaScript in build/dist, which runs on Node 20 without tsx. The migrations are copied beside the compiled
# server/db (it finds them through import.meta.url). `npm pack` builds first (prepack) and packs build/dist.
#   make build        build/dist/server/cli.js (the `bootfarm` bin); a no-op when no source changed
#   make run          (Makefile) runs the build when one exists, rebuilding it first if a source is newer
DIST := build/dist
DIST_STAMP := $(DIST)/.built
DIST_SRC := $(shell find server boot \( -name '*.ts' -o -name '*.tsx' \) ! -name '*.test.ts' ! -name '*.test.tsx' 2>/dev/null) $(wildcard server/db/migrations/*.sql server/db/migrations/meta/*.json)

.PHONY: build build-clean

build: $(DIST_STAMP)

# The source's shebang runs tsx; the built CLI's runs plain node.
# Not on $(NPM_STAMP) (see mk/agent.mk); a fresh clone gets typescript from `make deps-npm` first.
$(DIST_STAMP): $(DIST_SRC) tsconfig.json tsconfig.build.json package.json | node_modules/.bin/tsc
	rm -rf $(DIST)
	node_modules/.bin/tsc -p tsconfig.build.json
	mkdir -p $(DIST)/server/db && cp -r server/db/migrations $(DIST)/server/db/
	sed -i '1s|^#!.*|#!/usr/bin/env node|' $(DIST)/server/cli.js && chmod 0755 $(DIST)/server/cli.js
	@touch $@

node_modules/.bin/tsc:
	$(MAKE) --no-print-directory deps-npm

build-clean:
	rm -rf $(DIST)

# start-up: process start → /healthz, built vs tsx, median of 5 (BENCHMARKS.md "Start-up")
.PHONY: bench-startup
bench-startup: deps
	node --import tsx bench/startup.ts $(STARTUP_BENCH_ARGS)

bench: bench-startup
