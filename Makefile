# bootfarm — the two commands a new user runs are `make run` and `make test` (README.md).
# Each area adds its own targets in mk/*.mk and its Debian packages in deps/*.txt.
SHELL := /bin/bash
.DEFAULT_GOAL := help
NPM_STAMP := node_modules/.package-lock.json
APT_PACKAGES = $(sort $(shell cat deps/*.txt 2>/dev/null | sed 's/\#.*//'))

.PHONY: help run build test test-unit deps deps-npm deps-apt typecheck bench e2e clean

help:
	@echo "make run    — boot server on embedded defaults (PGlite in var/, local image store)"
	@echo "make build  — compile server + CLI to JavaScript for plain Node 20 (build/dist; make run then uses it)"
	@echo "make test   — install what the tests need (npm + Debian packages) and run them"
	@echo "make bench  — benchmarks against dnsmasq, kea, tftpd-hpa, nginx (prints ratios)"

$(NPM_STAMP): package.json package-lock.json
	npm ci --prefer-offline --no-audit --no-fund
	@touch $(NPM_STAMP)

deps-npm: $(NPM_STAMP)

# Debian packages for the real components the tests talk to. Installed only when one is missing,
# so a warm machine skips apt entirely.
deps-apt:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  apt-get update -qq -o Acquire::Retries=8 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Acquire::Retries=8 --no-install-recommends $$missing; \
	fi

deps: deps-npm deps-apt

# the release build when one exists (make build; brought up to date first), else TypeScript through tsx
run: deps-npm
	@if [ -f $(DIST_STAMP) ]; then $(MAKE) --no-print-directory build && exec node $(DIST)/server/cli.js serve; \
	else exec npx tsx server/cli.ts serve; fi

typecheck: deps-npm
	npx tsc --noEmit

test: deps
	npx tsc --noEmit
	npx vitest run $(VITEST_ARGS)
	$(MAKE) --no-print-directory test-extra

clean:
	rm -rf var build

-include mk/*.mk

# areas append their own suites (e2e, compiled agent …) as prerequisites of test-extra
test-extra:
	@true
