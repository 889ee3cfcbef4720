# Packages an operator installs (issue 17 item 2), all under packaging/:
#   systemd/   bootfarm.service (own user, CAP_NET_BIND_SERVICE, hardening), sysusers, env file
#   oci/       Containerfile + scripts: `make image` builds localhost/bootfarm:<version> with podman from a Debian 13
#              root file system (mmdebstrap; no registry image is reachable) and the packed release
#   k8s/       manifests: host network for DHCP/TFTP, PostgreSQL and RGW as ExternalName services
# Where crun cannot run containers (hybrid cgroups) or rlimits cannot be raised, as on this project's machines:
#   make image PODMAN_BUILD_FLAGS="--runtime runc --ulimit nofile=20000:20000 --ulimit nproc=4096:4096"
# Tests (plain `npx vitest run`): test/packaging/{systemd,k8s,image}.test.ts; the image test builds the image
# once (minutes) and reuses it while its inputs' hash is unchanged.
.PHONY: image
image: build
	PODMAN_BUILD_FLAGS="$(PODMAN_BUILD_FLAGS)" packaging/oci/build.sh
