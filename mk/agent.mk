# The node agent: one self-contained binary (Bun runtime + bundled TypeScript), glibc, ~110 MB.
# Never strip it: Bun finds the bundled program in its own ELF sections, and strip drops them.
# The baseline target runs on any x86-64 (no AVX2 needed): older servers, and QEMU TCG without -cpu max,
# where the default build dies with "Illegal instruction". Bun fetches that runtime from the npm registry.
AGENT_BIN := build/agent/bootfarm-agent
AGENT_SRC := $(shell find agent server/contract -name '*.ts' ! -name '*.test.ts' 2>/dev/null)

.PHONY: agent agent-clean

agent: $(AGENT_BIN)

# Not on $(NPM_STAMP): a stale stamp would run `npm ci` under the other suites running in this tree.
$(AGENT_BIN): $(AGENT_SRC) | node_modules/.bin/bun
	@mkdir -p $(dir $@)
	node_modules/.bin/bun build --compile --target=bun-linux-x64-baseline --minify --bytecode agent/main.ts --outfile $@

node_modules/.bin/bun:
	$(MAKE) --no-print-directory deps-npm

agent-clean:
	rm -f $(AGENT_BIN)
