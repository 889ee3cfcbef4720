# Firmware compliance (issue 7). Everything runs under plain `npx vitest run` (the page test needs the
# Debian chromium package from deps/firmware.txt), so nothing is added to test-extra.
.PHONY: test-firmware firmware-page

test-firmware: deps
	npx vitest run server/domain/firmware server/store/firmware test/firmware

# runs the integration suite, which leaves a screenshot of /ui/firmware at build/firmware-page.png
firmware-page: deps
	npx vitest run test/firmware
	@echo "screenshot: build/firmware-page.png"
