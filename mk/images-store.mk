# Images area (issue 4): image store, serving cache, promotion pipeline.
# make bench-images — 30 MB initrd: hot-cache throughput vs nginx (sendfile) and a 1,000-client cold storm
# against a real single-node Ceph RGW. Loopback only, ~1-2 minutes.
.PHONY: bench-images
bench-images: deps
	npx tsx bench/images.ts

bench: bench-images
