# Stage-1 and compute OS images (issue 5): Debian kernel + initramfs built from `apt-get download`ed packages
# (images/build.ts, images/README.md).
#   make images              build/images/{stage1,compute}/{vmlinuz,initrd.img,manifest.json}
#   make images-push         push both through the image pipeline into the dev channel
#   make images-test         build + reproducibility + QEMU boot of both images (~1.5 min; also run by make e2e)
#   make images-measure      boot time to the /init banner, zstd vs gzip initramfs (images/README.md)
#   make secureboot          build/secureboot/{shimx64.efi,grubx64.efi}: Debian's signed shim and netboot GRUB,
#                            fetched like the images' packages (images/secureboot.ts; docs/secure-boot.md)
# AGENT_BIN defaults to the compiled agent (mk/agent.mk); any executable works (the test uses a stand-in script).
# ZSTD_LEVEL: 19 gives the smallest image but takes minutes with the 110 MB agent on two cores; 9 is within 10 %.
AGENT_BIN ?= build/agent/bootfarm-agent
IMAGES_OUT ?= build/images
ZSTD_LEVEL ?= 9
SOURCE_DATE_EPOCH ?= 1700000000
IMAGE_CHANNEL ?= dev
# a channel other than dev is gated: pushing onto it needs IMAGE_PUSH_FLAGS=--force (admin token)
IMAGE_PUSH_FLAGS ?=

.PHONY: images images-push images-test images-measure secureboot

# The default agent is (re)built by mk/agent.mk's rule; any other AGENT_BIN is taken as it is.
images: | $(NPM_STAMP)
	$(if $(filter build/agent/bootfarm-agent,$(AGENT_BIN)),$(MAKE) --no-print-directory agent,test -x "$(AGENT_BIN)")
	AGENT_BIN=$(AGENT_BIN) ZSTD_LEVEL=$(ZSTD_LEVEL) SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) VERSION=$(VERSION) \
	  npx tsx images/build.ts --out $(IMAGES_OUT) --reuse

# shim-signed's postinst writes to the ESP: the packages are unpacked into the build dir, never installed. A no-op when
# build/secureboot/manifest.json already holds the candidate versions and the files still match it.
secureboot: | $(NPM_STAMP)
	npx tsx images/secureboot.ts --out build/secureboot

# VERSION defaults to the version recorded in each manifest (dev+<inputs digest>).
images-push: images
	for i in stage1 compute; do \
	  v="$${VERSION:-$$(node -p "require('./$(IMAGES_OUT)/'+process.argv[1]+'/manifest.json').version" $$i)}"; \
	  npx tsx server/cli.ts image push $(IMAGES_OUT)/$$i --name $$i --version "$$v" --channel $(IMAGE_CHANNEL) $(IMAGE_PUSH_FLAGS) || exit 1; \
	done

# an e2e suite (vitest.e2e.config.ts), so `make e2e` (test-extra) runs it too; this target runs it alone
images-test: deps
	npx vitest run -c vitest.e2e.config.ts images/boot.e2e.test.ts

images-measure: deps
	npx tsx images/measure.ts

