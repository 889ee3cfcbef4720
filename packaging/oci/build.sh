#!/bin/bash
# Builds the bootfarm OCI image with podman (make image); prints the image reference on its last line.
# Both layers are tagged by the sha256 of their inputs and reused while those are unchanged:
#   base  localhost/bootfarm-base:<sha of base.sh>         Debian 13 + nodejs 20 (base.sh, several minutes)
#   app   localhost/bootfarm:<sha of base tag, the packed release, the lockfile, Containerfile and stage.sh>
# PODMAN (default podman); PODMAN_BUILD_FLAGS added to `podman build` (e.g. --runtime runc --ulimit …: see
# test/packaging/image.test.ts for a sandbox that refuses crun's cgroup setup and raised rlimits);
# OCI_DIR for the scratch files (default build/oci).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
PODMAN=${PODMAN:-podman}
OCI_DIR=${OCI_DIR:-build/oci}
mkdir -p "$OCI_DIR"
sha() { sha256sum "$@" | cut -c1-16; }

base="localhost/bootfarm-base:$(sha packaging/oci/base.sh)"
if "$PODMAN" image exists "$base"; then
  echo "base image $base exists"
else
  echo "building base image $base (mmdebstrap, Debian 13)"
  packaging/oci/base.sh "$OCI_DIR/base.tar"
  "$PODMAN" import --change 'CMD ["/bin/bash"]' "$OCI_DIR/base.tar" "$base"
  rm -f "$OCI_DIR/base.tar"
fi

rm -f "$OCI_DIR"/bootfarm-*.tgz
# prepack runs `make build`; the lock keeps it from racing another build of build/dist (test/harness/release.ts)
flock build/.release.lock npm pack --pack-destination "$OCI_DIR" --loglevel=error >/dev/null
tgz=$(ls "$OCI_DIR"/bootfarm-*.tgz)
version=$(node -p 'require("./package.json").version')
tag=$( (echo "$base"; cat "$tgz" package-lock.json packaging/oci/Containerfile packaging/oci/stage.sh) | sha256sum | cut -c1-16)
image="localhost/bootfarm:$version-$tag"
if "$PODMAN" image exists "$image"; then
  echo "image $image exists"
else
  echo "building image $image"
  packaging/oci/stage.sh "$tgz" "$OCI_DIR/context"
  "$PODMAN" build ${PODMAN_BUILD_FLAGS:-} --network=none --build-arg "BASE=$base" --tag "$image" --tag "localhost/bootfarm:$version" -f "$OCI_DIR/context/Containerfile" "$OCI_DIR/context"
  rm -rf "$OCI_DIR/context"
  # drop the images of earlier inputs (each is a few hundred MB); the base stays
  for old in $("$PODMAN" images --format '{{.Repository}}:{{.Tag}}' localhost/bootfarm | grep -v -x -e "$image" -e "localhost/bootfarm:$version" || true); do
    "$PODMAN" rmi "$old" >/dev/null || true
  done
fi
echo "$image"
