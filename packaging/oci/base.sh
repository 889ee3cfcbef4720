#!/bin/sh
# The image's base root file system, from Debian packages only (no registry image: only Debian's mirrors and npm
# are reachable where this is built). Debian 13 (trixie) because its nodejs is 20.19 — what package.json's engines
# asks for; Debian 12's is 18. mmdebstrap writes a tarball that `podman import` turns into an image.
#   packaging/oci/base.sh OUT.tar
# The image tag is this file's sha256 (mk/packaging.mk), so a change here rebuilds the base and nothing else does.
set -eu
out=$1
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000}
export SOURCE_DATE_EPOCH
mmdebstrap --variant=minbase --mode=root --format=tar \
  --include=nodejs,ca-certificates,ipmitool,ipxe \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/*.log' \
  trixie "$out" "deb http://deb.debian.org/debian trixie main" \
  "deb http://deb.debian.org/debian trixie-updates main" "deb http://deb.debian.org/debian-security trixie-security main"
